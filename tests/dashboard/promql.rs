//! The pure half of tests/dashboard.rs: the dashboard's JSON walked for its panels and
//! PromQL queries, the metrics and labels those queries name, and `/metrics` text parsed for
//! the same, so the live tests can say what the dashboard queries that Herald lacks.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// Labels Prometheus adds to what it scrapes; never on `/metrics` itself.
const TARGET_LABELS: [&str; 4] = ["instance", "job", "pod", "namespace"];

/// Every panel, the panels nested in (collapsed) rows included.
pub(crate) fn panels(list: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in list.as_array().into_iter().flatten() {
        out.push(p);
        out.extend(panels(&p["panels"]));
    }
    out
}

/// The dashboard without the row titled `title`, and that row alone (in a dashboard of its own,
/// without variables): each half is checked against the Herald that produces its metrics.
pub(crate) fn split_row(d: &Value, title: &str) -> (Value, Value) {
    let (row, rest): (Vec<Value>, Vec<Value>) = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .cloned()
        .partition(|p| p["type"] == "row" && p["title"] == title);
    let [row] = <[Value; 1]>::try_from(row).unwrap_or_else(|r| panic!("one row {title:?}, found {}", r.len()));
    let mut without = d.clone();
    without["panels"] = Value::Array(rest);
    (without, json!({"panels": [row], "templating": {"list": []}}))
}

/// Every `herald_*` metric the panels and variables of `d` name.
pub(crate) fn metrics_named(d: &Value) -> BTreeSet<String> {
    queries(d).iter().flat_map(|e| selectors(e)).map(|(m, _)| m).collect()
}

/// Every PromQL expression: panel targets, then query variables (a string or `{query}`).
pub(crate) fn queries(d: &Value) -> Vec<String> {
    let mut out: Vec<String> = panels(&d["panels"])
        .into_iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    for v in d["templating"]["list"].as_array().into_iter().flatten().filter(|v| v["type"] == "query") {
        let q = v["query"]["query"].as_str().or_else(|| v["query"].as_str()).expect("a variable's query");
        out.push(q.to_owned());
    }
    out
}

const fn ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// The index just past the `close` matching the `open` at `at`, skipping quoted strings.
fn matching(s: &str, at: usize, open: u8, close: u8) -> usize {
    let (mut depth, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in s.bytes().enumerate().skip(at) {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if quoted => {}
            _ if b == open => depth += 1,
            _ if b == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced {} in {s}", open as char)
}

/// The label names of `a="x", b=~"y"` (a selector's matchers, or a sample's labels).
fn label_names(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            return out;
        }
        let n = rest.bytes().take_while(|b| ident(*b)).count();
        assert!(n > 0, "a label name at {rest:?}");
        out.push(rest[..n].to_owned());
        let open = rest.find('"').expect("a quoted label value");
        let mut end = open + 1;
        while rest.as_bytes()[end] != b'"' {
            end += if rest.as_bytes()[end] == b'\\' { 2 } else { 1 };
        }
        rest = &rest[end + 1..];
    }
}

/// Each `herald_*` metric an expression names, with the labels its selector matches on.
pub(crate) fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = expr[i..].find("herald_") {
        let start = i + off;
        let end = start + bytes[start..].iter().take_while(|b| ident(**b)).count();
        i = end;
        let quoted = expr[..start].bytes().filter(|b| *b == b'"').count() % 2 == 1;
        if (start > 0 && ident(bytes[start - 1])) || quoted {
            continue;
        }
        let labels = if bytes.get(end) == Some(&b'{') {
            let close = matching(expr, end, b'{', b'}');
            label_names(&expr[end + 1..close - 1])
        } else {
            Vec::new()
        };
        out.push((expr[start..end].to_owned(), labels));
    }
    out
}

/// Each `by (labels) (inner)` of an expression: the labels, and the metrics `inner` names.
/// Also `label_values(selector, label)`, the variables' form.
pub(crate) fn groupings(expr: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = expr[i..].find("by (") {
        let open = i + off + 3;
        let close = matching(expr, open, b'(', b')');
        let labels = expr[open + 1..close - 1].split(',').map(|l| l.trim().to_owned()).collect();
        let inner_at = close + expr[close..].len() - expr[close..].trim_start().len();
        assert_eq!(expr.as_bytes()[inner_at], b'(', "`by (…)` before its expression in {expr}");
        let inner = &expr[inner_at..matching(expr, inner_at, b'(', b')')];
        out.push((labels, selectors(inner).into_iter().map(|(m, _)| m).collect()));
        i = close;
    }
    if let Some(args) = expr.strip_prefix("label_values(").and_then(|a| a.strip_suffix(')')) {
        let (selector, label) = args.rsplit_once(',').expect("label_values(selector, label)");
        out.push((vec![label.trim().to_owned()], selectors(selector).into_iter().map(|(m, _)| m).collect()));
    }
    out
}

/// Every sample's metric name on `/metrics`, with the label names its samples carry.
fn exposed(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_owned()).or_default();
        if line.as_bytes().get(end) == Some(&b'{') {
            let close = matching(line, end, b'{', b'}');
            labels.extend(label_names(&line[end + 1..close - 1]));
        }
    }
    out
}

/// What the dashboard queries that `/metrics` does not have: one line per problem.
pub(crate) fn missing(d: &Value, text: &str) -> Vec<String> {
    let have = exposed(text);
    let mut out = BTreeSet::new();
    for expr in queries(d) {
        let mut need: Vec<(String, Vec<String>)> = selectors(&expr);
        for (labels, metrics) in groupings(&expr) {
            need.extend(metrics.into_iter().map(|m| (m, labels.clone())));
        }
        for (metric, labels) in need {
            let Some(on) = have.get(&metric) else {
                out.insert(format!("{metric}: no sample on /metrics"));
                continue;
            };
            for label in labels.iter().filter(|l| !TARGET_LABELS.contains(&l.as_str())) {
                if !on.contains(label) {
                    out.insert(format!("{metric}: no label `{label}` (queried in `{expr}`)"));
                }
            }
        }
    }
    out.into_iter().collect()
}
