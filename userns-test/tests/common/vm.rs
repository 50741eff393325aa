//! A second real kernel for the host matrix: Debian bookworm's 6.1, booted
//! with virtme-ng under QEMU's TCG emulation (nested KVM does not work on
//! these machines), sharing this machine's root filesystem read-only, so
//! bubblewrap, util-linux, Python and the test binaries are the same
//! inside. One VM per test process, booted on first use (about 20 s), kept
//! up for every host of the run; commands go through a shared directory
//! (see `tests/vm/agent.sh`). The VM powers itself off 20 s after this
//! process stops beating, so none outlives its tests; a guest that stops
//! answering (it cannot power itself off then) is killed from here, with
//! QEMU and vng's helpers (their own process group).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running VM and its shared directory.
pub struct Vm {
    dir: PathBuf,
    next: AtomicU64,
    qemu: std::sync::Mutex<std::process::Child>,
}

/// What a command in the VM did.
#[derive(Debug)]
pub struct VmOutput {
    pub rc: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The directory of the VM's kernel and files: beside this test binary's
/// target directory (`target/userns-test-vm`).
pub fn vm_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("a target directory")
        .join("userns-test-vm")
}

/// The VM, booted on first use; `Err` says what failed (the kernel could
/// not be fetched, the VM did not come up).
pub fn vm() -> Result<&'static Vm, String> {
    static VM: OnceLock<Result<Vm, String>> = OnceLock::new();
    VM.get_or_init(boot).as_ref().map_err(Clone::clone)
}

fn boot() -> Result<Vm, String> {
    let base = vm_dir();
    let kernel_dir = base.join("kernel");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/vm-kernel");
    let fetched = Command::new("bash")
        .arg(script)
        .arg(&kernel_dir)
        .output()
        .map_err(|e| format!("running {script}: {e}"))?;
    if !fetched.status.success() {
        return Err(format!(
            "{script} could not fetch Debian bookworm's 6.1 kernel into {} (it uses \
             `apt-get download`, so the machine needs Debian bookworm's package sources; run it \
             by hand to see more): {}",
            kernel_dir.display(),
            String::from_utf8_lossy(&fetched.stderr)
        ));
    }
    let kernel = std::fs::read_dir(kernel_dir.join("root/boot"))
        .map_err(|e| format!("reading the kernel directory: {e}"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or("no vmlinuz in the kernel directory")?;
    // Shared directories of earlier runs whose process is gone.
    for old in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("share-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }
    let dir = base.join(format!("share-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let files = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm"));
    std::fs::copy(files.join("agent.sh"), dir.join("agent.sh"))
        .map_err(|e| format!("copying the agent: {e}"))?;
    beat(&dir);
    let log = std::fs::File::create(dir.join("vng.log")).map_err(|e| e.to_string())?;
    let agent = dir.join("agent.sh");
    let mut qemu = Command::new("vng")
        .arg("--run")
        .arg(&kernel)
        .args(["--disable-kvm", "--cpus", "2", "--memory", "2G", "--rwdir"])
        .arg(&dir)
        .arg("--exec")
        .arg(format!("sh {}", agent.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        // vng, virtme-run and QEMU in one group, killed together.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting vng: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(180);
    while !dir.join("ready").exists() {
        if Instant::now() > deadline {
            let _ = qemu.kill();
            let _ = qemu.wait();
            let log = std::fs::read_to_string(dir.join("vng.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
            return Err(format!(
                "the VM did not come up within 180 s; vng's log ends:\n{tail}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Vm {
        dir,
        next: AtomicU64::new(1),
        qemu: std::sync::Mutex::new(qemu),
    })
}

/// Rewrites `heartbeat` every second, from a thread that lives as long as
/// this process.
fn beat(dir: &Path) {
    let file = dir.join("heartbeat");
    std::thread::spawn(move || {
        let mut n: u64 = 0;
        loop {
            n += 1;
            let _ = std::fs::write(&file, n.to_string());
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

impl Vm {
    /// The shared directory: the same path in the VM.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Powers the VM off and waits for QEMU to end (killing it after 60 s),
    /// so it does not run on beside the next test binaries.
    pub fn power_off(&self) {
        self.run(
            "echo 1 > /proc/sys/kernel/sysrq; echo o > /proc/sysrq-trigger",
            Duration::from_secs(1),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ended = {
                let mut qemu = self.qemu.lock().unwrap_or_else(|e| e.into_inner());
                qemu.try_wait().ok().flatten().is_some()
            };
            if ended {
                return;
            }
            if Instant::now() > deadline {
                self.kill();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills vng, virtme-run and QEMU (their process group) and reaps vng.
    fn kill(&self) {
        let mut qemu = self.qemu.lock().unwrap_or_else(|e| e.into_inner());
        let group = nix::unistd::Pid::from_raw(qemu.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = qemu.wait();
    }

    /// Runs `script` with `sh` in the VM, as root, within `timeout`.
    pub fn run(&self, script: &str, timeout: Duration) -> VmOutput {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let staged = self.dir.join(format!("stage-{n}.sh"));
        std::fs::write(&staged, script).expect("write the command");
        std::fs::rename(&staged, self.dir.join(format!("cmd-{n}.sh"))).expect("queue the command");
        let rc_file = self.dir.join(format!("rc-{n}"));
        let deadline = Instant::now() + timeout;
        while !rc_file.exists() {
            if Instant::now() > deadline {
                // A guest that does not answer runs its watchdog no more
                // either: kill it, so it does not run on beside the next
                // test binaries (one emulated VM takes both cores).
                self.kill();
                return VmOutput {
                    rc: None,
                    stdout: String::new(),
                    stderr: format!(
                        "no answer from the VM within {timeout:?} (the VM was killed; vng's log: \
                         {})",
                        self.dir.join("vng.log").display()
                    ),
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let read = |name: String| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        VmOutput {
            rc: read(format!("rc-{n}")).trim().parse().ok(),
            stdout: read(format!("out-{n}")),
            stderr: read(format!("err-{n}")),
        }
    }
}
