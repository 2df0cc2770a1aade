//! Runs side by side: result files read into runs, runs grouped by scenario and server, medians
//! over rounds, and which server does better at each metric. Must not render anything.

use std::path::Path;

use serde_json::{Map, Value};

/// A row of a comparison table: the metric, and whether higher is better (see [`SHOWN`]).
pub(crate) type Shown = (&'static str, Option<bool>);

/// The metrics a scenario's comparison table shows, and which way is better: `Some(true)` when
/// higher is, `Some(false)` when lower is, `None` when a row is only there for context.
/// `benches/compare.sh` prints its terminal table from this list too (`report --metric-table`).
pub(crate) const SHOWN: &[(&str, &[Shown])] = &[
    (
        "fanout",
        &[
            ("deliveries_per_sec", Some(true)),
            ("loss", Some(false)),
            ("latency_p50_ms", Some(false)),
            ("latency_p99_ms", Some(false)),
            ("server_cpu_us_per_delivery", Some(false)),
            ("server_user_us_per_delivery", Some(false)),
            ("server_system_us_per_delivery", Some(false)),
            ("server_rss_kb", Some(false)),
            ("generator_cpu_pct", None),
        ],
    ),
    (
        "connect",
        &[
            ("connects_per_sec", Some(true)),
            ("errors", Some(false)),
            ("connect_latency_p99_ms", Some(false)),
            ("server_cpu_us_per_connect", Some(false)),
            ("server_user_us_per_connect", Some(false)),
            ("server_system_us_per_connect", Some(false)),
            ("server_rss_per_conn_bytes", Some(false)),
            ("server_rss_per_conn_end_bytes", Some(false)),
            ("generator_cpu_pct", None),
        ],
    ),
    (
        "http",
        &[
            ("requests_per_sec", Some(true)),
            ("latency_p50_ms", Some(false)),
            ("latency_p99_ms", Some(false)),
            ("tcp_connections", Some(false)),
            ("server_cpu_us_per_request", Some(false)),
            ("server_user_us_per_request", Some(false)),
            ("server_system_us_per_request", Some(false)),
            ("generator_cpu_pct", None),
        ],
    ),
    (
        "presence",
        &[
            ("join_latency_p50_ms", Some(false)),
            ("join_latency_p99_ms", Some(false)),
            ("member_added", Some(true)),
            ("incomplete_rosters", Some(false)),
            ("server_cpu_us_per_member_event", Some(false)),
        ],
    ),
    (
        "client-events",
        &[
            ("msgs_per_sec", Some(true)),
            ("loss", Some(false)),
            ("latency_p50_ms", Some(false)),
            ("latency_p99_ms", Some(false)),
            ("server_cpu_us_per_message", Some(false)),
            ("server_user_us_per_message", Some(false)),
            ("server_system_us_per_message", Some(false)),
        ],
    ),
];

/// Servers in the order their columns appear; any other name follows, alphabetically.
const SERVER_ORDER: [&str; 3] = ["herald", "soketi", "baseline"];

/// The table rows of `scenario`, if it has a comparison table.
pub(crate) fn shown(scenario: &str) -> Option<&'static [Shown]> {
    SHOWN.iter().find(|(s, _)| *s == scenario).map(|(_, rows)| *rows)
}

/// [`SHOWN`] as JSON, `{"fanout": [["deliveries_per_sec", true], …], …}`, for compare.sh.
pub(crate) fn shown_json() -> String {
    let all: Map<String, Value> = SHOWN
        .iter()
        .map(|(s, rows)| {
            let rows = rows.iter().map(|(m, higher)| Value::from(vec![Value::from(*m), Value::from(*higher)]));
            ((*s).to_owned(), Value::Array(rows.collect()))
        })
        .collect();
    Value::Object(all).to_string()
}

/// One run's JSON line, and what its file name says about it.
pub(crate) struct Run {
    /// The comparison's name for the scenario (`fanout-1k-100eps`), or the scenario itself.
    pub(crate) name: String,
    pub(crate) server: String,
    pub(crate) round: u32,
    pub(crate) value: Value,
}

impl Run {
    /// Reads a run from the last non-empty line of `text` (a JSON line alone, or a run's whole
    /// stdout), named after `file_name` as compare.sh names them: `<name>.<server>.<round>.json`.
    ///
    /// # Errors
    /// When that line is not a herald-bench result.
    pub(crate) fn parse(text: &str, file_name: &str) -> Result<Self, String> {
        // A whole file of JSON (one line or pretty-printed), else a run's stdout: its last line.
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
                serde_json::from_str(line).map_err(|e| format!("neither JSON nor ending in a JSON line ({e})"))?
            }
        };
        if value["tool"] != "herald-bench" {
            return Err("not a herald-bench result line".into());
        }
        let scenario = value["scenario"].as_str().unwrap_or("unknown").to_owned();
        let stem = file_name.strip_suffix(".json").unwrap_or(file_name);
        let parts: Vec<&str> = stem.split('.').collect();
        let (name, server, round) = match parts[..] {
            [name, server, round] if round.parse::<u32>().is_ok() => {
                (name.to_owned(), server.to_owned(), round.parse().unwrap_or(1))
            }
            _ => (scenario, server_from_name(file_name), 1),
        };
        Ok(Self { name, server, round, value })
    }

    /// Reads the run in file `path`.
    ///
    /// # Errors
    /// When the file cannot be read or holds no herald-bench result.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Self::parse(&text, &file_name)
    }

    pub(crate) fn scenario(&self) -> &str {
        self.value["scenario"].as_str().unwrap_or("unknown")
    }

    pub(crate) fn metric(&self, name: &str) -> Option<f64> {
        self.value["metrics"][name].as_f64()
    }

    /// The series detail `key` as `(x, y)` points (`[[x, y], …]`; anything else is skipped).
    pub(crate) fn points(&self, key: &str) -> Vec<(f64, f64)> {
        let Some(rows) = self.value["details"][key].as_array() else { return Vec::new() };
        rows.iter().filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?))).collect()
    }
}

/// The server a file is about when its name is not `<name>.<server>.<round>.json`: a known
/// server's name as one word of it (`soketi-fanout.json`), else `herald`.
pub(crate) fn server_from_name(file_name: &str) -> String {
    let words: Vec<&str> = file_name.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    SERVER_ORDER.iter().find(|s| words.contains(s)).unwrap_or(&"herald").to_string()
}

/// The runs of one scenario, by server (in column order), each server's rounds in order.
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) scenario: String,
    pub(crate) servers: Vec<(String, Vec<Run>)>,
}

/// Groups `runs` by name and scenario, sorted by name, servers in column order.
pub(crate) fn group(runs: Vec<Run>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for run in runs {
        let scenario = run.scenario().to_owned();
        let at = match groups.iter().position(|g| g.name == run.name && g.scenario == scenario) {
            Some(at) => at,
            None => {
                groups.push(Group { name: run.name.clone(), scenario, servers: Vec::new() });
                groups.len() - 1
            }
        };
        let servers = &mut groups[at].servers;
        match servers.iter_mut().find(|(s, _)| *s == run.server) {
            Some((_, rounds)) => rounds.push(run),
            None => servers.push((run.server.clone(), vec![run])),
        }
    }
    let rank = |s: &str| SERVER_ORDER.iter().position(|k| *k == s).unwrap_or(SERVER_ORDER.len());
    for g in &mut groups {
        g.servers.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
        for (_, rounds) in &mut g.servers {
            rounds.sort_by_key(|r| r.round);
        }
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.scenario.cmp(&b.scenario)));
    groups
}

impl Group {
    /// The rounds of `server`, empty when it did not run this scenario.
    pub(crate) fn rounds(&self, server: &str) -> &[Run] {
        self.servers.iter().find(|(s, _)| s == server).map_or(&[], |(_, r)| r.as_slice())
    }

    /// The median of `metric` over `server`'s rounds that have it.
    pub(crate) fn median(&self, server: &str, metric: &str) -> Option<f64> {
        median(self.rounds(server).iter().filter_map(|r| r.metric(metric)).collect())
    }

    /// Every metric any run of this scenario reported, in the first run's order.
    pub(crate) fn all_metrics(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for run in self.servers.iter().flat_map(|(_, r)| r) {
            if let Some(m) = run.value["metrics"].as_object() {
                names.extend(m.keys().filter(|k| !names.contains(k)).cloned().collect::<Vec<_>>());
            }
        }
        names
    }

    /// Every series detail key ending in `suffix` that any run has, sorted.
    pub(crate) fn series_keys(&self, suffix: &str) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for run in self.servers.iter().flat_map(|(_, r)| r) {
            if let Some(d) = run.value["details"].as_object() {
                keys.extend(d.keys().filter(|k| k.ends_with(suffix) && !keys.contains(k)).cloned().collect::<Vec<_>>());
            }
        }
        keys.sort();
        keys
    }
}

/// The median (the mean of the middle two for an even count); `None` when empty.
pub(crate) fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// `ours / theirs` and who is better by how much, as compare.sh prints it (`herald ×1.56`);
/// `higher` is the metric's better direction. No verdict without both values or a direction.
pub(crate) fn verdict(ours: Option<f64>, theirs: Option<f64>, higher: Option<bool>, names: (&str, &str)) -> String {
    let (Some(ratio), Some(higher)) = (ratio(ours, theirs), higher) else { return String::new() };
    if ratio == 0.0 {
        return if higher { names.1 } else { names.0 }.to_owned();
    }
    let gain = if higher { ratio } else { 1.0 / ratio };
    if gain >= 1.0 { format!("{} ×{gain:.2}", names.0) } else { format!("{} ×{:.2}", names.1, 1.0 / gain) }
}

/// `ours / theirs`, when both are known and `theirs` is not 0.
pub(crate) fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Option<f64> {
    match (ours, theirs) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// Which column holds the better value: none without a direction, with fewer than two values,
/// or when they are all equal.
pub(crate) fn best_of(values: &[Option<f64>], higher: Option<bool>) -> Option<usize> {
    let higher = higher?;
    let known: Vec<(usize, f64)> = values.iter().enumerate().filter_map(|(i, v)| Some((i, (*v)?))).collect();
    if known.len() < 2 || known.iter().all(|&(_, v)| v == known[0].1) {
        return None;
    }
    let pick = |a: &(usize, f64), b: &(usize, f64)| if higher { a.1.total_cmp(&b.1) } else { b.1.total_cmp(&a.1) };
    known.iter().copied().max_by(pick).map(|(i, _)| i)
}

/// Histogram buckets (`[[upper, count], …]`) of every round added up, as a percentage of all
/// their samples per bucket.
pub(crate) fn pooled_buckets(rounds: &[Run], key: &str) -> Vec<(f64, f64)> {
    let mut sums: Vec<(f64, f64)> = Vec::new();
    for (upper, n) in rounds.iter().flat_map(|r| r.points(key)) {
        // Every run's bucket bounds come from the same formula, rounded the same way.
        match sums.iter_mut().find(|(u, _)| (*u - upper).abs() <= upper * 1e-9) {
            Some((_, sum)) => *sum += n,
            None => sums.push((upper, n)),
        }
    }
    sums.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = sums.iter().map(|&(_, n)| n).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    sums.into_iter().map(|(u, n)| (u, 100.0 * n / total)).collect()
}

/// A series over time (`[[secs, value], …]`) as the point-wise median of the rounds: the i-th
/// point is the median of every round's i-th point (its time and its value).
pub(crate) fn median_series(rounds: &[Run], key: &str, scale: f64) -> Vec<(f64, f64)> {
    let all: Vec<Vec<(f64, f64)>> = rounds.iter().map(|r| r.points(key)).collect();
    let longest = all.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .filter_map(|i| {
            let at: Vec<(f64, f64)> = all.iter().filter_map(|s| s.get(i).copied()).collect();
            Some((median(at.iter().map(|p| p.0).collect())?, median(at.iter().map(|p| p.1 * scale).collect())?))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// A run of `scenario` on `server` with `metrics` and `details`, as compare.sh would name it.
    pub(crate) fn run(name: &str, scenario: &str, server: &str, round: u32, metrics: &Value, details: &Value) -> Run {
        let line = json!({"tool": "herald-bench", "schema": 1, "scenario": scenario,
            "target": "127.0.0.1:1", "params": {"subscribers": 10}, "metrics": metrics, "details": details,
            "errors": [], "failure": null});
        Run::parse(&line.to_string(), &format!("{name}.{server}.{round}.json")).unwrap()
    }

    #[test]
    fn medians_take_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 10.0]), Some(3.0));
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn medians_over_rounds_skip_rounds_without_the_metric() {
        let runs = vec![
            run("f", "fanout", "soketi", 1, &json!({"loss": 4}), &json!({})),
            run("f", "fanout", "herald", 2, &json!({"loss": 1, "x": 9}), &json!({})),
            run("f", "fanout", "herald", 1, &json!({"loss": 7}), &json!({})),
            run("f", "fanout", "herald", 3, &json!({"loss": 2, "x": null}), &json!({})),
            run("c", "connect", "herald", 1, &json!({}), &json!({})),
        ];
        let groups = group(runs);
        assert_eq!(groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["c", "f"]);
        let f = &groups[1];
        assert_eq!(f.servers.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["herald", "soketi"]);
        assert_eq!(f.rounds("herald").iter().map(|r| r.round).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(f.median("herald", "loss"), Some(2.0));
        assert_eq!(f.median("herald", "x"), Some(9.0));
        assert_eq!(f.median("soketi", "x"), None);
        assert_eq!(f.median("baseline", "loss"), None);
        assert_eq!(f.all_metrics(), ["loss", "x"]);
    }

    #[test]
    fn verdicts_read_as_compare_sh_prints_them() {
        let names = ("herald", "soketi");
        assert_eq!(verdict(Some(200.0), Some(100.0), Some(true), names), "herald ×2.00");
        assert_eq!(verdict(Some(200.0), Some(100.0), Some(false), names), "soketi ×2.00");
        assert_eq!(verdict(Some(1.0), Some(4.0), Some(false), names), "herald ×4.00");
        assert_eq!(verdict(Some(0.0), Some(4.0), Some(false), names), "herald");
        assert_eq!(verdict(Some(0.0), Some(0.0), Some(false), names), "");
        assert_eq!(verdict(Some(1.0), Some(2.0), None, names), "");
        assert_eq!(ratio(Some(1.0), None), None);
        assert_eq!(best_of(&[Some(1.0), Some(3.0), None], Some(true)), Some(1));
        assert_eq!(best_of(&[Some(1.0), Some(3.0)], Some(false)), Some(0));
        assert_eq!(best_of(&[Some(1.0), Some(1.0)], Some(false)), None);
        assert_eq!(best_of(&[Some(1.0), Some(3.0)], None), None);
        assert_eq!(best_of(&[Some(1.0), None], Some(true)), None);
    }

    #[test]
    fn file_names_give_name_server_and_round() {
        let line = r#"{"tool":"herald-bench","scenario":"http","metrics":{}}"#;
        let r = Run::parse(&format!("table\n{line}\n"), "http-16.soketi.2.json").unwrap();
        assert_eq!((r.name.as_str(), r.server.as_str(), r.round), ("http-16", "soketi", 2));
        let r = Run::parse(line, "my-soketi-run.json").unwrap();
        assert_eq!((r.name.as_str(), r.server.as_str()), ("http", "soketi"));
        assert_eq!(Run::parse(line, "out.json").unwrap().server, "herald");
        assert!(Run::parse(r#"{"host":"127.0.0.1"}"#, "soketi.json").is_err());
        assert!(Run::parse("", "empty.json").is_err());
    }

    #[test]
    fn rounds_pool_into_one_histogram_and_one_median_series() {
        let rounds = vec![
            run(
                "f",
                "fanout",
                "herald",
                1,
                &json!({}),
                &json!({"b": [[1.0, 1], [2.0, 3]], "s": [[1.0, 10], [2.0, 30]]}),
            ),
            run("f", "fanout", "herald", 2, &json!({}), &json!({"b": [[2.0, 4], [4.0, 2]], "s": [[1.1, 20]]})),
        ];
        assert_eq!(pooled_buckets(&rounds, "b"), vec![(1.0, 10.0), (2.0, 70.0), (4.0, 20.0)]);
        assert_eq!(median_series(&rounds, "s", 1.0), vec![(1.05, 15.0), (2.0, 30.0)]);
        assert!(pooled_buckets(&rounds, "missing").is_empty());
    }

    #[test]
    fn the_metric_table_is_json_for_compare_sh() {
        let v: Value = serde_json::from_str(&shown_json()).unwrap();
        assert_eq!(v["fanout"][0], json!(["deliveries_per_sec", true]));
        assert_eq!(v["fanout"].as_array().unwrap().last().unwrap()[1], Value::Null);
        assert_eq!(shown("client-events").unwrap().len(), 7);
        assert!(shown("churn").is_none());
    }
}
