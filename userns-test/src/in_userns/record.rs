//! What the child tells the parent, one JSON line on descriptor 3: the
//! test's outcome, or the step at which entering the namespaces failed.

use serde::{Deserialize, Serialize};

/// The child's last word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum Record {
    /// The body returned `()` or `Ok(())`.
    Passed,
    /// The body panicked.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The body returned `Err` (its Debug text, as libtest prints it).
    Failed { message: String },
    /// Entering the namespaces failed at `step` with `failure`.
    EnterFailed { step: String, failure: String },
    /// The runner of the re-executed binary has no test of that path.
    NotFound { path: String },
}

impl Record {
    /// The line written for it.
    pub(crate) fn line(&self) -> String {
        // Serialising this enum of strings cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }

    /// The last whole record in what the child wrote (a last line cut
    /// short by a child killed mid-write is not one).
    pub(crate) fn last_in(bytes: &[u8]) -> Option<Record> {
        String::from_utf8_lossy(bytes)
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
    }
}

/// Writes `record` to the parent's pipe, in as many writes as it takes (a
/// long panic message is above `PIPE_BUF`); the parent reads to the end.
pub(crate) fn send(record: &Record) {
    let line = record.line();
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        // SAFETY: a write from our own buffer to the record descriptor.
        let n = unsafe { libc::write(super::RECORD_FD, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        rest = &rest[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_any_text() {
        let r = Record::Panicked {
            message: "a\nb \"c\" \u{202e}\u{0}".into(),
            location: Some("src/x.rs:1:2".into()),
        };
        // A record, then one cut short (a child killed mid-write).
        let mut bytes = r.line().into_bytes();
        bytes.extend_from_slice(b"{\"outcome\":\"pas");
        assert_eq!(Record::last_in(&bytes), Some(r));
        assert_eq!(Record::last_in(b"garbage"), None);
    }
}
