//! Raw system calls for the probe child.
//!
//! The probe child shares the test process's memory (`CLONE_VM`) and runs
//! while the parent thread goes on. Anything it calls must be
//! async-signal-safe, and more: libc wrappers report errors through `errno`,
//! a thread-local that here lives in the *parent* thread's TLS block, so a
//! failing libc call in the child would race with the parent. These wrappers
//! issue the system call directly and return `-errno` in the result, touching
//! no memory but their arguments.

use core::arch::asm;

/// The kernel's raw return value: `Ok(value)` or `Err(errno)`.
pub(crate) type RawResult = Result<usize, i32>;

#[inline(always)]
fn decode(ret: isize) -> RawResult {
    // The kernel returns -4095..=-1 for errors.
    if (-4095..0).contains(&ret) {
        Err((-ret) as i32)
    } else {
        Ok(ret as usize)
    }
}

/// Issues system call `nr` with six arguments (unused ones are ignored by
/// the kernel).
///
/// # Safety
/// The arguments must be valid for the system call, as for `syscall(2)`.
#[inline(always)]
pub(crate) unsafe fn syscall6(
    nr: i64,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> RawResult {
    let ret: isize;
    #[cfg(target_arch = "x86_64")]
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3,
            in("r10") a4, in("r8") a5, in("r9") a6,
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    #[cfg(target_arch = "aarch64")]
    unsafe {
        asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2, in("x2") a3, in("x3") a4, in("x4") a5, in("x5") a6,
            options(nostack)
        );
    }
    #[cfg(target_arch = "riscv64")]
    unsafe {
        asm!(
            "ecall",
            in("a7") nr,
            inlateout("a0") a1 as isize => ret,
            in("a1") a2, in("a2") a3, in("a3") a4, in("a4") a5, in("a5") a6,
            options(nostack)
        );
    }
    decode(ret)
}

// Other architectures build the crate without its probes (see `linux!`
// in lib.rs): every ability is unavailable there, with the architecture
// named as the cause.

macro_rules! sys {
    ($nr:expr) => { syscall6($nr, 0, 0, 0, 0, 0, 0) };
    ($nr:expr, $a:expr) => { syscall6($nr, $a as usize, 0, 0, 0, 0, 0) };
    ($nr:expr, $a:expr, $b:expr) => { syscall6($nr, $a as usize, $b as usize, 0, 0, 0, 0) };
    ($nr:expr, $a:expr, $b:expr, $c:expr) => {
        syscall6($nr, $a as usize, $b as usize, $c as usize, 0, 0, 0)
    };
    ($nr:expr, $a:expr, $b:expr, $c:expr, $d:expr) => {
        syscall6($nr, $a as usize, $b as usize, $c as usize, $d as usize, 0, 0)
    };
    ($nr:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        syscall6($nr, $a as usize, $b as usize, $c as usize, $d as usize, $e as usize, 0)
    };
    ($nr:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        syscall6($nr, $a as usize, $b as usize, $c as usize, $d as usize, $e as usize, $f as usize)
    };
}
pub(crate) use sys;
