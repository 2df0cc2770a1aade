//! `herald-bench report`: one self-contained HTML page (inline CSS and SVG, no scripts) from
//! runs' JSON lines: per scenario a side-by-side table, charts with every server overlaid, and
//! the run parameters; each chart optionally also as an `.svg` file. Must not run anything.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;

use crate::compare::{self, Group, Run};
use crate::svg::{self, Chart, Kind, Series, escape};

#[derive(Args, Debug)]
pub(crate) struct ReportArgs {
    /// Result files: a run's JSON line (or its whole stdout), named `<scenario>.<server>.<round>.json`
    /// as `benches/compare.sh` saves them; otherwise the server is taken from the file name.
    #[arg(required_unless_present = "metric_table")]
    files: Vec<PathBuf>,
    /// The HTML page to write.
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
    /// Also write every chart as a standalone `.svg` file into this directory.
    #[arg(long)]
    svg_dir: Option<PathBuf>,
    /// Print the metrics of each scenario's table and which way is better (JSON), and exit.
    #[arg(long)]
    metric_table: bool,
}

/// Column colours: Herald blue, soketi orange, the baseline grey, anything else after them.
const COLOURS: [(&str, &str); 3] = [("herald", "#2563eb"), ("soketi", "#ea580c"), ("baseline", "#6b7280")];
const OTHER_COLOURS: [&str; 4] = ["#16a34a", "#9333ea", "#dc2626", "#0891b2"];

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
color:#111827;max-width:1500px;margin:24px auto;padding:0 16px}h1{font-size:22px}h2{font-size:18px;\
margin-top:36px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}small,.note{color:#6b7280}\
table{border-collapse:collapse;margin:8px 0}th,td{padding:3px 10px;border-bottom:1px solid #f3f4f6;\
text-align:right}th:first-child,td:first-child{text-align:left;font-family:ui-monospace,monospace}\
thead th{border-bottom:2px solid #d1d5db}td.best{font-weight:700;color:#15803d}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px}\
.charts svg{width:100%;height:auto;border:1px solid #e5e7eb}\
.fail{color:#b91c1c}summary{cursor:pointer;color:#374151;margin-top:8px}";

/// Runs `herald-bench report`.
///
/// # Errors
/// When no file holds a result, or the page or a chart cannot be written.
pub(crate) fn run(a: &ReportArgs) -> crate::Result<()> {
    if a.metric_table {
        println!("{}", compare::shown_json());
        return Ok(());
    }
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for path in &a.files {
        match Run::load(path) {
            Ok(run) => runs.push(run),
            Err(why) => skipped.push(format!("{}: {why}", path.display())),
        }
    }
    for s in &skipped {
        eprintln!("herald-bench report: skipped {s}");
    }
    if runs.is_empty() {
        return Err("no file holds a herald-bench result".into());
    }
    let count = runs.len();
    write(&compare::group(runs), &a.out, a.svg_dir.as_deref())?;
    eprintln!("herald-bench report: {count} runs -> {}", a.out.display());
    Ok(())
}

/// Writes the page of one run's JSON line to `path` (`--report-html`), its server named after
/// the file as for `report`.
///
/// # Errors
/// When the page cannot be written.
pub(crate) fn write_single(json_line: &str, path: &Path) -> crate::Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut run = Run::parse(json_line, "")?;
    run.server = compare::server_from_name(&file_name);
    write(&compare::group(vec![run]), path, None)
}

fn write(groups: &[Group], out: &Path, svg_dir: Option<&Path>) -> crate::Result<()> {
    let (html, charts) = page(groups);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, html)?;
    if let Some(dir) = svg_dir {
        std::fs::create_dir_all(dir)?;
        for (file, svg) in charts {
            std::fs::write(dir.join(file), svg)?;
        }
    }
    Ok(())
}

/// The page, and every chart as `(file name, SVG)`.
pub(crate) fn page(groups: &[Group]) -> (String, Vec<(String, String)>) {
    let machine = machine_note(groups);
    let mut body = String::new();
    let mut files = Vec::new();
    let _ = write!(body, "<h1>herald-bench report</h1><p class=\"note\">{}</p>", escape(&machine));
    body.push_str(
        "<p class=\"note\">Values are medians over each server's rounds; histograms pool every round's samples, \
         series over time are point-wise medians. Bold green marks the better server where a metric has a \
         direction. CPU figures come from /proc in 10 ms ticks.</p><p>",
    );
    for g in groups {
        let _ = write!(body, "<a href=\"#{0}\">{0}</a> ", escape(&slug(&g.name)));
    }
    body.push_str("</p>");
    for g in groups {
        section(&mut body, &mut files, g);
    }
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>herald-bench report</title><style>{CSS}</style>\
         </head><body>{body}</body></html>\n"
    );
    (html, files)
}

/// Where the runs measured (the generator's CPU count and model, never a host name) and when.
fn machine_note(groups: &[Group]) -> String {
    let runs = || groups.iter().flat_map(|g| &g.servers).flat_map(|(_, r)| r);
    let mut machines: Vec<String> = Vec::new();
    let mut dates: Vec<String> = Vec::new();
    for m in runs().map(|r| &r.value["details"]["machine"]).filter(|m| m.is_object()) {
        let cores = m["cores"].as_u64().unwrap_or(0);
        let desc = match m["cpu_model"].as_str() {
            Some(model) => format!("{cores} cores ({model})"),
            None => format!("{cores} cores"),
        };
        if !machines.contains(&desc) {
            machines.push(desc);
        }
        dates.extend(m["date"].as_str().map(str::to_owned));
    }
    dates.sort();
    let mut note = match (dates.first(), dates.last()) {
        (Some(first), Some(last)) if first == last => format!("Load generator on {}, {first}.", machines.join("; ")),
        (Some(first), Some(last)) => format!("Load generator on {}, {first} to {last}.", machines.join("; ")),
        _ => {
            let here = crate::stats::machine();
            let date = here["date"].as_str().unwrap_or_default();
            format!("The runs do not say where they ran; rendered on {} cores, {date}.", here["cores"])
        }
    };
    // Only a server on the same machine has its CPU read from /proc by the generator.
    if runs().any(|r| r.metric("server_cpu_ms").is_some()) {
        note.push_str(" The servers ran on the same machine, sharing its cores.");
    }
    note
}

fn colour(server: &str, index: usize) -> &'static str {
    COLOURS.iter().find(|(s, _)| *s == server).map_or(OTHER_COLOURS[index % OTHER_COLOURS.len()], |(_, c)| c)
}

/// A name safe as an HTML id and a file name.
fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

fn section(out: &mut String, files: &mut Vec<(String, String)>, g: &Group) {
    let id = slug(&g.name);
    let rounds: Vec<String> = g.servers.iter().map(|(s, r)| format!("{s} × {}", r.len())).collect();
    let _ = write!(
        out,
        "<section id=\"{id}\"><h2>{} <small>({})</small></h2><p class=\"note\">rounds: {}</p>",
        escape(&g.name),
        escape(&g.scenario),
        escape(&rounds.join(", "))
    );
    match compare::shown(&g.scenario) {
        Some(rows) => {
            let rows: Vec<(String, Option<bool>)> = rows.iter().map(|&(m, h)| (m.to_owned(), h)).collect();
            table(out, g, &rows);
            out.push_str("<details><summary>All metrics</summary>");
            table(out, g, &g.all_metrics().into_iter().map(|m| (m, None)).collect::<Vec<_>>());
            out.push_str("</details>");
        }
        None => table(out, g, &g.all_metrics().into_iter().map(|m| (m, None)).collect::<Vec<_>>()),
    }
    out.push_str("<div class=\"charts\">");
    for (kind, chart) in charts(g) {
        let svg = svg::render(&chart);
        out.push_str(&svg);
        files.push((format!("{id}.{kind}.svg"), svg));
    }
    out.push_str("</div>");
    params(out, g);
    problems(out, g);
    out.push_str("</section>");
}

/// The side-by-side table: a row per metric, servers as columns (medians), then Herald's ratio
/// to soketi and to the baseline, and the verdict; the better value is marked.
fn table(out: &mut String, g: &Group, rows: &[(String, Option<bool>)]) {
    let servers: Vec<&str> = g.servers.iter().map(|(s, _)| s.as_str()).collect();
    let has = |s: &str| servers.contains(&s);
    let ratios: Vec<&str> = ["soketi", "baseline"].into_iter().filter(|s| has("herald") && has(s)).collect();
    out.push_str("<table><thead><tr><th>metric</th>");
    for s in &servers {
        let _ = write!(out, "<th>{}</th>", escape(s));
    }
    for r in &ratios {
        let _ = write!(out, "<th>herald / {r}</th>");
    }
    if let Some(versus) = ratios.first() {
        let _ = write!(out, "<th>better (herald vs {versus})</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for (metric, higher) in rows {
        let values: Vec<Option<f64>> = servers.iter().map(|s| g.median(s, metric)).collect();
        let best = compare::best_of(&values, *higher);
        let _ = write!(out, "<tr class=\"metric\"><td>{}</td>", escape(metric));
        for (i, v) in values.iter().enumerate() {
            let class = if best == Some(i) { " class=\"best\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", fmt(*v));
        }
        let herald = g.median("herald", metric);
        for r in &ratios {
            let _ = write!(out, "<td>{}</td>", fmt(compare::ratio(herald, g.median(r, metric))));
        }
        if let Some(versus) = ratios.first() {
            let verdict = compare::verdict(herald, g.median(versus, metric), *higher, ("herald", versus));
            let _ = write!(out, "<td>{}</td>", escape(&verdict));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// A table value as compare.sh prints it: whole numbers from 100 up (with thousands
/// separators here), three significant digits below.
pub(crate) fn fmt(v: Option<f64>) -> String {
    let Some(v) = v else { return "–".into() };
    if v.abs() >= 100.0 {
        let digits = format!("{:.0}", v.abs());
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if v < 0.0 { format!("-{grouped}") } else { grouped }
    } else if v == 0.0 {
        "0".into()
    } else {
        let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
    }
}

/// The group's charts as `(file kind, chart)`: each latency histogram, each rate over time,
/// and the server's RSS over time, every server overlaid.
fn charts(g: &Group) -> Vec<(String, Chart)> {
    let note = format!("{} · {}", command(g), machine_short(g));
    let mut charts = Vec::new();
    for key in g.series_keys("_buckets") {
        let what = key.trim_end_matches("_buckets").replace('_', " ");
        let series = overlay(g, |rounds| compare::pooled_buckets(rounds, &key));
        let chart = Chart {
            title: format!("{} histogram, {}", capitalise(&what), g.name),
            note: note.clone(),
            x_label: format!("{what} (ms, log scale)"),
            y_label: "share of samples (%)".into(),
            kind: Kind::Histogram,
            series,
        };
        charts.push((slug(&what), chart));
    }
    for key in g.series_keys("_per_sec_samples") {
        let unit = key.trim_end_matches("_per_sec_samples").replace('_', " ");
        let series = overlay(g, |rounds| compare::median_series(rounds, &key, 1.0));
        let chart = Chart {
            title: format!("{}/s over time, {}", capitalise(&unit), g.name),
            note: note.clone(),
            x_label: "seconds since the measured phase started".into(),
            y_label: format!("{unit} per second"),
            kind: Kind::Lines,
            series,
        };
        charts.push((format!("{}-per-sec", slug(&unit)), chart));
    }
    if !g.series_keys("rss_samples").is_empty() {
        let series = overlay(g, |rounds| compare::median_series(rounds, "rss_samples", 1.0 / 1024.0));
        let chart = Chart {
            title: format!("Server RSS over time, {}", g.name),
            note,
            x_label: "seconds since the measured phase started".into(),
            y_label: "resident set size (MiB)".into(),
            kind: Kind::Lines,
            series,
        };
        charts.push(("rss".into(), chart));
    }
    charts
}

/// One series per server, of the points `points` makes of its rounds; servers without any left out.
fn overlay(g: &Group, points: impl Fn(&[Run]) -> Vec<(f64, f64)>) -> Vec<Series> {
    g.servers
        .iter()
        .enumerate()
        .map(|(i, (s, rounds))| Series { label: s.clone(), colour: colour(s, i), points: points(rounds) })
        .filter(|s| !s.points.is_empty())
        .collect()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// The scenario and its parameters as herald-bench's flags (`fanout -c 1000 -k 1 …, 10 s`).
fn command(g: &Group) -> String {
    const FLAGS: [(&str, &str); 9] = [
        ("subscribers", "-c"),
        ("connections", "-c"),
        ("clients", "-c"),
        ("members", "-c"),
        ("pairs", "-p"),
        ("channels", "-k"),
        ("rate", "-r"),
        ("rate_per_socket", "-r"),
        ("publishers", "-p"),
    ];
    let Some(first) = g.servers.first().and_then(|(_, r)| r.first()) else { return g.scenario.clone() };
    let mut line = g.scenario.clone();
    for (key, flag) in FLAGS {
        if let Some(v) = first.value["params"].get(key).filter(|v| !v.is_null()) {
            let _ = write!(line, " {flag} {}", plain(v));
        }
    }
    if let Some(d) = first.value["params"].get("duration_s") {
        let _ = write!(line, ", {} s", plain(d));
    }
    line
}

/// The machine in a few words for a chart's note: cores, whether the servers shared them, the
/// date of the first run.
fn machine_short(g: &Group) -> String {
    let runs: Vec<&Run> = g.servers.iter().flat_map(|(_, r)| r).collect();
    let Some(m) = runs.iter().map(|r| &r.value["details"]["machine"]).find(|m| m.is_object()) else {
        return String::new();
    };
    let shared = runs.iter().any(|r| r.metric("server_cpu_ms").is_some());
    format!(
        "{} cores{} · {}",
        m["cores"],
        if shared { " shared by the servers and the generator" } else { "" },
        m["date"].as_str().unwrap_or_default()
    )
}

/// A parameter's value: strings bare, whole numbers without a decimal point.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 9e15) => {
            format!("{}", n.as_f64().unwrap_or_default() as i64)
        }
        other => other.to_string(),
    }
}

/// The run parameters, one column per server (of its first round) and its target.
fn params(out: &mut String, g: &Group) {
    let firsts: Vec<(&str, &Run)> = g.servers.iter().filter_map(|(s, r)| Some((s.as_str(), r.first()?))).collect();
    let mut keys: Vec<String> = Vec::new();
    for (_, run) in &firsts {
        if let Some(p) = run.value["params"].as_object() {
            keys.extend(p.keys().filter(|k| !keys.contains(k)).cloned().collect::<Vec<_>>());
        }
    }
    out.push_str("<details><summary>Run parameters</summary><table><thead><tr><th>parameter</th>");
    for (s, _) in &firsts {
        let _ = write!(out, "<th>{}</th>", escape(s));
    }
    out.push_str("</tr></thead><tbody><tr><td>target</td>");
    for (_, run) in &firsts {
        let _ = write!(out, "<td>{}</td>", escape(&plain(&run.value["target"])));
    }
    out.push_str("</tr>");
    for key in &keys {
        let _ = write!(out, "<tr><td>{}</td>", escape(key));
        for (_, run) in &firsts {
            let v = run.value["params"].get(key).map_or_else(String::new, plain);
            let _ = write!(out, "<td>{}</td>", escape(&v));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></details>");
}

/// Failed checks and error samples of every round, if any.
fn problems(out: &mut String, g: &Group) {
    for (server, rounds) in &g.servers {
        for run in rounds {
            if let Some(why) = run.value["failure"].as_str() {
                let _ = write!(out, "<p class=\"fail\">{server} round {}: FAILED: {}</p>", run.round, escape(why));
            }
            for e in run.value["errors"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let _ = write!(out, "<p class=\"fail\">{server} round {}: error sample: {}</p>", run.round, escape(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::compare::tests::run;

    fn details(scale: u64) -> Value {
        json!({
            "latency_buckets": [[0.1, scale], [0.1259, 2 * scale], [0.1585, scale]],
            "deliveries_per_sec_samples": [[1.0, 100 * scale], [2.0, 100 * scale]],
            "rss_samples": [[0.0, 10_000 * scale], [1.0, 11_000 * scale]],
            "machine": {"cores": 2, "cpu_model": null, "date": "2026-12-01 10:00 UTC"},
        })
    }

    #[test]
    fn a_comparison_has_a_row_per_metric_and_an_svg_per_chart() {
        let groups = compare::group(vec![
            run("fanout-1k", "fanout", "herald", 1, &json!({"deliveries_per_sec": 300, "loss": 0}), &details(1)),
            run("fanout-1k", "fanout", "herald", 2, &json!({"deliveries_per_sec": 100, "loss": 0}), &details(1)),
            run("fanout-1k", "fanout", "soketi", 1, &json!({"deliveries_per_sec": 50, "loss": 3}), &details(2)),
            run("connect", "connect", "herald", 1, &json!({"connects_per_sec": 9}), &json!({})),
        ]);
        let (html, charts) = page(&groups);
        assert!(html.starts_with("<!doctype html>") && html.contains("<style>"), "{html}");
        assert!(!html.contains("<script") && !html.contains("src=\""), "self-contained");
        let fanout_rows = compare::shown("fanout").unwrap().len();
        let connect_rows = compare::shown("connect").unwrap().len();
        let all_metrics = 2 + 1;
        assert_eq!(html.matches("<tr class=\"metric\">").count(), fanout_rows + connect_rows + all_metrics);
        assert_eq!(charts.len(), 3, "histogram, rate and RSS of the fan-out; the connect run has no series");
        assert_eq!(html.matches("<svg").count(), charts.len());
        let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["fanout-1k.latency.svg", "fanout-1k.deliveries-per-sec.svg", "fanout-1k.rss.svg"]);
        // The median of 300 and 100 is 200, four times soketi's 50; lower loss is better.
        assert!(html.contains("<td class=\"best\">200</td><td>50</td><td>4</td><td>herald ×4.00</td>"), "{html}");
        assert!(html.contains("<td class=\"best\">0</td><td>3</td><td>0</td><td>herald</td>"), "{html}");
        assert!(html.contains("Load generator on 2 cores, 2026-12-01 10:00 UTC."), "{html}");
        assert!(!html.contains("same machine"), "no server CPU was measured");
        assert!(charts[0].1.contains(">herald</text>") && charts[0].1.contains(">soketi</text>"));
    }

    #[test]
    fn one_run_is_a_page_of_its_own() {
        let dir = std::env::temp_dir().join(format!("herald-bench-html-{}", std::process::id()));
        let path = dir.join("soketi-fanout.html");
        let line = r#"{"tool":"herald-bench","scenario":"fanout","target":"x","params":{},"metrics":{"loss":1},
            "details":{"latency_buckets":[[1.0,5]]},"errors":["trigger: HTTP 401"],"failure":null}"#
            .replace('\n', "");
        write_single(&line, &path).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(html.contains("<th>soketi</th>") && !html.contains("herald / "), "{html}");
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(html.contains("error sample: trigger: HTTP 401"));
    }

    #[test]
    fn values_read_like_compare_sh() {
        let shown: Vec<String> = [Some(1_270_000.4), Some(123.6), Some(5.4321), Some(0.000_123), Some(0.0), None]
            .into_iter()
            .map(fmt)
            .collect();
        assert_eq!(shown, ["1,270,000", "124", "5.43", "0.000123", "0", "–"]);
    }
}
