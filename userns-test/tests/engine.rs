//! The probe engine from inside a test process: multithreaded, large,
//! probed concurrently and repeatedly. Timings belong to the benchmark
//! (`cargo run --release --example bench`); these tests assert verdicts and
//! that nothing is left behind.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use userns_test::{Ability, ProbeOptions, Verdict, probe_with, requires_userns};

const NAMESPACE_ABILITIES: [Ability; 5] = [
    Ability::User,
    Ability::Mount,
    Ability::Net,
    Ability::Pid,
    Ability::Nested,
];

/// Whether util-linux can create a user namespace here: the ground truth
/// for `user`, independent of this crate.
/// The tests of this file measure or load the whole process (its memory,
/// descriptors, children, threads), which libtest shares between tests
/// running at once: a 1 GiB block another test holds is "RSS growth" to
/// the leak test. Each holds this for its whole run.
fn alone() -> MutexGuard<'static, ()> {
    static PROCESS: Mutex<()> = Mutex::new(());
    PROCESS.lock().unwrap_or_else(|e| e.into_inner())
}

fn kernel_allows_user_namespaces() -> bool {
    std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

fn verdicts() -> Vec<(Ability, bool)> {
    let options = ProbeOptions::default();
    NAMESPACE_ABILITIES
        .iter()
        .map(|&a| (a, probe_with(a, &options).is_available()))
        .collect()
}

#[test]
fn probes_from_a_process_with_32_busy_threads() {
    let _alone = alone();
    let quiet = verdicts();
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..32)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_add(1);
                    std::hint::black_box(n);
                }
            })
        })
        .collect();
    let loaded = verdicts();
    stop.store(true, Ordering::Relaxed);
    for t in busy {
        t.join().unwrap();
    }
    assert_eq!(quiet, loaded);
    let user = loaded.iter().find(|(a, _)| *a == Ability::User).unwrap().1;
    assert_eq!(user, kernel_allows_user_namespaces());
}

#[test]
fn probes_from_a_process_holding_1_gib() {
    let _alone = alone();
    let mut block = vec![0u8; 1 << 30];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    let verdict = probe_with(Ability::User, &ProbeOptions::default());
    assert_eq!(
        verdict.is_available(),
        kernel_allows_user_namespaces(),
        "{verdict}"
    );
    assert_eq!(std::hint::black_box(&block)[1 << 20], 1);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn children() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        all.extend(list.split_whitespace().map(str::to_owned));
    }
    all
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The sysctls the probes could be suspected of touching.
fn sysctls() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["/proc/sys/user", "/proc/sys/kernel"] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relevant = dir.ends_with("user")
                || name.contains("userns")
                || name.contains("apparmor")
                || name == "cap_last_cap"
                || name == "hostname";
            if relevant {
                out.push((
                    name,
                    std::fs::read_to_string(entry.path()).unwrap_or_default(),
                ));
            }
        }
    }
    out
}

fn private_temp_dir() {
    let temp =
        std::ffi::CString::new(std::env::temp_dir().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: unshare and mount on this thread, with valid C strings.
    unsafe {
        assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare(CLONE_NEWNS)");
        let root = c"/";
        assert_eq!(
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            0,
            "making / private"
        );
        let tmpfs = c"tmpfs";
        assert_eq!(
            libc::mount(
                tmpfs.as_ptr(),
                temp.as_ptr(),
                tmpfs.as_ptr(),
                0,
                std::ptr::null(),
            ),
            0,
            "a tmpfs on the temp dir"
        );
    }
}

fn temp_entries() -> BTreeSet<String> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// 10,000 uncached probes of the namespace abilities leave no descriptor,
/// no child (zombie or not), no mount, no memory growth behind, and change
/// no sysctl and no file of the host.
#[requires_userns(user, cap(sys_admin))]
fn repeated_probes_leave_nothing_behind() {
    let _alone = alone();
    let options = ProbeOptions::default();
    // The temp dir as this thread (and the probes' children it clones)
    // sees it: an empty tmpfs of its own, in a mount namespace of this
    // thread's own (namespaces are per thread; the process's other
    // threads keep theirs). Other processes sharing /tmp (compilers, other
    // users) then cannot make a file appear here; a probe would.
    private_temp_dir();
    // Warm up: lazily opened files, the allocator's arenas.
    for a in NAMESPACE_ABILITIES {
        let _ = probe_with(a, &options);
    }
    let (fds, kids, rss) = (open_fds(), children(), rss_kib());
    let mounts = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    let (settings, temp) = (sysctls(), temp_entries());
    for i in 0..10_000 {
        let v = probe_with(NAMESPACE_ABILITIES[i % NAMESPACE_ABILITIES.len()], &options);
        assert!(v.is_available(), "{v}");
    }
    assert_eq!(open_fds(), fds);
    assert_eq!(children(), kids);
    assert_eq!(
        std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap(),
        mounts
    );
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 4096, "RSS grew by {grown} KiB over 10,000 probes");
    assert_eq!(sysctls(), settings, "a probe changed a sysctl");
    assert_eq!(temp_entries(), temp, "a probe left a file in the temp dir");
}

/// 64 threads asking at once: one probe per ability, one shared verdict.
#[test]
fn cached_probe_is_shared_by_concurrent_callers() {
    let _alone = alone();
    let asked = [Ability::Uts, Ability::Ipc, Ability::Seccomp, Ability::Root];
    let results: Vec<Vec<&'static Verdict>> = std::thread::scope(|s| {
        // Each thread asks in its own order, so threads race on the same
        // and on different abilities at once.
        let handles: Vec<_> = (0..64)
            .map(|t| {
                s.spawn(move || {
                    let mut verdicts = vec![None; asked.len()];
                    for k in 0..asked.len() {
                        let i = (t + k) % asked.len();
                        verdicts[i] = Some(userns_test::probe(asked[i]));
                    }
                    verdicts.into_iter().map(Option::unwrap).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for per_thread in &results {
        for (v, first) in per_thread.iter().zip(&results[0]) {
            assert!(
                std::ptr::eq(*v, *first),
                "{} was probed more than once",
                v.ability
            );
        }
    }
}
