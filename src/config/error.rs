//! What `load` reports when a configuration is refused: one located `Problem` per line.
//! Must not parse or check anything itself; it only carries and prints what others found.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a configuration value (or a problem with it) came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A line of the configuration file, counted from 1.
    Line(usize),
    /// A `HERALD_…` environment variable, by name.
    Env(String),
    /// Neither: a built-in default.
    Default,
}

/// One problem with the configuration, printed as one line:
/// `line 12: apps[0].limits.max_event_data_bytes: invalid type: …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where the offending value came from.
    pub origin: Origin,
    /// Key path such as `apps[0].limits.max_event_data_bytes`; `None` when there is none
    /// (TOML syntax errors).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Line(line) => write!(f, "line {line}: ")?,
            Origin::Env(var) => write!(f, "{var}: ")?,
            Origin::Default => {}
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded. Each list variant holds every problem found at
/// that stage; `Display` prints them one per line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why reading it failed.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML, or has a value of the wrong type or an unknown key.
    #[error("{}", join(.0))]
    File(Vec<Problem>),
    /// A `HERALD_…` environment variable names an unknown key or holds a value of the wrong type.
    #[error("{}", join(.0))]
    Env(Vec<Problem>),
    /// The configuration is well-formed but breaks a rule of `validate`.
    #[error("{}", join(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The located problems (empty for `Read`).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Read { .. } => &[],
            Self::File(problems) | Self::Env(problems) | Self::Invalid(problems) => problems,
        }
    }

    /// Every problem as one human-readable line, in the order found.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::Read { .. } => vec![self.to_string()],
            Self::File(problems) | Self::Env(problems) | Self::Invalid(problems) => {
                problems.iter().map(Problem::to_string).collect()
            }
        }
    }
}

fn join(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    lines.join("\n")
}

/// Rewrites serde's wording into the words the configuration file uses.
pub(super) fn friendly(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        return match rest.split_once(", expected ") {
            Some((_, expected)) => format!("unknown key (expected {expected})"),
            None => "unknown key".to_owned(),
        };
    }
    const WORDS: [(&str, &str); 6] = [
        ("expected u8", "expected an integer from 0 to 255"),
        ("expected u16", "expected an integer from 0 to 65535"),
        ("expected u32", "expected an integer from 0 to 4294967295"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected a sequence", "expected an array such as [\"a\", \"b\"]"),
    ];
    for (from, to) in WORDS {
        if let Some(head) = message.strip_suffix(from) {
            return format!("{head}{to}");
        }
    }
    if let Some((head, _)) = message.rsplit_once("expected struct ") {
        return format!("{head}expected a table");
    }
    message.to_owned()
}

/// `message` about the value at `key`, with every quoted value replaced by `***` when that
/// value may be or hold a secret (an app secret, a webhook header or URL, or a table holding
/// them), or when the key is unknown. serde quotes the offending value in its messages
/// (`invalid type: integer `1234`, expected a string`), and a secret must not reach a log.
pub(super) fn redact(key: Option<&str>, message: String) -> String {
    if key.is_some_and(|k| !may_hold_secret(k)) {
        return message;
    }
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                out.push_str("***");
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push_str("***");
    }
    out
}

/// `apps`, `apps[N]`, `apps[N].secret`, `apps[N].webhooks…` (URLs and headers).
fn may_hold_secret(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("apps") else {
        return false;
    };
    let rest = rest.trim_start_matches(|c: char| c == '[' || c == ']' || c.is_ascii_digit());
    rest.is_empty() || rest == ".secret" || rest.starts_with(".webhooks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_quoted() {
        let msg = "invalid type: integer `123456`, expected a string".to_owned();
        assert_eq!(redact(Some("apps[0].secret"), msg.clone()), "invalid type: integer `***`, expected a string");
        assert_eq!(
            redact(Some("apps[1].webhooks[0].headers.x-token"), "invalid type: string \"tok\"".into()),
            "invalid type: string \"***\""
        );
        assert_eq!(redact(Some("apps"), msg.clone()), "invalid type: integer `***`, expected a string");
        assert_eq!(redact(None, msg.clone()), "invalid type: integer `***`, expected a string");
        assert_eq!(redact(Some("server.port"), msg.clone()), msg);
        assert_eq!(redact(Some("apps[0].limits.max_batch_events"), msg.clone()), msg);
        assert_eq!(redact(Some("apps[0].key"), msg.clone()), msg);
    }

    #[test]
    fn problem_prints_origin_key_and_message() {
        let p = |origin, key: Option<&str>| Problem { origin, key: key.map(str::to_owned), message: "bad".into() };
        assert_eq!(p(Origin::Line(3), Some("server.prot")).to_string(), "line 3: server.prot: bad");
        assert_eq!(p(Origin::Env("HERALD_X".into()), Some("x")).to_string(), "HERALD_X: x: bad");
        assert_eq!(p(Origin::Default, None).to_string(), "bad");
    }

    #[test]
    fn friendly_wording() {
        assert_eq!(
            friendly("unknown field `prot`, expected `host` or `port`"),
            "unknown key (expected `host` or `port`)"
        );
        assert_eq!(
            friendly("invalid value: integer `70000`, expected u16"),
            "invalid value: integer `70000`, expected an integer from 0 to 65535"
        );
        assert_eq!(
            friendly("invalid type: integer `5`, expected struct ServerConfig"),
            "invalid type: integer `5`, expected a table"
        );
        assert_eq!(friendly("something else"), "something else");
    }
}
