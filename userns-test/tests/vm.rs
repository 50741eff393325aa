//! Hosts on a second real kernel, Debian bookworm's 6.1 with AppArmor and
//! the BPF LSM active, booted in a VM (see `tests/common/vm.rs`): root; uid
//! 65534; uid 65534 in a cgroup delegated to it; uid 65534 under an
//! AppArmor profile modelled on Ubuntu 24.04's `unprivileged_userns`; uid
//! 65534 under a BPF LSM program modelling Ubuntu 24.04's restriction
//! (credentials inside a user namespace of an unprivileged owner hold no
//! capability); and that, with `kernel.apparmor_restrict_unprivileged_userns=1`
//! shown through a private mount over `/proc/sys/kernel` (6.1 has no such
//! sysctl), so the Ubuntu 24.04 diagnosis runs end to end. On each, every
//! verdict against the ground truth, run there, and the causes asserted.
//!
//! The hosts change the VM as a whole (a profile loaded, a BPF program
//! attached), so one test runs them in turn. `USERNS_TEST_VM_MATRIX_OUT=path`
//! writes their rows of the guide's matrix (docs/src/causes.md).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::ground_truth::GROUND_TRUTH;
use common::vm::{Vm, vm};
use common::{cli, verdict};
use userns_test::requires_userns;

const UNPRIVILEGED: [&str; 6] = [
    "setpriv",
    "--reuid",
    "65534",
    "--regid",
    "65534",
    "--clear-groups",
];
const PROFILE: &str = "userns-test-unprivileged-userns";
const DELEGATED: &str = "/sys/fs/cgroup/userns-test-delegated";
/// Where the sysctl host's copy of /proc/sys/kernel lives in the VM.
const SYSCTLS: &str = "/tmp/userns-test-sysctls";
/// Every ability whose probe starts with a new user namespace.
const IN_A_USER_NAMESPACE: [&str; 17] = [
    "user",
    "cap_sys_admin",
    "mount",
    "net",
    "pid",
    "ipc",
    "uts",
    "cgroup",
    "time",
    "nested",
    "kvm",
    "tun",
    "fuse",
    "overlay",
    "pivot_root",
    "bwrap",
    "bwrap_net",
];

/// One host in the VM: an argv prefix for its commands, and shell run as
/// root before and after.
struct VmHost {
    label: &'static str,
    prefix: Vec<String>,
    setup: String,
    teardown: String,
}

fn unprivileged(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = UNPRIVILEGED.iter().map(|s| s.to_string()).collect();
    v.push("--inh-caps=-all".into());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The doctor's JSON and the ground truth of `host`, run in the VM.
fn survey(vm: &Vm, host: &VmHost) -> (serde_json::Value, Vec<(String, bool, String)>) {
    let names: Vec<&str> = GROUND_TRUTH.iter().map(|(n, _)| *n).collect();
    let spec = serde_json::json!({
        "prefix": host.prefix,
        "doctor": cli(),
        "only": names.join(","),
        "truth": GROUND_TRUTH,
    });
    let slug: String = host
        .label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let spec_file = vm.dir().join(format!("spec-{slug}.json"));
    let out_file = vm.dir().join(format!("result-{slug}.json"));
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/run_host.py");
    let script = format!(
        "set -e\n{}\n/usr/bin/python3 {} {} {}\n{}\n",
        host.setup,
        runner.display(),
        spec_file.display(),
        out_file.display(),
        host.teardown
    );
    let ran = vm.run(&script, Duration::from_secs(900));
    assert_eq!(
        ran.rc,
        Some(0),
        "{}: {}\n{}",
        host.label,
        ran.stdout,
        ran.stderr
    );
    let out: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let doctor = &out["doctor"];
    assert_eq!(doctor["rc"], 0, "{}: doctor failed: {doctor:#}", host.label);
    let doc: serde_json::Value =
        serde_json::from_str(doctor["stdout"].as_str().unwrap()).expect("doctor --json");
    let truth = names
        .iter()
        .map(|n| {
            let t = &out["truth"][n];
            (
                n.to_string(),
                t["rc"] == 0,
                t["stderr"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    (doc, truth)
}

/// The verdicts that differ from the ground truth.
fn mismatches(doc: &serde_json::Value, truth: &[(String, bool, String)]) -> Vec<String> {
    truth
        .iter()
        .filter(|(name, ok, _)| (verdict(doc, name)["verdict"] == "available") != *ok)
        .map(|(name, ok, stderr)| {
            format!(
                "{name}: verdict {} but the ground truth {} ({})",
                verdict(doc, name),
                if *ok { "succeeds" } else { "fails" },
                stderr.trim()
            )
        })
        .collect()
}

fn cause(doc: &serde_json::Value, ability: &str) -> String {
    verdict(doc, ability)["cause"]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The matrix row of `doc`, as the guide shows hosts.
fn row(label: &str, doc: &serde_json::Value) -> String {
    let cells: Vec<String> = GROUND_TRUTH
        .iter()
        .map(|(a, _)| common::matrix_cell(verdict(doc, a)))
        .collect();
    format!("| {label} | {} |\n", cells.join(" | "))
}

/// The BPF program and its loader, built here (clang and gcc with
/// libbpf). The program reads kernel structures through CO-RE relocations,
/// so any kernel's BTF declares them: this machine's when it has one (a
/// second; dumping it under emulation takes most of a minute), else the
/// VM kernel's. libbpf relocates against the VM kernel's at load time.
fn build_bpf(vm: &Vm) {
    let dir = vm.dir();
    let header = dir.join("vmlinux.h");
    let own_btf = Path::new("/sys/kernel/btf/vmlinux");
    let dumped_here = own_btf.exists()
        && std::fs::File::create(&header).is_ok_and(|out| {
            Command::new("bpftool")
                .args(["btf", "dump", "file"])
                .arg(own_btf)
                .args(["format", "c"])
                .stdout(out)
                .status()
                .is_ok_and(|s| s.success())
        });
    if !dumped_here {
        let dumped = vm.run(
            &format!(
                "bpftool btf dump file /sys/kernel/btf/vmlinux format c > {}",
                header.display()
            ),
            Duration::from_secs(300),
        );
        assert_eq!(dumped.rc, Some(0), "bpftool in the VM: {}", dumped.stderr);
    }
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm");
    let build = |cmd: &mut Command| {
        let out = cmd.output().expect("run the compiler");
        assert!(
            out.status.success(),
            "building the BPF model failed (clang, gcc and libbpf-dev are needed): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    build(
        Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf", "-I"])
            .arg(dir)
            .arg("-c")
            .arg(sources.join("deny_capabilities.bpf.c"))
            .arg("-o")
            .arg(dir.join("deny_capabilities.bpf.o")),
    );
    build(
        Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(dir.join("loader"))
            .arg(sources.join("loader.c"))
            .arg("-lbpf"),
    );
}

#[requires_userns(
    program("qemu-system-x86_64"),
    program("vng"),
    program("busybox"),
    program("/usr/bin/python3"),
    program("clang"),
    program("gcc"),
    program("bpftool"),
    program("apparmor_parser"),
    program("aa-exec")
)]
fn debian_6_1_hosts() {
    let vm = vm().unwrap_or_else(|e| panic!("the 6.1 VM: {e}"));
    let prepared = vm.run(
        "modprobe tun; modprobe fuse; modprobe overlay; \
         mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf",
        Duration::from_secs(120),
    );
    assert_eq!(prepared.rc, Some(0), "{}", prepared.stderr);
    build_bpf(vm);
    let dir = vm.dir().display().to_string();
    let load_bpf = format!(
        "mkdir -p /sys/fs/bpf/userns-test && {dir}/loader {dir}/deny_capabilities.bpf.o \
         /sys/fs/bpf/userns-test"
    );
    let unload_bpf = "rm -rf /sys/fs/bpf/userns-test".to_owned();
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/unprivileged_userns.apparmor");
    // kernel.apparmor_restrict_unprivileged_userns=1 where 6.1 has no such
    // sysctl: a copy of /proc/sys/kernel's files with it added (made once,
    // copying is slow under emulation), bound over /proc/sys/kernel in a
    // private mount namespace for each command.
    let copy_sysctls = format!(
        "mkdir -p {SYSCTLS} && mount -t tmpfs none {SYSCTLS} && \
         for f in /proc/sys/kernel/*; do if [ -f \"$f\" ]; then cat \"$f\" > {SYSCTLS}/${{f##*/}} 2>/dev/null || :; fi; done; \
         echo 1 > {SYSCTLS}/apparmor_restrict_unprivileged_userns"
    );
    let mut in_sysctl_ns = vec![
        "unshare".to_owned(),
        "--mount".into(),
        "sh".into(),
        "-c".into(),
        format!("mount --bind {SYSCTLS} /proc/sys/kernel && exec \"$@\""),
        "sh".into(),
    ];
    in_sysctl_ns.extend(unprivileged(&[]));
    let mut delegated = vec![
        "sh".to_owned(),
        "-c".into(),
        format!("echo $$ > {DELEGATED}/leaf/cgroup.procs && exec \"$@\""),
        "sh".into(),
    ];
    delegated.extend(unprivileged(&[]));
    let hosts = [
        VmHost {
            label: "6.1: root",
            prefix: vec![],
            // Controllers for the root cgroup's children, as systemd would.
            setup: "echo '+cpu +memory +pids' > /sys/fs/cgroup/cgroup.subtree_control".into(),
            teardown: String::new(),
        },
        VmHost {
            label: "6.1: uid 65534",
            prefix: unprivileged(&[]),
            setup: String::new(),
            teardown: String::new(),
        },
        VmHost {
            label: "6.1: uid 65534, a cgroup delegated to it",
            prefix: delegated,
            setup: format!(
                "mkdir -p {DELEGATED}/leaf && \
                 chown 65534:65534 {DELEGATED} {DELEGATED}/cgroup.procs {DELEGATED}/leaf \
                 {DELEGATED}/leaf/cgroup.procs && \
                 echo '+cpu +memory +pids' > {DELEGATED}/cgroup.subtree_control"
            ),
            teardown: String::new(),
        },
        VmHost {
            label: "6.1: uid 65534, AppArmor unprivileged_userns model",
            prefix: unprivileged(&["aa-exec", "-p", PROFILE, "--"]),
            setup: format!("apparmor_parser -r {}", profile.display()),
            teardown: String::new(),
        },
        VmHost {
            label: "6.1: uid 65534, BPF LSM model of Ubuntu 24.04",
            prefix: unprivileged(&[]),
            setup: load_bpf.clone(),
            teardown: unload_bpf.clone(),
        },
        VmHost {
            label: "6.1: the BPF model and apparmor_restrict_unprivileged_userns=1",
            prefix: in_sysctl_ns,
            setup: format!("{load_bpf} && {copy_sysctls}"),
            teardown: format!("{unload_bpf}; umount {SYSCTLS}"),
        },
    ];
    let mut problems = Vec::new();
    let mut table = String::new();
    let mut docs = Vec::new();
    for host in &hosts {
        let (doc, truth) = survey(vm, host);
        for m in mismatches(&doc, &truth) {
            problems.push(format!("{}: {m}", host.label));
        }
        table.push_str(&row(host.label, &doc));
        docs.push(doc);
    }
    if let Some(path) = std::env::var_os("USERNS_TEST_VM_MATRIX_OUT") {
        std::fs::write(path, &table).expect("write the VM matrix");
    }
    // Everything the assertions need is read; the VM is not needed again.
    vm.power_off();
    assert!(
        problems.is_empty(),
        "verdicts differ from the ground truth:\n{}",
        problems.join("\n")
    );

    // Root on 6.1: Landlock ABI 2 there, so ABI 4 is named with its release.
    let root = &docs[0];
    assert_eq!(
        cause(root, "landlock(abi>=4)"),
        "landlock_abi_too_old",
        "{root:#}"
    );
    assert!(
        verdict(root, "landlock(abi>=4)")["cause"]["message"]
            .as_str()
            .unwrap()
            .contains("came with Linux 6.7")
    );
    assert!(common::available(root, "cgroup_delegation"), "{root:#}");
    // A user without a delegated cgroup, and one with.
    assert_eq!(cause(&docs[1], "cgroup_delegation"), "cgroup_not_delegated");
    assert!(
        common::available(&docs[2], "cgroup_delegation"),
        "{:#}",
        docs[2]
    );
    // The capability denial, under AppArmor and under the BPF LSM: one root
    // cause for every ability in a user namespace, bubblewrap's included.
    for (doc, detail) in [
        (&docs[3], format!("AppArmor profile `{PROFILE} (enforce)`")),
        (&docs[4], "active LSMs: ".to_owned()),
    ] {
        let first = &verdict(doc, "user")["root_cause"];
        for ability in IN_A_USER_NAMESPACE {
            let v = verdict(doc, ability);
            assert_eq!(
                cause(doc, ability),
                "capabilities_denied_in_userns",
                "{v:#}"
            );
            assert_eq!(&v["root_cause"], first, "one root cause: {v:#}");
        }
        let message = verdict(doc, "user")["cause"]["message"].as_str().unwrap();
        assert!(message.contains(&detail), "{message}");
        assert!(!message.contains("writes to /proc"), "{message}");
    }
    assert!(
        verdict(&docs[4], "user")["cause"]["message"]
            .as_str()
            .unwrap()
            .contains("bpf"),
    );
    // Ubuntu 24.04 end to end: the sysctl named, and the fix covering the
    // test binaries and bwrap itself.
    let ubuntu = &docs[5];
    for ability in IN_A_USER_NAMESPACE {
        assert_eq!(
            cause(ubuntu, ability),
            "apparmor_restrict_unprivileged_userns",
            "{:#}",
            verdict(ubuntu, ability)
        );
    }
    let fix = verdict(ubuntu, "bwrap")["remedy"].as_str().unwrap();
    assert!(
        fix.contains("bwrap-userns-restrict") && fix.contains("userns,"),
        "{fix}"
    );
    assert_eq!(ubuntu["host"]["apparmor_restrict_unprivileged_userns"], 1);
}
