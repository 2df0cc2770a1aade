//! The `HERALD_` environment overlay: `HERALD_SECTION__KEY=value` sets `section.key`.
//! Must not read the process environment itself (callers pass the variables) nor check rules.
//!
//! Segments are separated by `__` and lowercased; a segment of digits indexes an array, and
//! the index equal to the array's length appends (`HERALD_APPS__1__KEY` adds a second app).
//! A key that currently holds a string takes the value verbatim (so `HERALD_APPS__0__ID=123`
//! stays a string); any other value is read as a TOML bool, integer, float or array when it
//! parses as one (`true`, `30`, `["a","b"]`), and as a string otherwise.

use std::collections::HashMap;

use serde::Deserialize;
use toml::{Table, Value};

use super::Config;
use super::error::{Origin, Problem, friendly, redact};
use super::load::app_defaults;
use super::path::{self, Seg};

/// The variable `main` reads the configuration file path from; not a configuration key.
pub const CONFIG_FILE_VAR: &str = "HERALD_CONFIG";

const PREFIX: &str = "HERALD_";
const SEPARATOR: &str = "__";

/// `HERALD_` variables that are not configuration keys, and so are left alone.
const NOT_KEYS: [&str; 1] = [CONFIG_FILE_VAR];

/// Which variable set each key path (including array elements a variable appended).
pub(super) type SetBy = HashMap<String, String>;

/// One `HERALD_` variable, split into its key path.
struct Var {
    name: String,
    segs: Vec<Seg>,
    value: String,
}

/// Applies every `HERALD_` variable of `vars` to `table`, which must already deserialize into a
/// `Config`. Variables apply in key order (indices numerically), so appends happen in order.
/// A variable that names an unknown key or would make the table fail to deserialize is
/// reported by name and not applied; all such variables are reported together.
pub(super) fn overlay(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<SetBy, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for (name, value) in vars {
        match parse_name(&name) {
            None => {}
            Some(Ok(segs)) => parsed.push(Var { name, segs, value }),
            Some(Err(message)) => problems.push(Problem { origin: Origin::Env(name), key: None, message }),
        }
    }
    parsed.sort_by(|a, b| a.segs.cmp(&b.segs).then_with(|| a.name.cmp(&b.name)));

    let mut set_by = SetBy::new();
    for var in parsed {
        let key = path::render(&var.segs);
        let mut candidate = table.clone();
        let mut appended = Vec::new();
        let result = set(&mut candidate, &var.segs, &var.value, &mut appended).and_then(|()| check(&candidate));
        match result {
            Ok(()) => {
                *table = candidate;
                for element in appended {
                    set_by.entry(element).or_insert_with(|| var.name.clone());
                }
                set_by.insert(key, var.name);
            }
            Err(message) => {
                let message = redact(Some(&key), message);
                problems.push(Problem { origin: Origin::Env(var.name), key: Some(key), message });
            }
        }
    }
    if problems.is_empty() { Ok(set_by) } else { Err(problems) }
}

/// The key path a variable names; `None` for variables that are not configuration keys.
fn parse_name(name: &str) -> Option<Result<Vec<Seg>, String>> {
    let rest = name.strip_prefix(PREFIX)?;
    if NOT_KEYS.contains(&name) {
        return None;
    }
    let segs = rest.split(SEPARATOR).map(|part| {
        if part.is_empty() {
            Err(format!("empty key segment; separate keys with a single `{SEPARATOR}`"))
        } else if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().map(Seg::Index).map_err(|_| format!("index `{part}` is too large"))
        } else {
            Ok(Seg::Key(part.to_ascii_lowercase()))
        }
    });
    Some(segs.collect())
}

fn check(table: &Table) -> Result<(), String> {
    Config::deserialize(table.clone()).map(drop).map_err(|error| friendly(error.message()))
}

/// Sets the value at `segs` (never empty) inside `table`, creating tables on the way.
fn set(table: &mut Table, segs: &[Seg], raw: &str, appended: &mut Vec<String>) -> Result<(), String> {
    let mut root = Value::Table(std::mem::take(table));
    let result = set_in(&mut root, segs, raw, "", appended);
    if let Value::Table(root) = root {
        *table = root;
    }
    result
}

fn set_in(slot: &mut Value, segs: &[Seg], raw: &str, at: &str, appended: &mut Vec<String>) -> Result<(), String> {
    let Some((seg, rest)) = segs.split_first() else {
        *slot = typed(raw, Some(slot));
        return Ok(());
    };
    match (seg, slot) {
        (Seg::Key(key), Value::Table(table)) => {
            let here = path::child_key(at, key);
            if rest.is_empty() {
                let value = typed(raw, table.get(key));
                table.insert(key.clone(), value);
                return Ok(());
            }
            let child = table.entry(key.clone()).or_insert_with(|| Value::Table(Table::new()));
            set_in(child, rest, raw, &here, appended)
        }
        (Seg::Index(index), Value::Array(items)) => {
            let len = items.len();
            if *index > len {
                return Err(format!("index {index} is out of range: {at} has {len} entries (use {len} to append)"));
            }
            let here = path::child_index(at, *index);
            if *index == len {
                let element = if rest.is_empty() { typed(raw, items.first()) } else { new_element(at) };
                items.push(element);
                appended.push(here.clone());
                if rest.is_empty() {
                    return Ok(());
                }
            }
            match items.get_mut(*index) {
                Some(child) => set_in(child, rest, raw, &here, appended),
                None => Err(format!("index {index} is out of range")),
            }
        }
        (Seg::Index(_), other) => Err(format!("{at} is not an array (found {})", other.type_str())),
        (Seg::Key(_), other) => Err(format!("{at} is not a table (found {})", other.type_str())),
    }
}

/// A fresh element for the array at `array_path`: a default app for `apps`.
fn new_element(array_path: &str) -> Value {
    Value::Table(if array_path == "apps" { app_defaults() } else { Table::new() })
}

/// The value a variable stands for, given what the key holds now.
fn typed(raw: &str, current: Option<&Value>) -> Value {
    if let Some(Value::String(_)) = current {
        return Value::String(raw.to_owned());
    }
    match raw.trim().parse::<Value>() {
        Ok(value @ (Value::Boolean(_) | Value::Integer(_) | Value::Float(_) | Value::Array(_))) => value,
        _ => Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn base() -> Table {
        let mut table = Table::try_from(Config::default()).unwrap();
        table.insert("apps".into(), Value::Array(vec![Value::Table(app_defaults())]));
        table
    }

    #[test]
    fn names_map_to_lowercase_paths() {
        let segs = parse_name("HERALD_APPS__10__LIMITS__MAX_EVENT_DATA_BYTES").unwrap().unwrap();
        assert_eq!(path::render(&segs), "apps[10].limits.max_event_data_bytes");
        assert!(parse_name("PATH").is_none());
        assert!(parse_name(CONFIG_FILE_VAR).is_none());
        assert!(parse_name("HERALD_SERVER____PORT").unwrap().is_err());
        assert!(parse_name("HERALD_SERVER__").unwrap().is_err());
    }

    #[test]
    fn values_take_the_type_of_the_key() {
        assert_eq!(typed("30", Some(&Value::Integer(1))), Value::Integer(30));
        assert_eq!(typed("30", Some(&Value::String(String::new()))), Value::String("30".into()));
        assert_eq!(typed("true", None), Value::Boolean(true));
        assert_eq!(typed("1.5", None), Value::Float(1.5));
        assert_eq!(typed("json", None), Value::String("json".into()));
        let array = typed(r#"["a","b"]"#, None);
        assert_eq!(array, Value::Array(vec![Value::String("a".into()), Value::String("b".into())]));
    }

    #[test]
    fn out_of_range_index_is_reported() {
        let mut table = base();
        let problems = overlay(&mut table, vars(&[("HERALD_APPS__5__ID", "x")])).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].origin, Origin::Env("HERALD_APPS__5__ID".into()));
        assert!(problems[0].message.contains("out of range"), "{problems:?}");
    }

    #[test]
    fn indexing_a_scalar_is_reported() {
        let mut table = base();
        let problems = overlay(&mut table, vars(&[("HERALD_SERVER__PORT__X", "1")])).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "HERALD_SERVER__PORT__X: server.port.x: server.port is not a table (found integer)"
        );
    }

    #[test]
    fn appends_are_recorded_for_locating_issues() {
        let mut table = base();
        let env = vars(&[("HERALD_APPS__1__KEY", "k2"), ("HERALD_APPS__1__ID", "2")]);
        let set_by = overlay(&mut table, env).unwrap();
        assert_eq!(set_by.get("apps[1]").map(String::as_str), Some("HERALD_APPS__1__ID"));
        assert_eq!(set_by.get("apps[1].key").map(String::as_str), Some("HERALD_APPS__1__KEY"));
    }
}
