//! Reads the configuration file's TOML and checks it against the `Config` schema, by line.
//! Must not apply defaults or the environment, nor check semantic rules (`validate` does).

use std::collections::HashMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer};

use super::Config;
use super::error::{Origin, Problem, friendly, redact};
use super::path::{self, Seg};

/// Stop looking for more schema errors after this many (each round re-reads the document).
const MAX_PROBLEMS: usize = 50;

/// The file's keys, already known to deserialize into a `Config`.
pub(super) struct FileTable {
    /// Only the keys the file sets; defaults are not filled in.
    pub(super) table: toml::Table,
    /// The line of each key path the file sets.
    pub(super) lines: KeyLines,
}

/// Line numbers (from 1) of the key paths present in the file.
#[derive(Debug, Default)]
pub(super) struct KeyLines(HashMap<String, usize>);

impl KeyLines {
    /// The line where `path` is set, if the file sets it.
    pub(super) fn get(&self, path: &str) -> Option<usize> {
        self.0.get(path).copied()
    }
}

/// One key or array element of the document, with where it sits in the text.
struct Entry {
    segs: Vec<Seg>,
    key_span: Option<Range<usize>>,
    value_span: Range<usize>,
}

impl Entry {
    fn start(&self) -> usize {
        self.key_span.as_ref().unwrap_or(&self.value_span).start
    }
}

/// Parses `text`, reporting every syntax error, or else every type and unknown-key error it can
/// find (each offending key is set aside so the next one shows up).
pub(super) fn parse(text: &str) -> Result<FileTable, Vec<Problem>> {
    let (mut doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        return Err(syntax_problems(text, &syntax_errors));
    }
    let mut entries = Vec::new();
    walk_table(doc.get_ref(), &[], &mut entries);
    let lines = entries.iter().map(|e| (path::render(&e.segs), line_of(text, e.start())));
    let lines = KeyLines(lines.collect());

    let mut problems = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let Err(error) = Config::deserialize(Deserializer::from(doc.clone())) else {
            break;
        };
        let span = error.span();
        let entry = span.as_ref().and_then(|span| innermost(&entries, span.start));
        let key = entry.map(|entry| path::render(&entry.segs));
        problems.push(Problem {
            origin: span.map_or(Origin::Default, |span| Origin::Line(line_of(text, span.start))),
            message: redact(key.as_deref(), friendly(error.message())),
            key,
        });
        if !entry.is_some_and(|entry| remove(doc.get_mut(), key_prefix(&entry.segs))) {
            break;
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|problem| match problem.origin {
            Origin::Line(line) => line,
            Origin::Env(_) | Origin::Default => usize::MAX,
        });
        return Err(problems);
    }
    let table = toml::Table::deserialize(Deserializer::from(doc))
        .map_err(|error| vec![Problem { origin: Origin::Default, key: None, message: error.message().to_owned() }])?;
    Ok(FileTable { table, lines })
}

fn syntax_problems(text: &str, errors: &[toml::de::Error]) -> Vec<Problem> {
    let mut located: Vec<(usize, String)> =
        errors.iter().map(|error| (error.span().map_or(0, |span| span.start), error.message().to_owned())).collect();
    located.sort();
    located.dedup();
    located
        .into_iter()
        .map(|(offset, message)| {
            let (line, column) = position(text, offset);
            let message = format!("TOML syntax error at column {column}: {message}");
            Problem { origin: Origin::Line(line), key: None, message }
        })
        .collect()
}

fn walk_table(table: &DeTable<'_>, parent: &[Seg], out: &mut Vec<Entry>) {
    for (key, value) in table {
        let mut segs = parent.to_vec();
        segs.push(Seg::Key(key.get_ref().to_string()));
        out.push(Entry { segs: segs.clone(), key_span: Some(key.span()), value_span: value.span() });
        walk_value(value.get_ref(), &segs, out);
    }
}

fn walk_value(value: &DeValue<'_>, segs: &[Seg], out: &mut Vec<Entry>) {
    match value {
        DeValue::Table(table) => walk_table(table, segs, out),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let mut segs = segs.to_vec();
                segs.push(Seg::Index(index));
                out.push(Entry { segs: segs.clone(), key_span: None, value_span: item.span() });
                walk_value(item.get_ref(), &segs, out);
            }
        }
        DeValue::String(_) | DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => {}
    }
}

/// The entry whose key or value covers `offset` most tightly.
fn innermost(entries: &[Entry], offset: usize) -> Option<&Entry> {
    let covers = |span: &Range<usize>| span.contains(&offset) || span.start == offset;
    entries
        .iter()
        .filter_map(|entry| {
            let spans = entry.key_span.iter().chain(std::iter::once(&entry.value_span));
            let width = spans.filter(|span| covers(span)).map(|span| span.len()).min()?;
            Some((width, std::cmp::Reverse(entry.segs.len()), entry))
        })
        .min_by_key(|(width, depth, _)| (*width, *depth))
        .map(|(_, _, entry)| entry)
}

/// The path up to its last table key: a bad array element sets aside the whole array, so
/// later errors keep their indices.
fn key_prefix(segs: &[Seg]) -> &[Seg] {
    let end = segs.iter().rposition(|seg| matches!(seg, Seg::Key(_))).map_or(0, |i| i + 1);
    &segs[..end]
}

/// Removes the key at `segs` (which ends with a table key); `false` if there was none.
fn remove(table: &mut DeTable<'_>, segs: &[Seg]) -> bool {
    let Some((Seg::Key(key), rest)) = segs.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return table.remove(key.as_str()).is_some();
    }
    let Some(value) = table.get_mut(key.as_str()) else {
        return false;
    };
    match (value.get_mut(), rest) {
        (DeValue::Table(inner), _) => remove(inner, rest),
        (DeValue::Array(items), [Seg::Index(index), rest @ ..]) => match items.get_mut(*index).map(Spanned::get_mut) {
            Some(DeValue::Table(inner)) => remove(inner, rest),
            _ => false,
        },
        _ => false,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    position(text, offset).0
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(Problem::to_string).collect(),
        }
    }

    #[test]
    fn unknown_key_reports_line_and_path() {
        let text = "[server]\nport = 7000\nprot = 7001\n";
        let found = problems(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("line 3: server.prot: unknown key"), "{found:?}");
    }

    #[test]
    fn type_error_reports_line_and_path() {
        let text = "[[apps]]\nid = \"a\"\n\n[apps.limits]\nmax_event_data_bytes = \"big\"\n";
        let found = problems(text);
        assert_eq!(
            found,
            ["line 5: apps[0].limits.max_event_data_bytes: invalid type: string \"big\", \
              expected a non-negative integer"]
        );
    }

    #[test]
    fn reports_several_schema_errors() {
        let text = "[server]\nport = \"x\"\n[log]\nformat = \"xml\"\nextra = 1\n";
        let found = problems(text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("line 2: server.port: "), "{found:?}");
        assert!(found[1].starts_with("line 4: log.format: "), "{found:?}");
        assert!(found[2].starts_with("line 5: log.extra: unknown key"), "{found:?}");
    }

    #[test]
    fn bad_array_element_names_its_index() {
        let found = problems("[http_api]\ncors_allowed_origins = [\"*\", 5]\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("line 2: http_api.cors_allowed_origins[1]: "), "{found:?}");
    }

    #[test]
    fn syntax_error_reports_line_and_column() {
        let found = problems("[server]\nport = \n");
        assert!(!found.is_empty());
        assert!(found[0].starts_with("line 2: TOML syntax error at column "), "{found:?}");
    }

    #[test]
    fn records_lines_of_keys_and_array_elements() {
        let text = "[server]\nport = 1\n\n[[apps]]\nid = \"a\"\n";
        let file = parse(text).map_err(|p| format!("{p:?}")).unwrap();
        assert_eq!(file.lines.get("server.port"), Some(2));
        assert_eq!(file.lines.get("apps[0]"), Some(4));
        assert_eq!(file.lines.get("apps[0].id"), Some(5));
        assert_eq!(file.lines.get("apps[0].key"), None);
    }

    #[test]
    fn positions_count_from_one() {
        assert_eq!(position("ab\ncd", 4), (2, 2));
        assert_eq!(position("", 0), (1, 1));
    }
}
