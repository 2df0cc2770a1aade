//! Charts as standalone SVG, written by hand: line charts over time and step histograms on a
//! log axis, several series overlaid with a legend. Must not read files or know about runs.

use std::fmt::Write as _;

/// Outer size of every chart, in pixels.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 380.0;
/// The plot area inside the chart: room for the title, note and legend above, tick labels
/// and the axis titles left and below.
const LEFT: f64 = 74.0;
const RIGHT: f64 = WIDTH - 20.0;
const TOP: f64 = 76.0;
const BOTTOM: f64 = HEIGHT - 50.0;

/// Dash patterns of line series after the first, so that lines lying on top of each other
/// (equal rates at a fixed load) still show both.
const DASHES: [&str; 3] = ["7 4", "2 3", "10 3 2 3"];

/// Points drawn as dots too when a series has at most this many.
const DOTS_UP_TO: usize = 60;

const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";

/// One server's line (or histogram) in a chart.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) colour: &'static str,
    /// `(x, y)` points; for a histogram, `(bucket upper bound, share)` in ascending order.
    pub(crate) points: Vec<(f64, f64)>,
}

/// How a chart draws its series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Lines over a linear x axis (time).
    Lines,
    /// Steps over a log x axis: each point is a bucket from the previous point's x to its own.
    Histogram,
}

/// Everything a chart shows.
pub(crate) struct Chart {
    pub(crate) title: String,
    /// One line under the title: what was run, where and when.
    pub(crate) note: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    pub(crate) kind: Kind,
    pub(crate) series: Vec<Series>,
}

/// Ticks at 1, 2 or 5 times a power of ten covering `[lo, hi]` with about `target` steps; the
/// first tick is at or below `lo` and the last at or above `hi`, so they bound the axis.
pub(crate) fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    // Multiples of the step, not sums, so that 0.1 + 0.2 never shows as 0.30000000000000004.
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Ticks of a log axis covering `[lo, hi]` (both > 0): powers of ten, with 2 and 5 between
/// them when the range spans at most three decades; the first tick is the last one at or below
/// `lo`, the last the first one at or above `hi`.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let first = lo.max(f64::MIN_POSITIVE).log10().floor() as i32;
    let last = (hi.max(lo).log10().ceil() as i32).max(first + 1);
    let fine = last - first <= 3;
    let mut ticks = Vec::new();
    for e in first..=last {
        // A division for negative powers: 1/1000 is exactly the double nearest 0.001.
        let p = if e >= 0 { 10f64.powi(e) } else { 1.0 / 10f64.powi(-e) };
        ticks.push(p);
        if fine && e < last {
            ticks.extend([2.0 * p, 5.0 * p]);
        }
    }
    let tolerance = 1.0 + 1e-9;
    let start = ticks.iter().rposition(|&t| t <= lo * tolerance).unwrap_or(0);
    let end = ticks.iter().position(|&t| t * tolerance >= hi).unwrap_or(ticks.len() - 1).max(start + 1);
    ticks[start..=end].to_vec()
}

/// A tick's label: at most three significant digits, with k and M for thousands and millions.
pub(crate) fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6, 2))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3, 2))
    } else if a == 0.0 {
        "0".into()
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        trim(v, decimals)
    }
}

/// `v` with `decimals` decimals, trailing zeros (and a bare point) removed.
fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// `s` safe inside XML text and attribute values.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Maps data values to pixels along one axis.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    from: f64,
    to: f64,
}

impl Axis {
    fn at(&self, v: f64) -> f64 {
        let (v, lo, hi) =
            if self.log { (v.max(self.lo).log10(), self.lo.log10(), self.hi.log10()) } else { (v, self.lo, self.hi) };
        self.from + (v - lo) / (hi - lo).max(f64::MIN_POSITIVE) * (self.to - self.from)
    }
}

/// A histogram's buckets as `(lower, upper, share)`: each bucket starts where the one before
/// it ended, the first one a step below its upper bound (the ratio of the first two bounds).
fn bucket_spans(points: &[(f64, f64)]) -> Vec<(f64, f64, f64)> {
    let ratio = match points {
        [(a, _), (b, _), ..] if *a > 0.0 && b > a => b / a,
        _ => 10f64.powf(0.1),
    };
    let mut lower = points.first().map_or(1.0, |p| p.0 / ratio);
    points
        .iter()
        .map(|&(upper, share)| {
            let span = (lower, upper, share);
            lower = upper;
            span
        })
        .collect()
}

/// The chart as a standalone SVG document (no scripts, fonts or other files).
pub(crate) fn render(c: &Chart) -> String {
    let series: Vec<&Series> = c.series.iter().filter(|s| !s.points.is_empty()).collect();
    let log = c.kind == Kind::Histogram;
    let (mut x_lo, mut x_hi, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY, 0f64);
    for s in &series {
        let spans = if log { bucket_spans(&s.points) } else { Vec::new() };
        for &(x, y) in &s.points {
            x_hi = x_hi.max(x);
            x_lo = x_lo.min(x);
            y_hi = y_hi.max(y);
        }
        if let Some(first) = spans.first() {
            x_lo = x_lo.min(first.0);
        }
    }
    if series.is_empty() {
        (x_lo, x_hi) = (if log { 0.1 } else { 0.0 }, if log { 100.0 } else { 1.0 });
    }
    let x_ticks = if log { log_ticks(x_lo, x_hi) } else { linear_ticks(0f64.min(x_lo), x_hi, 8) };
    let y_ticks = linear_ticks(0.0, if y_hi > 0.0 { y_hi } else { 1.0 }, 5);
    let x = Axis { lo: x_ticks[0], hi: x_ticks[x_ticks.len() - 1], log, from: LEFT, to: RIGHT };
    let y = Axis { lo: y_ticks[0], hi: y_ticks[y_ticks.len() - 1], log: false, from: BOTTOM, to: TOP };

    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="{FONT}" font-size="12" role="img" aria-label="{}">"##,
        escape(&c.title)
    );
    let _ = write!(out, r##"<title>{}</title><rect width="100%" height="100%" fill="#ffffff"/>"##, escape(&c.title));
    let _ = write!(
        out,
        r##"<text x="{LEFT}" y="22" font-size="15" font-weight="600" fill="#111827">{}</text>"##,
        escape(&c.title)
    );
    let _ = write!(out, r##"<text x="{LEFT}" y="40" font-size="11" fill="#6b7280">{}</text>"##, escape(&c.note));
    legend(&mut out, &series, c.kind);
    grid(&mut out, &x, &y, &x_ticks, &y_ticks);
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#374151">{}</text>"##,
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 12.0,
        escape(&c.x_label)
    );
    let _ = write!(
        out,
        r##"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle" fill="#374151">{}</text>"##,
        (TOP + BOTTOM) / 2.0,
        escape(&c.y_label)
    );
    for (i, s) in series.iter().enumerate() {
        match c.kind {
            Kind::Lines => line(&mut out, s, &dash(i), &x, &y),
            Kind::Histogram => steps(&mut out, s, &x, &y),
        }
    }
    if series.is_empty() {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#6b7280">no data</text>"##,
            (LEFT + RIGHT) / 2.0,
            (TOP + BOTTOM) / 2.0
        );
    }
    out.push_str("</svg>");
    out
}

/// The `stroke-dasharray` attribute of the `i`-th line series (none for the first).
fn dash(i: usize) -> String {
    match i {
        0 => String::new(),
        _ => format!(" stroke-dasharray=\"{}\"", DASHES[(i - 1) % DASHES.len()]),
    }
}

/// One swatch (a line sample for line charts) and label per series, in a row above the plot.
fn legend(out: &mut String, series: &[&Series], kind: Kind) {
    let mut at = LEFT;
    for (i, s) in series.iter().enumerate() {
        let _ = match kind {
            Kind::Histogram => {
                write!(out, r##"<rect x="{at}" y="52" width="16" height="10" rx="2" fill="{}"/>"##, s.colour)
            }
            Kind::Lines => write!(
                out,
                r##"<line x1="{at}" y1="57" x2="{}" y2="57" stroke="{}" stroke-width="3"{}/>"##,
                at + 22.0,
                s.colour,
                dash(i)
            ),
        };
        let _ = write!(out, r##"<text x="{}" y="61" fill="#111827">{}</text>"##, at + 27.0, escape(&s.label));
        // No font metrics here: a generous 7 px per character keeps labels apart.
        at += 27.0 + 7.0 * s.label.chars().count() as f64 + 18.0;
    }
}

/// The frame, grid lines, tick marks and tick labels.
fn grid(out: &mut String, x: &Axis, y: &Axis, x_ticks: &[f64], y_ticks: &[f64]) {
    for &t in y_ticks {
        let py = y.at(t);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="#e5e7eb"/><text x="{}" y="{:.1}" text-anchor="end" fill="#4b5563">{}</text>"##,
            LEFT - 6.0,
            py + 4.0,
            tick_label(t)
        );
    }
    for &t in x_ticks {
        let px = x.at(t);
        let _ = write!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{BOTTOM}" stroke="#f3f4f6"/><line x1="{px:.1}" y1="{BOTTOM}" x2="{px:.1}" y2="{}" stroke="#6b7280"/><text x="{px:.1}" y="{}" text-anchor="middle" fill="#4b5563">{}</text>"##,
            BOTTOM + 5.0,
            BOTTOM + 18.0,
            tick_label(t)
        );
    }
    let _ = write!(out, r##"<path d="M{LEFT} {TOP}V{BOTTOM}H{RIGHT}" fill="none" stroke="#6b7280"/>"##);
}

fn line(out: &mut String, s: &Series, dash: &str, x: &Axis, y: &Axis) {
    let points: Vec<String> = s.points.iter().map(|&(px, py)| format!("{:.1},{:.1}", x.at(px), y.at(py))).collect();
    let _ = write!(
        out,
        r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"{dash}/>"##,
        points.join(" "),
        s.colour
    );
    if s.points.len() <= DOTS_UP_TO {
        for &(px, py) in &s.points {
            let _ = write!(out, r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"##, x.at(px), y.at(py), s.colour);
        }
    }
}

fn steps(out: &mut String, s: &Series, x: &Axis, y: &Axis) {
    let spans = bucket_spans(&s.points);
    let Some(first) = spans.first() else { return };
    let mut d = format!("M{:.1} {:.1}", x.at(first.0), y.at(0.0));
    for &(lower, upper, share) in &spans {
        let _ = write!(d, "H{:.1}V{:.1}H{:.1}", x.at(lower), y.at(share), x.at(upper));
    }
    let _ = write!(d, "V{:.1}", y.at(0.0));
    let _ = write!(
        out,
        r##"<path d="{d}Z" fill="{c}" fill-opacity="0.12" stroke="none"/><path d="{d}" fill="none" stroke="{c}" stroke-width="1.8" stroke-linejoin="round"/>"##,
        c = s.colour
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_range() {
        assert_eq!(linear_ticks(0.0, 100.0, 5), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(linear_ticks(0.0, 93.0, 5), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(linear_ticks(0.0, 0.7, 5), [0.0, 0.2, 0.4, 0.6000000000000001, 0.8]);
        assert_eq!(linear_ticks(0.0, 12_800.0, 5), [0.0, 5000.0, 10_000.0, 15_000.0]);
        let t = linear_ticks(0.0, 0.0, 5);
        assert!(t.len() >= 2 && t[0] == 0.0, "{t:?}");
    }

    #[test]
    fn log_ticks_mark_decades_and_fill_short_ranges() {
        assert_eq!(log_ticks(0.15, 40.0), [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!(log_ticks(0.63, 25.1), [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!(log_ticks(0.0015, 30_000.0), [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10_000.0, 100_000.0]);
        assert_eq!(log_ticks(1.0, 1.0), [1.0, 2.0]);
        assert_eq!(log_ticks(1.0, 10.0), [1.0, 2.0, 5.0, 10.0]);
    }

    #[test]
    fn tick_labels_are_short() {
        let labels: Vec<String> =
            [0.0, 0.001, 0.2, 2.5, 10.0, 150.0, 1500.0, 12_000.0, 1_270_000.0].iter().map(|&v| tick_label(v)).collect();
        assert_eq!(labels, ["0", "0.001", "0.2", "2.5", "10", "150", "1.5k", "12k", "1.27M"]);
        assert_eq!(tick_label(0.6000000000000001), "0.6");
    }

    #[test]
    fn histogram_buckets_start_where_the_previous_ended() {
        let spans = bucket_spans(&[(1.0, 5.0), (2.0, 10.0), (4.0, 1.0)]);
        assert_eq!(spans, [(0.5, 1.0, 5.0), (1.0, 2.0, 10.0), (2.0, 4.0, 1.0)]);
    }

    #[test]
    fn a_chart_is_one_svg_with_its_texts_escaped() {
        let chart = Chart {
            title: "latency <fan-out> & more".into(),
            note: "2 cores".into(),
            x_label: "latency (ms, log scale)".into(),
            y_label: "share of samples (%)".into(),
            kind: Kind::Histogram,
            series: vec![
                Series { label: "herald".into(), colour: "#2563eb", points: vec![(0.1, 10.0), (0.2, 90.0)] },
                Series { label: "empty".into(), colour: "#000000", points: vec![] },
            ],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.contains("latency &lt;fan-out&gt; &amp; more"));
        assert!(svg.contains(">herald</text>") && !svg.contains(">empty</text>"), "empty series get no legend");
        assert!(svg.contains("stroke=\"#2563eb\""));
        let two = vec![
            Series { label: "herald".into(), colour: "#2563eb", points: vec![(1.0, 5.0), (2.0, 5.0)] },
            Series { label: "soketi".into(), colour: "#ea580c", points: vec![(1.0, 5.0), (2.0, 5.0)] },
        ];
        let mut lines = Chart { kind: Kind::Lines, series: two, ..chart };
        let svg = render(&lines);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "the second line and its legend are dashed");
        lines.series.clear();
        assert!(render(&lines).contains("no data"));
    }
}
