//! Plots of a pruning run: plain SVG (no plotting dependency) and a PNG of predictions.

use std::fmt::Write as _;
use std::path::Path;

use prunus_data::Scene;
use prunus_plan::Tolerance;

use crate::{Error, Report};

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Round-number ticks covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn header(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"#,
        W / 2.0,
        escape(title)
    );
}

/// Metric against FLOPs over a pruning run's steps, as an SVG document: the baseline, every
/// accepted step (joined, green dots), every rolled-back candidate (red crosses), and the
/// tolerance's floor (dashed).
///
/// # Example
/// ```no_run
/// # fn report() -> prunus::Report { unimplemented!() }
/// let svg = prunus::plots::metric_vs_flops(&report());
/// std::fs::write("metric_vs_flops.svg", svg).unwrap();
/// ```
pub fn metric_vs_flops(report: &Report) -> String {
    let floor = match report.tolerance {
        Tolerance::Points(t) => report.baseline - t,
        Tolerance::Relative(t) => report.baseline * (1.0 - t),
    };
    let g = |f: u64| f as f64 / 1e9;
    let mut points = vec![(g(report.flops_before), report.baseline, true)];
    points.extend(
        report
            .steps
            .iter()
            .map(|s| (g(s.flops), s.metric, s.accepted)),
    );
    let x_hi = g(report.flops_before) * 1.02;
    let y_values = points.iter().map(|p| p.1).chain([floor]);
    let (mut y_lo, mut y_hi) =
        y_values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((y_hi - y_lo) * 0.05).max(0.05);
    y_lo -= pad;
    y_hi += pad;
    let px = |x: f64| LEFT + x / x_hi * (W - LEFT - RIGHT);
    let py = |y: f64| TOP + (y_hi - y) / (y_hi - y_lo) * (H - TOP - BOTTOM);

    let mut out = String::new();
    header(
        &mut out,
        &format!(
            "{} vs FLOPs while pruning ({} criterion)",
            report.metric,
            report.criterion.name()
        ),
    );
    axes(
        &mut out,
        (0.0, x_hi),
        (y_lo, y_hi),
        &px,
        &py,
        "GFLOPs (one image)",
        &format!("{}, %", report.metric),
    );
    let _ = writeln!(
        out,
        r##"<line x1="{}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#888" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" fill="#555" text-anchor="end">tolerance floor {floor:.2}</text>"##,
        px(0.0),
        px(x_hi),
        W - RIGHT - 4.0,
        py(floor) - 4.0,
        y = py(floor),
    );
    let path: Vec<String> = points
        .iter()
        .filter(|p| p.2)
        .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
        .collect();
    let _ = writeln!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#2a7" stroke-width="2"/>"##,
        path.join(" ")
    );
    for &(x, y, accepted) in &points {
        let (cx, cy) = (px(x), py(y.clamp(y_lo, y_hi)));
        if accepted {
            let _ = writeln!(
                out,
                r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="4" fill="#2a7"/>"##
            );
        } else {
            let _ = writeln!(
                out,
                r##"<path d="M{} {} l8 8 m0 -8 l-8 8" stroke="#d33" stroke-width="2"/>"##,
                cx - 4.0,
                cy - 4.0
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<circle cx="{}" cy="{}" r="4" fill="#2a7"/><text x="{}" y="{}">accepted</text><path d="M{} {} l8 8 m0 -8 l-8 8" stroke="#d33" stroke-width="2"/><text x="{}" y="{}">rolled back</text>"##,
        LEFT + 10.0,
        TOP + 10.0,
        LEFT + 20.0,
        TOP + 14.0,
        LEFT + 96.0,
        TOP + 6.0,
        LEFT + 110.0,
        TOP + 14.0
    );
    out.push_str("</svg>\n");
    out
}

/// One curve of [`curves`]: a name and its points `(x, mean y, sd of y)`.
pub type Curve = (String, Vec<(f64, f64, f64)>);

/// Several curves on shared axes, as an SVG document: one colour per curve, a dot per point
/// with a bar of ± one standard deviation, and a legend — the IoU-vs-FLOPs comparison of
/// pruning methods, each point a mean over seeds.
///
/// # Example
/// ```
/// let svg = prunus::plots::curves(
///     "test IoU vs FLOPs removed",
///     "FLOPs removed, %",
///     "test IoU, %",
///     &[
///         ("gate".into(), vec![(50.0, 66.0, 0.4), (90.0, 62.0, 1.1)]),
///         ("l1".into(), vec![(50.0, 65.5, 0.5), (90.0, 58.0, 2.0)]),
///     ],
/// );
/// assert!(svg.starts_with("<svg") && svg.contains(">l1</text>"));
/// ```
pub fn curves(title: &str, x_label: &str, y_label: &str, curves: &[Curve]) -> String {
    const COLOURS: [&str; 8] = [
        "#2a7", "#d33", "#36c", "#e90", "#849", "#777", "#0aa", "#a52",
    ];
    let points = || curves.iter().flat_map(|c| c.1.iter().copied());
    let (x_lo, x_hi) = points().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y_lo, y_hi) = points().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.1 - p.2), b.max(p.1 + p.2))
    });
    if x_lo > x_hi {
        let mut out = String::new();
        header(&mut out, title);
        out.push_str("</svg>\n");
        return out;
    }
    let pad = |lo: f64, hi: f64| ((hi - lo) * 0.05).max(0.05);
    let (x_lo, x_hi) = (x_lo - pad(x_lo, x_hi), x_hi + pad(x_lo, x_hi));
    let (y_lo, y_hi) = (y_lo - pad(y_lo, y_hi), y_hi + pad(y_lo, y_hi));
    let px = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT - 90.0);
    let py = |y: f64| TOP + (y_hi - y) / (y_hi - y_lo) * (H - TOP - BOTTOM);
    let mut out = String::new();
    header(&mut out, title);
    axes(
        &mut out,
        (x_lo, x_hi),
        (y_lo, y_hi),
        &px,
        &py,
        x_label,
        y_label,
    );
    for (i, (name, points)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut sorted = points.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = sorted
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"##,
            path.join(" ")
        );
        for &(x, y, sd) in &sorted {
            let _ = writeln!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"/><line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}"/>"##,
                px(x),
                py(y),
                py(y - sd),
                py(y + sd),
                x = px(x),
            );
        }
        let ly = TOP + 14.0 + 18.0 * i as f64;
        let _ = writeln!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            W - RIGHT - 80.0,
            ly - 4.0,
            W - RIGHT - 70.0,
            ly,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[allow(clippy::too_many_arguments)]
fn axes(
    out: &mut String,
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
    x_label: &str,
    y_label: &str,
) {
    let (x0, x1, y0, y1) = (px(x_lo), px(x_hi), py(y_lo), py(y_hi));
    let _ = writeln!(
        out,
        r##"<path d="M{x0:.1} {y1:.1} V{y0:.1} H{x1:.1}" fill="none" stroke="black"/>"##
    );
    for t in ticks(x_lo, x_hi) {
        let x = px(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y0:.1}" y2="{:.1}" stroke="black"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y0 + 5.0,
            y0 + 18.0,
            trim(t)
        );
    }
    for t in ticks(y_lo, y_hi) {
        let y = py(t);
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" x2="{x0:.1}" y1="{y:.1}" y2="{y:.1}" stroke="black"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 - 5.0,
            x0 - 8.0,
            y + 4.0,
            trim(t)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
        (x0 + x1) / 2.0,
        H - 12.0,
        escape(x_label),
        (y0 + y1) / 2.0,
        escape(y_label)
    );
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Every channel group's width before (light) and after (dark) pruning, as horizontal bars in
/// an SVG document, with the numbers.
pub fn widths(report: &Report) -> String {
    let n = report.widths.len().max(1);
    let row = 16.0;
    let height = TOP + BOTTOM + row * n as f64;
    let label_w = 170.0;
    let max = report
        .widths
        .iter()
        .map(|g| g.before)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bar = |v: usize| v as f64 / max * (W - label_w - RIGHT - 70.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">
<rect width="{W}" height="{height}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">Filters per layer: before (light) and after (dark)</text>
"#,
        W / 2.0
    );
    for (i, g) in report.widths.iter().enumerate() {
        let y = TOP + row * i as f64;
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{label_w}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#bcd"/><rect x="{label_w}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#247"/><text x="{:.1}" y="{:.1}">{} → {}</text>"##,
            label_w - 6.0,
            y + row * 0.7,
            escape(&g.group),
            y + 2.0,
            bar(g.before),
            row - 4.0,
            y + 2.0,
            bar(g.after),
            row - 4.0,
            label_w + bar(g.before) + 6.0,
            y + row * 0.7,
            g.before,
            g.after
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Writes a PNG with one row per scene: the image, the truth, the unpruned network's prediction
/// and the pruned one's, side by side (white = building). `before[i]` and `after[i]` are the
/// building probabilities of scene `i` (`size × size`).
///
/// # Errors
/// When the rows disagree in size or the file cannot be written.
pub fn predictions_png(
    path: impl AsRef<Path>,
    scenes: &[Scene],
    before: &[Vec<f32>],
    after: &[Vec<f32>],
) -> Result<(), Error> {
    let Some(first) = scenes.first() else {
        return Err(Error::Config("no scenes to draw".into()));
    };
    let s = first.size;
    let plane = s * s;
    if before.len() != scenes.len()
        || after.len() != scenes.len()
        || scenes.iter().any(|sc| sc.size != s)
        || before.iter().chain(after).any(|p| p.len() != plane)
    {
        return Err(Error::Config(
            "every scene needs a prediction before and after, of its size".into(),
        ));
    }
    let gap = 4;
    let width = 4 * s + 3 * gap;
    let height = scenes.len() * s + (scenes.len() - 1) * gap;
    let mut pixels = vec![255u8; width * height * 3];
    for (r, scene) in scenes.iter().enumerate() {
        for y in 0..s {
            for x in 0..s {
                let i = y * s + x;
                let to8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                let grey = |on: bool| if on { [255u8; 3] } else { [0u8; 3] };
                let cells = [
                    [
                        to8(scene.image[i]),
                        to8(scene.image[plane + i]),
                        to8(scene.image[2 * plane + i]),
                    ],
                    grey(scene.mask[i] == 1),
                    grey(before[r][i] > 0.5),
                    grey(after[r][i] > 0.5),
                ];
                for (c, rgb) in cells.iter().enumerate() {
                    let (ox, oy) = (c * (s + gap) + x, r * (s + gap) + y);
                    let at = (oy * width + ox) * 3;
                    pixels[at..at + 3].copy_from_slice(rgb);
                }
            }
        }
    }
    prunus_data::write_png(path, width, height, 3, &pixels)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupWidth;
    use prunus_data::Metric;
    use prunus_plan::{Criterion, StepRecord};

    fn report() -> Report {
        let step = |step, flops, metric: f64, accepted| StepRecord {
            step,
            fraction: 0.5,
            removed: 10,
            channels: 20,
            flops,
            metric,
            drop: 99.0 - metric,
            accepted,
            metrics: Default::default(),
            drop_interval: None,
            violated: Vec::new(),
        };
        Report {
            metric: Metric::PixelAccuracy.to_string(),
            higher_is_better: true,
            tolerance: Tolerance::Points(0.5),
            also: Vec::new(),
            conservative: false,
            metrics_before: Default::default(),
            metrics_after: Default::default(),
            drop_interval: None,
            confidence: 0.95,
            test: None,
            seed: 0,
            data: String::new(),
            prunus: crate::version(),
            criterion: Criterion::Gate,
            input_shape: [1, 3, 64, 64],
            baseline: 99.0,
            final_metric: 98.7,
            drop: 0.3,
            flops_before: 4_000_000_000,
            flops_after: 1_000_000_000,
            params_before: 100,
            params_after: 10,
            latency_ms_before: 10.0,
            latency_ms_after: 2.0,
            device: "test".into(),
            evaluations: 4,
            steps: vec![
                step(1, 2_000_000_000, 98.9, true),
                step(2, 500_000_000, 97.0, false),
                step(3, 1_000_000_000, 98.7, true),
            ],
            stop: None,
            final_fine_tune: None,
            widths: vec![
                GroupWidth {
                    group: "encoder.0.conv1".into(),
                    before: 16,
                    after: 3,
                },
                GroupWidth {
                    group: "decoder<&>".into(),
                    before: 8,
                    after: 8,
                },
            ],
            seconds: 1.0,
        }
    }

    #[test]
    fn metric_plot_draws_every_step_and_the_floor() {
        let svg = metric_vs_flops(&report());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Baseline + two accepted steps as dots (+ the legend's), one cross (+ the legend's).
        assert_eq!(svg.matches("<circle").count(), 3 + 1);
        assert_eq!(svg.matches("stroke=\"#d33\"").count(), 1 + 1);
        // The accepted path runs baseline → step 1 → step 3, in that order: x falls.
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        let xs: Vec<f64> = line
            .split('"')
            .nth(1)
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(xs.len(), 3);
        assert!(xs[0] > xs[1] && xs[1] > xs[2], "{xs:?}");
        assert!(svg.contains("tolerance floor 98.50"));
    }

    #[test]
    fn widths_plot_lists_groups_escaped() {
        let svg = widths(&report());
        assert!(svg.contains("encoder.0.conv1") && svg.contains("16 → 3"));
        assert!(svg.contains("decoder&lt;&amp;&gt;") && !svg.contains("decoder<&>"));
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t = ticks(0.0, 1.0);
        assert_eq!(t.len(), 6);
        assert!(
            t.iter()
                .enumerate()
                .all(|(i, v)| (v - 0.2 * i as f64).abs() < 1e-12),
            "{t:?}"
        );
        let t = ticks(97.3, 99.1);
        assert!(
            t.len() >= 3 && t.iter().all(|v| (97.3..=99.1).contains(v)),
            "{t:?}"
        );
    }

    #[test]
    fn predictions_png_has_four_panels_per_scene() {
        let config = prunus_data::SyntheticConfig::new().with_size(16);
        let scenes: Vec<_> = (0..2).map(|i| prunus_data::generate(&config, i)).collect();
        let truth: Vec<Vec<f32>> = scenes
            .iter()
            .map(|s| s.mask.iter().map(|&m| f32::from(m)).collect())
            .collect();
        let empty = vec![vec![0.0; 256]; 2];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        predictions_png(&path, &scenes, &truth, &empty).unwrap();
        let image = prunus_data::RgbImage::open(&path).unwrap();
        assert_eq!((image.width, image.height), (4 * 16 + 3 * 4, 2 * 16 + 4));
        // The "unpruned" panel (third) equals the truth panel (second) pixel for pixel.
        let at = |x: usize, y: usize| image.data[y * image.width + x];
        for y in 0..16 {
            for x in 0..16 {
                assert_eq!(at(20 + x, y), at(40 + x, y));
                assert_eq!(at(60 + x, y), 0.0);
            }
        }
        assert!(predictions_png(&path, &scenes, &truth[..1], &empty).is_err());
    }
}
