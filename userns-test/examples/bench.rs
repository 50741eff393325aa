//! Benchmark: what the probes and the cached check cost.
//!
//! `cargo run --release -p userns-test --example bench`
//!
//! Prints, as medians of many runs (cache bypassed, a fresh probe child
//! each time):
//! - each ability's probe latency and, for the namespace abilities, its
//!   floor: the same system calls in a bare `clone(CLONE_VM|CLONE_VFORK)`
//!   child with no bookkeeping, and the ratio;
//! - the command-line way (`unshare -Ur [--net] true`);
//! - the cached check (`decide`) once verdicts are known;
//! - what diagnosing a refusal adds to its probe, on hosts rebuilt with
//!   seccomp filters on one thread (Docker-like: every namespace refused;
//!   systemd-like: some types refused by flag): `observe` alone against
//!   `probe_with` (observe, then diagnose with control calls and the
//!   observations of related abilities);
//! - the `user` probe (and, for reference, a plain `fork()`) from a process
//!   holding 0, 1 and 4 GiB of touched memory, and 4 GiB with 64 busy
//!   threads.

use std::ffi::CString;
use std::time::{Duration, Instant};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use userns_test::{Ability, ProbeOptions, observe, probe_with};

/// `unshare` and `clone` with any of `flags`: EPERM (argument 0, masked);
/// `clone3`: ENOSYS; `unshare` with any flag at all when `whole`.
fn namespace_filter(flags: &[u64], whole: bool) -> BpfProgram {
    let rules = || -> Vec<SeccompRule> {
        flags
            .iter()
            .map(|&flag| {
                SeccompRule::new(vec![
                    SeccompCondition::new(
                        0,
                        SeccompCmpArgLen::Qword,
                        SeccompCmpOp::MaskedEq(flag),
                        flag,
                    )
                    .expect("a condition"),
                ])
                .expect("a rule")
            })
            .collect()
    };
    let unshare = if whole { vec![] } else { rules() };
    let map = [(libc::SYS_unshare, unshare), (libc::SYS_clone, rules())]
        .into_iter()
        .collect();
    let arch = std::env::consts::ARCH
        .try_into()
        .expect("a seccompiler target");
    SeccompFilter::new(
        map,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .and_then(TryInto::try_into)
    .expect("a filter")
}

/// Probe and diagnosis cost of `abilities` on a thread under `filter`.
fn diagnosis_costs(label: &str, filter: BpfProgram, abilities: &[Ability], options: &ProbeOptions) {
    std::thread::scope(|s| {
        s.spawn(|| {
            seccompiler::apply_filter(&filter).expect("apply the filter to this thread");
            for &ability in abilities {
                let runs = if ability.is_external() { 30 } else { 300 };
                let verdict = probe_with(ability, options);
                let cause = verdict.reason().map_or("available", |r| r.cause.id());
                let seen = measure(runs, || {
                    std::hint::black_box(observe(ability, options));
                });
                let whole = measure(runs, || {
                    std::hint::black_box(probe_with(ability, options));
                });
                println!(
                    "{:<12}{:<14}{:>12}{:>12}{:>12}  {cause}",
                    label,
                    ability.name(),
                    us(seen),
                    us(whole),
                    us(whole.saturating_sub(seen)),
                );
            }
        });
    });
}

/// The ten namespace abilities whose sum and sweep have a target (3 ms):
/// the first ten of the vocabulary.
const NAMESPACES: [Ability; 10] = *Ability::ALL.first_chunk::<10>().unwrap();

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm up
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn us(d: Duration) -> String {
    format!("{:8.1} us", d.as_secs_f64() * 1e6)
}

/// One raw step of a floor program, its buffers prepared before the clone.
enum Raw {
    Unshare(libc::c_int),
    /// `mount(source, target, fstype, flags, NULL)`.
    Mount {
        source: CString,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
    },
    SetHostname(&'static [u8]),
    /// A route-netlink request on a fresh socket, then its ack.
    Netlink(Vec<u8>),
    /// Writes the three id maps again: the nested namespace's lines.
    Maps([Vec<u8>; 3]),
}

/// The floor of an ability: the same system calls as its probe, in a bare
/// `clone(CLONE_VM|CLONE_VFORK)` child, with no bookkeeping (no report
/// page, no pidfd, no time bound, no diagnosis).
struct Floor {
    clone_flags: libc::c_int,
    paths: [CString; 3],
    lines: [Vec<u8>; 3],
    steps: Vec<Raw>,
}

/// Runs in the child: raw calls on prepared buffers only (no allocation:
/// the parent's allocator state is shared and may be mid-operation).
unsafe fn write_maps(paths: &[CString; 3], lines: &[Vec<u8>; 3]) -> bool {
    for (path, line) in paths.iter().zip(lines) {
        // SAFETY: raw open/write/close on prepared buffers.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, line.as_ptr().cast(), line.len()) < 0 {
                return false;
            }
            libc::close(fd);
        }
    }
    true
}

extern "C" fn floor_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the Floor the suspended parent (CLONE_VFORK) holds.
    let floor = unsafe { &*(arg as *const Floor) };
    // SAFETY: raw system calls on buffers prepared before the clone.
    unsafe {
        if !write_maps(&floor.paths, &floor.lines) {
            libc::_exit(1);
        }
        for step in &floor.steps {
            let ok = match step {
                Raw::Unshare(flags) => libc::unshare(*flags) == 0,
                Raw::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                } => {
                    let fs = fstype.as_ref().map_or(std::ptr::null(), |f| f.as_ptr());
                    libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        fs,
                        *flags,
                        std::ptr::null(),
                    ) == 0
                }
                Raw::SetHostname(name) => libc::sethostname(name.as_ptr().cast(), name.len()) == 0,
                Raw::Netlink(request) => {
                    let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE);
                    let mut reply = [0u8; 512];
                    let ok = fd >= 0
                        && libc::send(fd, request.as_ptr().cast(), request.len(), 0) >= 0
                        && libc::recv(fd, reply.as_mut_ptr().cast(), reply.len(), 0) >= 20
                        && reply[16..20] == [0, 0, 0, 0];
                    libc::close(fd);
                    ok
                }
                Raw::Maps(lines) => write_maps(&floor.paths, lines),
            };
            if !ok {
                libc::_exit(2);
            }
        }
    }
    0
}

/// Runs `floor` once.
fn run_floor(floor: &Floor, stack: &mut [u8]) {
    // SAFETY: the child runs on `stack` while this thread is suspended
    // (CLONE_VFORK) and writes nothing of ours.
    unsafe {
        let top = stack.as_mut_ptr().add(stack.len()).cast();
        let pid = libc::clone(
            floor_child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | floor.clone_flags | libc::SIGCHLD,
            (floor as *const Floor).cast_mut().cast(),
        );
        assert!(
            pid > 0,
            "bare clone failed: {}",
            std::io::Error::last_os_error()
        );
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert_eq!(status, 0, "floor child failed: {status:#x}");
    }
}

/// A route-netlink request: header, then `body`.
fn netlink(kind: u16, flags: libc::c_int, body: &[u8]) -> Vec<u8> {
    let len = (16 + body.len()) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK | flags) as u16).to_ne_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(body);
    m
}

/// The floor of each namespace ability, as its probe's doc comment lists
/// the steps.
fn floors(uid: u32, gid: u32) -> Vec<(Ability, Floor)> {
    let floor = |clone_flags: libc::c_int, steps: Vec<Raw>| Floor {
        clone_flags: libc::CLONE_NEWUSER | clone_flags,
        paths: [
            c"/proc/self/setgroups".into(),
            c"/proc/self/uid_map".into(),
            c"/proc/self/gid_map".into(),
        ],
        lines: [
            b"deny".to_vec(),
            format!("0 {uid} 1").into_bytes(),
            format!("0 {gid} 1").into_bytes(),
        ],
        steps,
    };
    let private = || Raw::Mount {
        source: c"none".into(),
        target: c"/".into(),
        fstype: None,
        flags: libc::MS_REC | libc::MS_PRIVATE,
    };
    let mut address = vec![libc::AF_INET as u8, 8, libc::IFA_F_PERMANENT as u8, 254];
    address.extend_from_slice(&1i32.to_ne_bytes());
    for attr in [libc::IFA_LOCAL, libc::IFA_ADDRESS] {
        address.extend_from_slice(&8u16.to_ne_bytes());
        address.extend_from_slice(&attr.to_ne_bytes());
        address.extend_from_slice(&[127, 0, 0, 1]);
    }
    let mut link = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    link.extend_from_slice(&1i32.to_ne_bytes());
    link.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    link.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
    vec![
        (Ability::User, floor(0, vec![])),
        (
            Ability::CapSysAdmin,
            floor(0, vec![Raw::Unshare(libc::CLONE_NEWNS)]),
        ),
        (
            Ability::Mount,
            floor(
                0,
                vec![
                    Raw::Unshare(libc::CLONE_NEWNS),
                    private(),
                    Raw::Mount {
                        source: c"none".into(),
                        target: c"/tmp".into(),
                        fstype: Some(c"tmpfs".into()),
                        flags: 0,
                    },
                ],
            ),
        ),
        (
            Ability::Net,
            floor(
                0,
                vec![
                    Raw::Unshare(libc::CLONE_NEWNET),
                    Raw::Netlink(netlink(
                        libc::RTM_NEWADDR,
                        libc::NLM_F_CREATE | libc::NLM_F_EXCL,
                        &address,
                    )),
                    Raw::Netlink(netlink(libc::RTM_NEWLINK, 0, &link)),
                ],
            ),
        ),
        (
            Ability::Pid,
            floor(
                libc::CLONE_NEWPID,
                vec![
                    Raw::Unshare(libc::CLONE_NEWNS),
                    private(),
                    Raw::Mount {
                        source: c"proc".into(),
                        target: c"/proc".into(),
                        fstype: Some(c"proc".into()),
                        flags: 0,
                    },
                ],
            ),
        ),
        (
            Ability::Ipc,
            floor(0, vec![Raw::Unshare(libc::CLONE_NEWIPC)]),
        ),
        (
            Ability::Uts,
            floor(
                0,
                vec![
                    Raw::Unshare(libc::CLONE_NEWUTS),
                    Raw::SetHostname(b"userns-test"),
                ],
            ),
        ),
        (
            Ability::Cgroup,
            floor(0, vec![Raw::Unshare(libc::CLONE_NEWCGROUP)]),
        ),
        (
            Ability::Time,
            floor(0, vec![Raw::Unshare(libc::CLONE_NEWTIME)]),
        ),
        (
            Ability::Nested,
            floor(
                0,
                vec![
                    Raw::Unshare(libc::CLONE_NEWUSER),
                    // Inside the first namespace this process is uid 0.
                    Raw::Maps([b"deny".to_vec(), b"0 0 1".to_vec(), b"0 0 1".to_vec()]),
                ],
            ),
        ),
    ]
}

fn plain_fork() {
    // SAFETY: the child only calls _exit.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            libc::_exit(0);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
}

fn main() {
    let options = ProbeOptions::default();
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let floors = floors(uid, gid);
    let mut stack = vec![0u8; 256 * 1024];

    println!("host: {}", userns_test::HostFacts::get().summary());
    println!("\n## Probe latency (median; cache bypassed; fresh child each run)");
    println!(
        "{:<16}{:>12}{:>12}{:>9}",
        "ability", "probe", "floor", "ratio"
    );
    let cli = measure(100, || {
        std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "true"])
            .status()
            .map(drop)
            .unwrap_or(())
    });
    let cli_net = measure(100, || {
        std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "true"])
            .status()
            .map(drop)
            .unwrap_or(())
    });
    let mut namespace_total = Duration::ZERO;
    let mut floor_user = Duration::ZERO;
    let mut user_probe = Duration::ZERO;
    let mut worst: f64 = 0.0;
    let parameterised = [Ability::Program("true"), Ability::LandlockAbi(4)];
    for ability in Ability::ALL.into_iter().chain(parameterised) {
        let runs = match ability {
            Ability::CgroupDelegation | Ability::Program(_) => 200,
            a if a.is_external() => 50,
            _ => 1000,
        };
        let available = probe_with(ability, &options).is_available();
        let t = measure(runs, || {
            std::hint::black_box(probe_with(ability, &options));
        });
        let floor = floors
            .iter()
            .find(|(a, _)| *a == ability)
            .filter(|_| available)
            .map(|(_, f)| measure(runs, || run_floor(f, &mut stack)));
        if ability == Ability::User {
            user_probe = t;
            floor_user = floor.unwrap_or_default();
        }
        if NAMESPACES.contains(&ability) {
            namespace_total += t;
        }
        let verdict = if available { "yes" } else { "no" };
        match floor {
            Some(f) => {
                let ratio = t.as_secs_f64() / f.as_secs_f64();
                worst = worst.max(ratio);
                println!(
                    "{:<16}{:>12}{:>12}{:>8.2}x  ({verdict})",
                    ability.name(),
                    us(t),
                    us(f),
                    ratio
                );
            }
            None => println!(
                "{:<16}{:>12}{:>12}{:>9}  ({verdict})",
                ability.name(),
                us(t),
                "",
                ""
            ),
        }
    }
    println!("worst ratio to its floor: {worst:.2}x");
    println!("{:<28}{}", "unshare -Ur true (CLI)", us(cli));
    println!("{:<28}{}", "unshare -Ur --net true (CLI)", us(cli_net));
    println!(
        "{:<28}{}",
        "sum of the 10 namespace ones",
        us(namespace_total)
    );
    let sweep = measure(200, || {
        for a in NAMESPACES {
            std::hint::black_box(probe_with(a, &options));
        }
    });
    println!("{:<28}{}", "sequential sweep of them", us(sweep));

    println!("\n## Diagnosing a refusal (median; observe alone vs observe + diagnose)");
    println!(
        "{:<12}{:<14}{:>12}{:>12}{:>12}  cause",
        "host", "ability", "observe", "probe_with", "diagnosis"
    );
    let all = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ]
    .map(|f| f as u64);
    diagnosis_costs(
        "docker-like",
        namespace_filter(&all, true),
        &[Ability::User, Ability::Net, Ability::Pid, Ability::BwrapNet],
        &options,
    );
    diagnosis_costs(
        "by flag",
        namespace_filter(&all[2..], false),
        &[Ability::Net, Ability::Pid, Ability::BwrapNet],
        &options,
    );

    println!("\n## Cached check (verdicts known)");
    let _ = userns_test::decide(&[Ability::User, Ability::Net]);
    let calls = 1_000_000u32;
    let t = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(userns_test::decide(std::hint::black_box(&[
            Ability::User,
            Ability::Net,
        ])));
    }
    let per = t.elapsed() / calls;
    println!(
        "{:<28}{:8.1} ns",
        "decide(&[user, net])",
        per.as_secs_f64() * 1e9
    );
    let t = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(userns_test::probe(std::hint::black_box(Ability::User)));
    }
    println!(
        "{:<28}{:8.1} ns",
        "probe(user), cached",
        (t.elapsed() / calls).as_secs_f64() * 1e9
    );

    println!("\n## Probe latency vs the test process's touched memory");
    println!(
        "{:<12}{:>14}{:>14}{:>12}",
        "memory", "user probe", "plain fork()", "vs empty"
    );
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut empty = Duration::ZERO;
    for gib in [0usize, 1, 4] {
        while held.len() < gib {
            let mut block = vec![0u8; 1 << 30];
            for page in block.chunks_mut(4096) {
                page[0] = 1;
            }
            held.push(block);
        }
        let probe = measure(500, || {
            std::hint::black_box(probe_with(Ability::User, &options));
        });
        let fork = measure(if gib == 0 { 200 } else { 20 }, plain_fork);
        if gib == 0 {
            empty = probe;
        }
        println!(
            "{:<12}{:>14}{:>14}{:>11.2}x",
            format!("{gib} GiB"),
            us(probe),
            us(fork),
            probe.as_secs_f64() / empty.as_secs_f64()
        );
    }
    // The same at 4 GiB with 64 more threads, each spinning, as a busy
    // test process would be.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                }
            });
        }
        let probe = measure(500, || {
            std::hint::black_box(probe_with(Ability::User, &options));
        });
        println!(
            "{:<12}{:>14}{:>14}{:>11.2}x",
            "4 GiB + 64 threads",
            us(probe),
            "",
            probe.as_secs_f64() / empty.as_secs_f64()
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    std::hint::black_box(&held);
    println!(
        "\nuser probe vs floor: {:.2}x",
        user_probe.as_secs_f64() / floor_user.as_secs_f64()
    );
}
