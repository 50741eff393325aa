//! The ledger of one test binary in one run: a file with one fixed-size
//! slot per test, which every process of the binary that runs tests
//! updates in place as each test starts and ends.
//!
//! Why a file updated in place: a process killed by a signal, aborted, or
//! ended by `exit` inside a test writes nothing more, but what it wrote
//! with `pwrite` is already in the page cache. So after a crash the ledger
//! still says which tests had passed, which had failed, and which were
//! running: those are the crashed ones (their slot names the process, and a
//! process that is gone did not finish them). Updating a slot is two
//! positional writes, the state byte last, so a reader sees a slot's final
//! state only with the rest of it. Positional reads and writes of a plain
//! file work on every platform a test suite runs on.
//!
//! Layout (little-endian): a 64-byte header, `count` 32-byte slots,
//! `count + 1` `u32` offsets into the names, then the test names, sorted,
//! so that a process running one test finds its slot by binary search.

use std::fs::File;

const MAGIC: [u8; 8] = *b"UNSLEDG\x02";
const HEADER_LEN: usize = 64;
const SLOT_LEN: usize = 32;

/// Header fields, by offset.
const AT_KIND: usize = 8;
const AT_COUNT: usize = 12;
const AT_CLOSED: usize = 16;
const AT_WRITER_PID: usize = 20;
const AT_WRITER_START: usize = 24;
const AT_TOTAL: usize = 32;

/// Slot fields, by offset within the slot.
const S_STATE: usize = 0;
const S_FLAGS: usize = 1;
const S_REASON: usize = 2;
const S_REQUIRES: usize = 4;
const S_ATTEMPT: usize = 6;
const S_PID: usize = 8;
const S_START: usize = 16;
const S_DURATION: usize = 24;

/// Which process made the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// A process that runs every selected test of its binary (`cargo test`,
    /// a direct execution): it made the ledger and fills every slot.
    Complete = 1,
    /// nextest's listing: each test's slot is filled by its own process.
    Listing = 2,
}

/// Where a test is, as its slot says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Not started.
    Pending = 0,
    /// Started, not finished: running, or its process died.
    Started = 1,
    /// Ran and passed.
    Passed = 2,
    /// Ran and failed (or was failed before running).
    Failed = 3,
    /// Skipped: requirements unmet.
    Skipped = 4,
    /// `#[ignore]`d.
    Ignored = 5,
    /// Not selected by the filters.
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

/// A slot's flags: it ran although its requirements were unmet.
pub const FLAG_RAN_DESPITE_UNMET: u8 = 1;
/// The slot's process wrote a detail file for it (a message, a reason).
pub const FLAG_DETAIL: u8 = 2;

/// No index (`reason`, `requires`).
pub const NONE: u16 = u16::MAX;

/// One test as the ledger's creator describes it.
pub(crate) struct Entry<'a> {
    pub name: &'a str,
    pub state: SlotState,
    pub reason: u16,
    pub requires: u16,
}

/// What one slot holds, read at one moment.
#[derive(Debug, Clone, Copy)]
pub struct SlotView {
    /// Where the test is.
    pub state: SlotState,
    /// [`FLAG_RAN_DESPITE_UNMET`], [`FLAG_DETAIL`].
    pub flags: u8,
    /// Index of its skip reason in the binary's details, or [`NONE`].
    pub reason: u16,
    /// Index of its requirement set in the binary's details, or [`NONE`].
    pub requires: u16,
    /// nextest's attempt number (retries), 0 when unknown.
    pub attempt: u16,
    /// The process that started the test, with its start time.
    pub pid: u32,
    /// That process's start time, in clock ticks after boot.
    pub start: u64,
    /// How long the body ran, in microseconds.
    pub duration_us: u64,
}

/// The bytes of a new ledger for `entries` (sorted by name, unique).
pub(crate) fn build(kind: LedgerKind, entries: &[Entry<'_>], writer: (u32, u64)) -> Vec<u8> {
    let count = entries.len();
    let offsets_at = HEADER_LEN + count * SLOT_LEN;
    let names_at = offsets_at + (count + 1) * 4;
    let names_len: usize = entries.iter().map(|e| e.name.len()).sum();
    let total = names_at + names_len;
    let mut bytes = vec![0u8; total];
    let mut put = |at: usize, v: &[u8]| bytes[at..at + v.len()].copy_from_slice(v);
    put(0, &MAGIC);
    put(AT_KIND, &(kind as u32).to_le_bytes());
    put(AT_COUNT, &(count as u32).to_le_bytes());
    put(AT_WRITER_PID, &writer.0.to_le_bytes());
    put(AT_WRITER_START, &writer.1.to_le_bytes());
    put(AT_TOTAL, &(total as u64).to_le_bytes());
    let mut name_offset = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let slot = HEADER_LEN + i * SLOT_LEN;
        put(slot + S_STATE, &[e.state as u8]);
        put(slot + S_REASON, &e.reason.to_le_bytes());
        put(slot + S_REQUIRES, &e.requires.to_le_bytes());
        put(offsets_at + i * 4, &(name_offset as u32).to_le_bytes());
        put(names_at + name_offset, e.name.as_bytes());
        name_offset += e.name.len();
    }
    put(offsets_at + count * 4, &(name_offset as u32).to_le_bytes());
    bytes
}

/// A ledger file, opened read-write.
pub struct Ledger {
    file: File,
    count: usize,
    kind: LedgerKind,
    writer: (u32, u64),
    /// The offsets and the names, read once (they never change).
    index: Vec<u8>,
}

/// Why a ledger cannot be used.
#[derive(Debug)]
pub struct Damaged(pub &'static str);

fn read_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            match std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                at + done as u64,
            )? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => done += n,
            }
        }
        Ok(())
    }
}

fn write_at(file: &File, buf: &[u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, at)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            done +=
                std::os::windows::fs::FileExt::seek_write(file, &buf[done..], at + done as u64)?;
        }
        Ok(())
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

impl Ledger {
    /// Opens `file` (read-write) as a ledger, checking its layout.
    pub(crate) fn open(file: File) -> Result<Ledger, Damaged> {
        let len = file
            .metadata()
            .map_err(|_| Damaged("cannot be examined"))?
            .len() as usize;
        let mut header = [0u8; HEADER_LEN];
        if len < HEADER_LEN || read_at(&file, &mut header, 0).is_err() {
            return Err(Damaged("is shorter than its header"));
        }
        if header[..8] != MAGIC {
            return Err(Damaged("is not a ledger of this version"));
        }
        let kind = match u32_at(&header, AT_KIND) {
            1 => LedgerKind::Complete,
            2 => LedgerKind::Listing,
            _ => return Err(Damaged("has an unknown kind")),
        };
        let count = u32_at(&header, AT_COUNT) as usize;
        let offsets_at = HEADER_LEN + count * SLOT_LEN;
        let names_at = offsets_at + (count + 1) * 4;
        if u64_at(&header, AT_TOTAL) as usize != len || names_at > len {
            return Err(Damaged("has a layout that does not add up"));
        }
        let mut index = vec![0u8; len - offsets_at];
        read_at(&file, &mut index, offsets_at as u64).map_err(|_| Damaged("cannot be read"))?;
        Ok(Ledger {
            file,
            count,
            kind,
            writer: (
                u32_at(&header, AT_WRITER_PID),
                u64_at(&header, AT_WRITER_START),
            ),
            index,
        })
    }

    /// Test `i`'s name as stored; empty where the offsets are out of
    /// bounds (a damaged file).
    fn name_bytes(&self, i: usize) -> &[u8] {
        let names_at = (self.count + 1) * 4;
        let (a, b) = (
            u32_at(&self.index, i * 4) as usize,
            u32_at(&self.index, (i + 1) * 4) as usize,
        );
        self.index
            .get(names_at + a..names_at + b)
            .unwrap_or_default()
    }

    fn slot_at(i: usize) -> u64 {
        (HEADER_LEN + i * SLOT_LEN) as u64
    }

    /// How many tests.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Who made it.
    pub fn kind(&self) -> LedgerKind {
        self.kind
    }

    /// Test `i`'s name (`""` where the file is damaged).
    pub fn name(&self, i: usize) -> &str {
        std::str::from_utf8(self.name_bytes(i)).unwrap_or("")
    }

    /// Whether slot `i` holds a state this version knows and a name (a
    /// damaged file may not).
    pub fn valid(&self, i: usize) -> bool {
        let mut state = [0u8];
        read_at(&self.file, &mut state, Self::slot_at(i) + S_STATE as u64).is_ok()
            && SlotState::from_u8(state[0]).is_some()
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

    /// Marks test `i` started by this process. Best effort: a write that
    /// fails leaves the slot as it was (pending), which a report calls
    /// unknown or not run, never passed.
    pub(crate) fn start(&self, i: usize, attempt: u16, me: (u32, u64)) {
        if i >= self.count {
            return;
        }
        let mut fields = [0u8; SLOT_LEN - S_ATTEMPT];
        fields[..2].copy_from_slice(&attempt.to_le_bytes());
        fields[S_PID - S_ATTEMPT..S_PID - S_ATTEMPT + 4].copy_from_slice(&me.0.to_le_bytes());
        fields[S_START - S_ATTEMPT..S_START - S_ATTEMPT + 8].copy_from_slice(&me.1.to_le_bytes());
        let at = Self::slot_at(i);
        // Attempt, pid and start (the duration stays 0), then the state.
        if write_at(
            &self.file,
            &fields[..S_DURATION - S_ATTEMPT],
            at + S_ATTEMPT as u64,
        )
        .is_ok()
        {
            let _ = write_at(&self.file, &[SlotState::Started as u8], at + S_STATE as u64);
        }
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
        let at = Self::slot_at(i);
        let mut head = [0u8; 3];
        head[0] = flags;
        head[1..3].copy_from_slice(&reason.to_le_bytes());
        let wrote = write_at(&self.file, &head, at + S_FLAGS as u64).is_ok()
            && write_at(
                &self.file,
                &duration_us.to_le_bytes(),
                at + S_DURATION as u64,
            )
            .is_ok();
        if wrote {
            let _ = write_at(&self.file, &[state as u8], at + S_STATE as u64);
        }
    }

    /// Test `i`'s slot as it is now (pending where it cannot be read).
    pub fn view(&self, i: usize) -> SlotView {
        let mut s = [0u8; SLOT_LEN];
        let read = i < self.count && read_at(&self.file, &mut s, Self::slot_at(i)).is_ok();
        if !read {
            s = [0u8; SLOT_LEN];
        }
        let u16_at = |at: usize| u16::from_le_bytes([s[at], s[at + 1]]);
        SlotView {
            state: SlotState::from_u8(s[S_STATE]).unwrap_or(SlotState::Pending),
            flags: s[S_FLAGS],
            reason: u16_at(S_REASON),
            requires: u16_at(S_REQUIRES),
            attempt: u16_at(S_ATTEMPT),
            pid: u32_at(&s, S_PID),
            start: u64_at(&s, S_START),
            duration_us: u64_at(&s, S_DURATION),
        }
    }

    /// Whether the writing process closed the ledger (finished its
    /// binary).
    pub fn closed(&self) -> bool {
        let mut b = [0u8];
        read_at(&self.file, &mut b, AT_CLOSED as u64).is_ok() && b[0] != 0
    }

    /// Closes it: every slot holds its final state.
    pub(crate) fn close(&self) {
        let _ = write_at(&self.file, &[1], AT_CLOSED as u64);
    }

    /// The process that made it, with its start time.
    pub fn writer(&self) -> (u32, u64) {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (File, std::path::PathBuf) {
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
        (f, path)
    }

    fn open(bytes: &[u8]) -> Result<Ledger, Damaged> {
        let (f, path) = file_with(bytes);
        let _ = std::fs::remove_file(&path);
        Ledger::open(f)
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
        let bytes = build(LedgerKind::Listing, &entries, (42, 7));
        let (file, path) = file_with(&bytes);
        let ledger = Ledger::open(file).unwrap();
        assert_eq!(ledger.count(), 3);
        assert_eq!(ledger.kind(), LedgerKind::Listing);
        assert_eq!(ledger.find("b"), Some(1));
        assert_eq!(ledger.find("c::名前"), Some(2));
        assert_eq!(ledger.find("zz"), None);
        assert_eq!(ledger.name(0), "a::one");
        assert_eq!(ledger.view(1).reason, 3);
        assert_eq!(ledger.view(1).requires, 1);
        assert_eq!(ledger.writer(), (42, 7));
        ledger.start(0, 1, (99, 5));
        assert_eq!(ledger.view(0).state, SlotState::Started);
        // Another process's view of the file sees the write at once.
        let other = Ledger::open(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap(),
        )
        .unwrap();
        assert_eq!((other.view(0).pid, other.view(0).start), (99, 5));
        assert_eq!(other.view(0).attempt, 1);
        ledger.finish(0, SlotState::Passed, FLAG_DETAIL, NONE, 1234);
        let v = other.view(0);
        assert_eq!(
            (v.state, v.flags, v.duration_us),
            (SlotState::Passed, FLAG_DETAIL, 1234)
        );
        assert_eq!(v.requires, 0, "finishing keeps the requirement set");
        assert!(!ledger.closed());
        other.close();
        assert!(ledger.closed());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn damaged_files_are_refused_or_flagged() {
        let entries = [Entry {
            name: "a",
            state: SlotState::Pending,
            reason: NONE,
            requires: NONE,
        }];
        let good = build(LedgerKind::Complete, &entries, (1, 1));
        assert!(open(&good[..60]).is_err());
        assert!(open(&good[..good.len() - 1]).is_err());
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(open(&bad).is_err());
        let mut bad = good.clone();
        bad[HEADER_LEN] = 99; // slot state
        assert!(!open(&bad).unwrap().valid(0));
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] = 0xff; // the name, not UTF-8
        assert!(!open(&bad).unwrap().valid(0));
        assert!(open(&good).unwrap().valid(0));
    }
}
