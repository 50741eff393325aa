//! JSON text, written by the test side: its records for the `userns-test`
//! command (verdicts, skip reasons, a test's failure), and libtest's JSON
//! events under the runner.
//!
//! Why not `serde_json`: this crate is linked into other people's test
//! crates, and every trait impl of every crate in a test target's graph
//! takes part in its type inference. `serde_json` implements
//! `PartialEq<Value>` for `u8`, `i32`, `f64`, `bool`, `str`, ...: with it in
//! the graph, `assert_eq!(3u8, v.iter().sum())` or `x == 0 as _` stop
//! compiling in tests that never mention it. So the test side writes JSON
//! with this small writer of its own (RFC 8259; its output is read back by
//! `serde_json`, a strict parser, in the command and in this crate's
//! tests), and the command, which is not linked into anyone's tests, reads
//! and writes reports with `serde_json`.

use std::fmt::Write as _;

/// A JSON value, objects in the order their members were added.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i128),
    /// A number with a fraction (`NaN` and infinities are written `null`).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An object of `members`.
    pub fn object<K: Into<String>>(members: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An object with one member, `kind`, naming a variant: the start of
    /// an internally tagged enum's object.
    pub(crate) fn tagged(tag: &str, kind: &str) -> Json {
        Json::object([(tag, Json::from(kind))])
    }

    /// Adds `key: value` to an object (nothing for another value).
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Json {
        if let Json::Object(members) = &mut self {
            members.push((key.to_owned(), value.into()));
        }
        self
    }

    /// Adds `key: value` where `value` is `Some`.
    pub fn with_some(self, key: &str, value: Option<impl Into<Json>>) -> Json {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The JSON text, on one line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Float(f) if f.is_finite() => {
                // Rust's shortest round-trip form, never an exponent; a
                // whole value keeps its `.0` so that it reads back as one.
                let text = format!("{f:?}");
                out.push_str(&text);
            }
            Json::Float(_) => out.push_str("null"),
            Json::Str(s) => write_string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// `s` as a JSON string: `"` and `\` escaped, and every control character
/// (RFC 8259 requires U+0000 to U+001F; DEL and the C1 controls too, and
/// the line and paragraph separators, which some JavaScript readers take
/// for line ends) as `\uXXXX`. Everything else is written as it is.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::Str(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::Str(s)
    }
}

impl From<&String> for Json {
    fn from(s: &String) -> Json {
        Json::Str(s.clone())
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

macro_rules! whole_numbers {
    ($($t:ty),*) => {$(
        impl From<$t> for Json {
            fn from(n: $t) -> Json {
                Json::Int(n as i128)
            }
        }
    )*};
}
whole_numbers!(u8, u16, u32, u64, usize, i8, i16, i32, i64);

impl From<f64> for Json {
    fn from(f: f64) -> Json {
        Json::Float(f)
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map_or(Json::Null, Into::into)
    }
}

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(v: Vec<T>) -> Json {
        Json::Array(v.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_json_for_any_string() {
        let s = "a\"b\\c\nd\re\tf\u{0}g\u{1b}h\u{7f}i\u{85}j\u{2028}k\u{FFFE}l🦀";
        let v = Json::object([("k\u{1}", Json::from(s)), ("n", Json::Null)])
            .with("i", -3i32)
            .with("u", u64::MAX)
            .with("f", 0.25)
            .with("w", 2.0)
            .with("nan", f64::NAN)
            .with("b", true)
            .with("a", vec!["x", "y"]);
        assert_eq!(
            v.to_text(),
            "{\"k\\u0001\":\"a\\\"b\\\\c\\nd\\re\\tf\\u0000g\\u001bh\\u007fi\\u0085j\\u2028k\u{FFFE}l🦀\",\
             \"n\":null,\"i\":-3,\"u\":18446744073709551615,\"f\":0.25,\"w\":2.0,\"nan\":null,\
             \"b\":true,\"a\":[\"x\",\"y\"]}"
        );
    }
}
