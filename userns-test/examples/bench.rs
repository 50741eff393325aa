//! Benchmark: what the probes and the cached check cost.
//!
//! `cargo run --release -p userns-test --example bench`
//!
//! Prints, as medians of many runs (cache bypassed, a fresh probe child
//! each time):
//! - the floor: a bare `clone(CLONE_VM|CLONE_VFORK|CLONE_NEWUSER)` whose
//!   child writes setgroups/uid_map/gid_map, and `unshare -Ur true` for
//!   the command-line way;
//! - each ability's probe latency;
//! - the cached check (`decide`) once verdicts are known;
//! - the `user` probe (and, for reference, a plain `fork()`) from a process
//!   holding 0, 1 and 4 GiB of touched memory.

use std::ffi::CString;
use std::time::{Duration, Instant};

use userns_test::{Ability, ProbeOptions, probe_with};

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

/// Prepared before the clone: the child only opens and writes.
struct Floor {
    paths: [CString; 3],
    lines: [Vec<u8>; 3],
}

extern "C" fn floor_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the Floor the suspended parent (CLONE_VFORK) holds.
    let floor = unsafe { &*(arg as *const Floor) };
    for (path, line) in floor.paths.iter().zip(&floor.lines) {
        // SAFETY: raw open/write/close on prepared buffers.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, line.as_ptr().cast(), line.len()) < 0 {
                libc::_exit(1);
            }
            libc::close(fd);
        }
    }
    0
}

/// The floor for `user`: one bare clone into a new user namespace plus the
/// three map writes, no bookkeeping.
fn bare_user_clone(floor: &Floor, stack: &mut [u8]) {
    // SAFETY: the child runs on `stack` while this thread is suspended
    // (CLONE_VFORK) and writes nothing of ours.
    unsafe {
        let top = stack.as_mut_ptr().add(stack.len()).cast();
        let pid = libc::clone(
            floor_child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_NEWUSER | libc::SIGCHLD,
            (floor as *const Floor).cast_mut().cast(),
        );
        assert!(
            pid > 0,
            "bare clone failed: {}",
            std::io::Error::last_os_error()
        );
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert_eq!(status, 0, "bare clone child failed");
    }
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
    let uid = unsafe { libc::geteuid() };
    let gid = unsafe { libc::getegid() };
    let floor = Floor {
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
    };
    let mut stack = vec![0u8; 256 * 1024];

    println!("host: {}", userns_test::HostFacts::get().summary());
    println!("\n## Probe latency (median; cache bypassed; fresh child each run)");
    let floor_user = measure(2000, || bare_user_clone(&floor, &mut stack));
    println!("{:<28}{}", "floor: bare clone+maps", us(floor_user));
    let cli = measure(100, || {
        std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "true"])
            .status()
            .map(drop)
            .unwrap_or(())
    });
    println!("{:<28}{}", "unshare -Ur true (CLI)", us(cli));
    let mut namespace_total = Duration::ZERO;
    let mut user_probe = Duration::ZERO;
    for ability in Ability::ALL {
        let runs = if ability.is_external() { 50 } else { 1000 };
        let available = probe_with(ability, &options).is_available();
        let t = measure(runs, || {
            std::hint::black_box(probe_with(ability, &options));
        });
        if ability == Ability::User {
            user_probe = t;
        }
        if ability.needs_user_namespace() && !ability.is_external() {
            namespace_total += t;
        }
        let ratio = if ability.needs_user_namespace() && !ability.is_external() {
            format!("  {:.2}x floor", t.as_secs_f64() / floor_user.as_secs_f64())
        } else {
            String::new()
        };
        let verdict = if available { "yes" } else { "no" };
        println!("{:<28}{}  ({verdict}){ratio}", ability.name(), us(t));
    }
    println!(
        "{:<28}{}",
        "sum of namespace abilities",
        us(namespace_total)
    );
    let sweep = measure(200, || {
        for a in Ability::ALL
            .into_iter()
            .filter(|a| a.needs_user_namespace() && !a.is_external())
        {
            std::hint::black_box(probe_with(a, &options));
        }
    });
    println!("{:<28}{}", "sequential sweep of them", us(sweep));

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
    std::hint::black_box(&held);
    println!(
        "\nuser probe vs floor: {:.2}x",
        user_probe.as_secs_f64() / floor_user.as_secs_f64()
    );
}
