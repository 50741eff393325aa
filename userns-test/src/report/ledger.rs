//! The ledger of one test binary in one run: a file with one fixed-size
//! slot per test, mapped into every process of the binary that runs tests
//! and updated in place as each test starts and ends.
//!
//! Why a mapped file: a process killed by a signal, aborted, or ended by
//! `exit` inside a test writes nothing more, but what it stored in a shared
//! mapping is already in the page cache. So after a crash the ledger still
//! says which tests had passed, which had failed, and which were running:
//! those are the crashed ones (their slot names the process, and a process
//! that is gone did not finish them). Updating a slot is a few stores, so a
//! 5,000-test binary pays for its crash record what it pays for a counter.
//!
//! Layout (native byte order, the file never leaves the machine):
//! a 128-byte [`Header`], `count` 32-byte [`Slot`]s, `count + 1` `u32`
//! offsets into the names, then the test names, sorted, so that a process
//! running one test finds its slot by binary search.

use std::fs::File;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

const MAGIC: [u8; 8] = *b"UNSLEDG\x01";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 128;
const SLOT_LEN: usize = 32;

/// Which process made the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LedgerKind {
    /// A process that runs every selected test of its binary (`cargo test`,
    /// a direct execution): it made the ledger and fills every slot.
    Complete = 1,
    /// nextest's listing: each test's slot is filled by its own process.
    Listing = 2,
}

/// Where a test is, as its slot says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Not started.
    Pending = 0,
    /// Started, not finished: running, or its process died.
    Started = 1,
    Passed = 2,
    Failed = 3,
    Skipped = 4,
    Ignored = 5,
    FilteredOut = 6,
}

impl SlotState {
    fn from_u8(v: u8) -> Option<SlotState> {
        Some(match v {
            0 => SlotState::Pending,
            1 => SlotState::Started,
            2 => SlotState::Passed,
            3 => SlotState::Failed,
            4 => SlotState::Skipped,
            5 => SlotState::Ignored,
            6 => SlotState::FilteredOut,
            _ => return None,
        })
    }
}

/// A slot's flags.
pub(crate) const FLAG_RAN_DESPITE_UNMET: u8 = 1;
/// The slot's process wrote a detail file for it (a message, a reason).
pub(crate) const FLAG_DETAIL: u8 = 2;

/// No index (`reason`, `requires`).
pub(crate) const NONE: u16 = u16::MAX;

#[repr(C)]
struct Header {
    magic: [u8; 8],
    version: u32,
    kind: u32,
    count: u32,
    /// nextest: how many tests the listing left to their own processes.
    expected: AtomicU32,
    /// How many of them reported (retries count again).
    done: AtomicU32,
    /// 1 once the writing process (a complete run) finished its binary.
    closed: AtomicU32,
    writer_pid: u32,
    _pad: u32,
    /// The writer's start time (clock ticks after boot), so that a pid
    /// reused by another process is not taken for it.
    writer_start: u64,
    slots_at: u64,
    offsets_at: u64,
    names_at: u64,
    total_len: u64,
    /// nextest: how many test processes reported a failure.
    failed: AtomicU32,
    _reserved: [u8; 128 - 84],
}

#[repr(C)]
struct Slot {
    state: AtomicU8,
    flags: AtomicU8,
    /// Index of the skip reason in the binary's details, or [`NONE`].
    reason: AtomicU16,
    /// Index of the requirement set in the binary's details, or [`NONE`].
    requires: AtomicU16,
    /// nextest's attempt number (retries), 0 when unknown.
    attempt: AtomicU16,
    /// The process that started the test.
    pid: AtomicU32,
    _pad: u32,
    /// That process's start time, in clock ticks after boot.
    start: AtomicU64,
    /// How long the body ran, in microseconds.
    duration_us: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_LEN);
const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_LEN);

/// One test as the ledger's creator describes it.
pub(crate) struct Entry<'a> {
    pub name: &'a str,
    pub state: SlotState,
    pub reason: u16,
    pub requires: u16,
}

/// What one slot holds, read at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotView {
    pub state: SlotState,
    pub flags: u8,
    pub reason: u16,
    pub requires: u16,
    pub attempt: u16,
    pub pid: u32,
    pub start: u64,
    pub duration_us: u64,
}

/// The bytes of a new ledger for `entries` (sorted by name, unique).
pub(crate) fn build(
    kind: LedgerKind,
    entries: &[Entry<'_>],
    expected: u32,
    writer: (u32, u64),
) -> Vec<u8> {
    let count = entries.len();
    let slots_at = HEADER_LEN;
    let offsets_at = slots_at + count * SLOT_LEN;
    let names_at = offsets_at + (count + 1) * 4;
    let names_len: usize = entries.iter().map(|e| e.name.len()).sum();
    let total = names_at + names_len;
    let mut bytes = vec![0u8; total];
    bytes[0..8].copy_from_slice(&MAGIC);
    let mut put = |at: usize, v: &[u8]| bytes[at..at + v.len()].copy_from_slice(v);
    put(8, &VERSION.to_ne_bytes());
    put(12, &(kind as u32).to_ne_bytes());
    put(16, &(count as u32).to_ne_bytes());
    put(20, &expected.to_ne_bytes());
    put(32, &writer.0.to_ne_bytes());
    put(40, &writer.1.to_ne_bytes());
    put(48, &(slots_at as u64).to_ne_bytes());
    put(56, &(offsets_at as u64).to_ne_bytes());
    put(64, &(names_at as u64).to_ne_bytes());
    put(72, &(total as u64).to_ne_bytes());
    let mut name_offset = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let slot = slots_at + i * SLOT_LEN;
        put(slot, &[e.state as u8, 0]);
        put(slot + 2, &e.reason.to_ne_bytes());
        put(slot + 4, &e.requires.to_ne_bytes());
        put(offsets_at + i * 4, &(name_offset as u32).to_ne_bytes());
        put(names_at + name_offset, e.name.as_bytes());
        name_offset += e.name.len();
    }
    put(offsets_at + count * 4, &(name_offset as u32).to_ne_bytes());
    bytes
}

/// A ledger mapped into this process.
pub(crate) struct Ledger {
    ptr: NonNull<u8>,
    len: usize,
    count: usize,
    kind: LedgerKind,
    offsets_at: usize,
    names_at: usize,
    slots_at: usize,
}

// SAFETY: every field shared with other processes is an atomic; the rest
// of the mapping (names, offsets, header constants) is written once, before
// the file is renamed into place, and only read afterwards.
unsafe impl Send for Ledger {}
unsafe impl Sync for Ledger {}

/// Why a ledger cannot be used.
#[derive(Debug)]
pub(crate) struct Damaged(pub &'static str);

impl Ledger {
    /// Maps `file` (opened read-write) and checks its layout.
    pub(crate) fn map(file: &File) -> Result<Ledger, Damaged> {
        let len = file
            .metadata()
            .map_err(|_| Damaged("cannot be examined"))?
            .len() as usize;
        if len < HEADER_LEN {
            return Err(Damaged("is shorter than its header"));
        }
        let size = std::num::NonZeroUsize::new(len).ok_or(Damaged("is empty"))?;
        // SAFETY: a fresh shared mapping of a file we hold open; unmapped on
        // drop. The file lives in a directory private to this uid, so no
        // other user can truncate it under us.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                file.as_fd(),
                0,
            )
        }
        .map_err(|_| Damaged("cannot be mapped"))?;
        let mut ledger = Ledger {
            ptr: ptr.cast(),
            len,
            count: 0,
            kind: LedgerKind::Complete,
            offsets_at: 0,
            names_at: 0,
            slots_at: 0,
        };
        ledger.check()?;
        Ok(ledger)
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes long and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn header(&self) -> &Header {
        // SAFETY: checked to be at least HEADER_LEN long; page-aligned.
        unsafe { &*self.ptr.as_ptr().cast::<Header>() }
    }

    fn u64_at(&self, at: usize) -> u64 {
        let b = self.bytes();
        u64::from_ne_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
    }

    fn check(&mut self) -> Result<(), Damaged> {
        let h = self.header();
        if h.magic != MAGIC || h.version != VERSION {
            return Err(Damaged("is not a ledger of this version"));
        }
        let kind = match h.kind {
            1 => LedgerKind::Complete,
            2 => LedgerKind::Listing,
            _ => return Err(Damaged("has an unknown kind")),
        };
        let count = h.count as usize;
        let (slots_at, offsets_at, names_at, total) = (
            self.u64_at(48) as usize,
            self.u64_at(56) as usize,
            self.u64_at(64) as usize,
            self.u64_at(72) as usize,
        );
        let consistent = slots_at == HEADER_LEN
            && offsets_at == slots_at + count * SLOT_LEN
            && names_at == offsets_at + (count + 1) * 4
            && total == self.len
            && names_at <= total;
        if !consistent {
            return Err(Damaged("has a layout that does not add up"));
        }
        self.count = count;
        self.kind = kind;
        self.slots_at = slots_at;
        self.offsets_at = offsets_at;
        self.names_at = names_at;
        // Names and slots are not walked here: a process running one test
        // reads two dozen of them (a binary search), and checking every one
        // would make each test's process cost grow with its binary. Each
        // access checks its own bounds instead.
        Ok(())
    }

    fn offset(&self, i: usize) -> u32 {
        let at = self.offsets_at + i * 4;
        u32::from_ne_bytes(self.bytes()[at..at + 4].try_into().unwrap_or([0; 4]))
    }

    /// Test `i`'s name as stored; empty where the offsets are out of
    /// bounds (a damaged file).
    fn name_bytes(&self, i: usize) -> &[u8] {
        let (a, b) = (self.offset(i) as usize, self.offset(i + 1) as usize);
        self.bytes()
            .get(self.names_at + a..self.names_at + b)
            .unwrap_or_default()
    }

    fn slot(&self, i: usize) -> &Slot {
        // SAFETY: i < count, checked by callers; slots are 32-byte aligned
        // within a page-aligned mapping.
        unsafe {
            &*self
                .ptr
                .as_ptr()
                .add(self.slots_at + i * SLOT_LEN)
                .cast::<Slot>()
        }
    }

    /// How many tests.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Who made it.
    pub(crate) fn kind(&self) -> LedgerKind {
        self.kind
    }

    /// Test `i`'s name (`""` where the file is damaged).
    pub(crate) fn name(&self, i: usize) -> &str {
        std::str::from_utf8(self.name_bytes(i)).unwrap_or("")
    }

    /// Whether slot `i` holds a state this version knows (a damaged file
    /// may not).
    pub(crate) fn valid(&self, i: usize) -> bool {
        SlotState::from_u8(self.slot(i).state.load(Ordering::Acquire)).is_some()
            && !self.name_bytes(i).is_empty()
            && std::str::from_utf8(self.name_bytes(i)).is_ok()
    }

    /// The slot of the test named `name`: O(log n).
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.name_bytes(mid).cmp(name.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Marks test `i` started by this process.
    pub(crate) fn start(&self, i: usize, attempt: u16, me: (u32, u64)) {
        if i >= self.count {
            return;
        }
        let s = self.slot(i);
        s.pid.store(me.0, Ordering::Relaxed);
        s.start.store(me.1, Ordering::Relaxed);
        s.attempt.store(attempt, Ordering::Relaxed);
        s.state.store(SlotState::Started as u8, Ordering::Release);
    }

    /// Records how test `i` ended.
    pub(crate) fn finish(
        &self,
        i: usize,
        state: SlotState,
        flags: u8,
        reason: u16,
        duration_us: u64,
    ) {
        if i >= self.count {
            return;
        }
        let s = self.slot(i);
        s.duration_us.store(duration_us, Ordering::Relaxed);
        s.reason.store(reason, Ordering::Relaxed);
        s.flags.store(flags, Ordering::Relaxed);
        s.state.store(state as u8, Ordering::Release);
    }

    /// Test `i`'s slot as it is now.
    pub(crate) fn view(&self, i: usize) -> SlotView {
        let s = self.slot(i);
        let state =
            SlotState::from_u8(s.state.load(Ordering::Acquire)).unwrap_or(SlotState::Pending);
        SlotView {
            state,
            flags: s.flags.load(Ordering::Relaxed),
            reason: s.reason.load(Ordering::Relaxed),
            requires: s.requires.load(Ordering::Relaxed),
            attempt: s.attempt.load(Ordering::Relaxed),
            pid: s.pid.load(Ordering::Relaxed),
            start: s.start.load(Ordering::Relaxed),
            duration_us: s.duration_us.load(Ordering::Relaxed),
        }
    }

    /// nextest: how many tests the listing left to their own processes.
    pub(crate) fn expected(&self) -> u32 {
        self.header().expected.load(Ordering::Relaxed)
    }

    /// Counts one more reporting process; returns the new count.
    pub(crate) fn count_done(&self) -> u32 {
        self.header().done.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Counts one more failed test; returns the new count.
    pub(crate) fn count_failed(&self) -> u32 {
        self.header().failed.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Whether the writing process closed the ledger (finished its
    /// binary).
    pub(crate) fn closed(&self) -> bool {
        self.header().closed.load(Ordering::Acquire) != 0
    }

    /// Closes it: every slot holds its final state.
    pub(crate) fn close(&self) {
        self.header().closed.store(1, Ordering::Release);
    }

    /// The process that made it, with its start time.
    pub(crate) fn writer(&self) -> (u32, u64) {
        (self.header().writer_pid, self.header().writer_start)
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no reference into it outlives self.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "userns-test-ledger-{}-{}",
            std::process::id(),
            crate::safe_fs::random_u64()
        ));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        f.write_all(bytes).unwrap();
        let _ = std::fs::remove_file(&path);
        f
    }

    #[test]
    fn slots_are_found_by_name_and_survive_in_the_file() {
        let entries = [
            Entry {
                name: "a::one",
                state: SlotState::Pending,
                reason: NONE,
                requires: 0,
            },
            Entry {
                name: "b",
                state: SlotState::Skipped,
                reason: 3,
                requires: 1,
            },
            Entry {
                name: "c::名前",
                state: SlotState::FilteredOut,
                reason: NONE,
                requires: NONE,
            },
        ];
        let bytes = build(LedgerKind::Listing, &entries, 1, (42, 7));
        let file = file_with(&bytes);
        let ledger = Ledger::map(&file).unwrap();
        assert_eq!(ledger.count(), 3);
        assert_eq!(ledger.kind(), LedgerKind::Listing);
        assert_eq!(ledger.find("b"), Some(1));
        assert_eq!(ledger.find("c::名前"), Some(2));
        assert_eq!(ledger.find("zz"), None);
        assert_eq!(ledger.name(0), "a::one");
        assert_eq!(ledger.view(1).reason, 3);
        assert_eq!(ledger.writer(), (42, 7));
        ledger.start(0, 1, (99, 5));
        assert_eq!(ledger.view(0).state, SlotState::Started);
        // Another mapping of the same file sees the store at once.
        let other = Ledger::map(&file).unwrap();
        assert_eq!(other.view(0).pid, 99);
        ledger.finish(0, SlotState::Passed, 0, NONE, 1234);
        assert_eq!(other.view(0).state, SlotState::Passed);
        assert_eq!(other.view(0).duration_us, 1234);
        assert_eq!(other.count_done(), 1);
        assert_eq!(ledger.count_done(), 2);
        assert!(!ledger.closed());
        other.close();
        assert!(ledger.closed());
    }

    #[test]
    fn damaged_files_are_refused_or_flagged() {
        let entries = [Entry {
            name: "a",
            state: SlotState::Pending,
            reason: NONE,
            requires: NONE,
        }];
        let good = build(LedgerKind::Complete, &entries, 0, (1, 1));
        assert!(Ledger::map(&file_with(&good[..100])).is_err());
        assert!(Ledger::map(&file_with(&good[..good.len() - 1])).is_err());
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(Ledger::map(&file_with(&bad)).is_err());
        let mut bad = good.clone();
        bad[HEADER_LEN] = 99; // slot state
        let ledger = Ledger::map(&file_with(&bad)).unwrap();
        assert!(!ledger.valid(0));
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] = 0xff; // the name, not UTF-8
        assert!(!Ledger::map(&file_with(&bad)).unwrap().valid(0));
        let ledger = Ledger::map(&file_with(&good)).unwrap();
        assert!(ledger.valid(0));
    }
}
