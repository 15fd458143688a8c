//! Plots of a pruning run, drawn with `plotters`: SVG charts (metric against FLOPs, widths,
//! curves of several methods) and a PNG of predictions.

use std::error::Error as StdError;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use prunus_data::Scene;
use prunus_plan::Tolerance;

use crate::{Error, Report};

const SIZE: (u32, u32) = (640, 400);
const GREEN: RGBColor = RGBColor(0x22, 0xaa, 0x77);
const RED: RGBColor = RGBColor(0xdd, 0x33, 0x33);
const GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);
const LIGHT: RGBColor = RGBColor(0xbb, 0xcc, 0xdd);
const DARK: RGBColor = RGBColor(0x22, 0x44, 0x77);
/// One colour per curve of [`curves`], repeating after eight.
const COLOURS: [RGBColor; 8] = [
    GREEN,
    RED,
    RGBColor(0x33, 0x66, 0xcc),
    RGBColor(0xee, 0x99, 0x00),
    RGBColor(0x88, 0x44, 0x99),
    RGBColor(0x77, 0x77, 0x77),
    RGBColor(0x00, 0xaa, 0xaa),
    RGBColor(0xaa, 0x55, 0x22),
];

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn StdError>>;

/// An SVG document of `size` drawn by `draw` on a white background.
fn svg(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into))
            // The SVG backend writes into a String and lays text out without fonts: nothing in
            // it can fail.
            .expect("drawing an SVG into a string");
    }
    out
}

/// A tick label: up to three decimals, trailing zeros dropped, never `-0`.
fn tick(v: &f64) -> String {
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0" } else { text }.to_string()
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Axes with round ticks over `x` × `y` on `root`, titled and labelled.
fn axes<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
    (x_label, y_label): (&str, &str),
) -> Result<Chart<'a, 'b>, Box<dyn StdError>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()?;
    Ok(chart)
}

/// The legend of the series labelled on `chart`, at `position`.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .draw()?;
    Ok(())
}

/// `[lo, hi]` of `values`, widened by 5% of the span (at least 0.05) on each side.
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(0.05);
    (lo - pad, hi + pad)
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
    let (y_lo, y_hi) = padded(points.iter().map(|p| p.1).chain([floor]));
    let accepted: Vec<(f64, f64)> = points.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
    let title = format!(
        "{} vs FLOPs while pruning ({} criterion)",
        report.metric,
        report.criterion.name()
    );
    svg(SIZE, |root| {
        let y_label = format!("{}, %", report.metric);
        let ranges = (0.0..x_hi, y_lo..y_hi);
        let mut chart = axes(root, &title, ranges, ("GFLOPs (one image)", &y_label))?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, floor), (x_hi, floor)],
                6,
                4,
                GREY.into(),
            ))?
            .label(format!("tolerance floor {floor:.2}"))
            .legend(|(x, y)| PathElement::new([(x - 8, y), (x + 8, y)], GREY));
        chart.draw_series(LineSeries::new(accepted.clone(), GREEN.stroke_width(2)))?;
        chart
            .draw_series(accepted.iter().map(|&p| Circle::new(p, 4, GREEN.filled())))?
            .label("accepted")
            .legend(|p| Circle::new(p, 4, GREEN.filled()));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| !p.2)
                    .map(|p| Cross::new((p.0, p.1.clamp(y_lo, y_hi)), 4, RED.stroke_width(2))),
            )?
            .label("rolled back")
            .legend(|p| Cross::new(p, 4, RED.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
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
/// assert!(svg.starts_with("<svg") && svg.contains("\nl1\n</text>"));
/// ```
pub fn curves(title: &str, x_label: &str, y_label: &str, curves: &[Curve]) -> String {
    let points = || curves.iter().flat_map(|c| c.1.iter().copied());
    let (x_lo, x_hi) = padded(points().map(|p| p.0));
    let (y_lo, y_hi) = padded(points().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
    svg(SIZE, |root| {
        let ranges = (x_lo..x_hi, y_lo..y_hi);
        let mut chart = axes(root, title, ranges, (x_label, y_label))?;
        for (i, (name, points)) in curves.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let mut sorted = points.clone();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(
                    sorted.iter().map(|p| (p.0, p.1)),
                    colour.stroke_width(2),
                ))?
                .label(name.as_str())
                .legend(move |p| Circle::new(p, 4, colour.filled()));
            chart.draw_series(
                sorted
                    .iter()
                    .map(|&(x, y, _)| Circle::new((x, y), 3, colour.filled())),
            )?;
            chart.draw_series(
                sorted
                    .iter()
                    .map(|&(x, y, sd)| PathElement::new([(x, y - sd), (x, y + sd)], colour)),
            )?;
        }
        if curves.is_empty() {
            return Ok(());
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Every channel group's width before (light) and after (dark) pruning, as horizontal bars in
/// an SVG document, with the numbers.
pub fn widths(report: &Report) -> String {
    const ROW: i32 = 16;
    const LABELS: i32 = 170;
    let n = report.widths.len().max(1) as i32;
    let (top, width) = (40, SIZE.0 as i32);
    let height = top + 50 + ROW * n;
    let max = report
        .widths
        .iter()
        .map(|g| g.before)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bar = |v: usize| (v as f64 / max * f64::from(width - LABELS - 90)).round() as i32;
    svg((SIZE.0, height as u32), |root| {
        let title = "Filters per layer: before (light) and after (dark)";
        root.draw(&Text::new(
            title,
            (width / 2, 22),
            TextStyle::from(("sans-serif", 15).into_font())
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        let label = TextStyle::from(("sans-serif", 11).into_font());
        for (i, g) in report.widths.iter().enumerate() {
            let y = top + ROW * i as i32;
            let middle = y + ROW / 2;
            root.draw(&Text::new(
                g.group.as_str(),
                (LABELS - 6, middle),
                label.clone().pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
            for (value, colour) in [(g.before, LIGHT), (g.after, DARK)] {
                root.draw(&Rectangle::new(
                    [(LABELS, y + 2), (LABELS + bar(value), y + ROW - 2)],
                    colour.filled(),
                ))?;
            }
            root.draw(&Text::new(
                format!("{} → {}", g.before, g.after),
                (LABELS + bar(g.before) + 6, middle),
                label.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(())
    })
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
        return Err(Error::config("scenes", "no scenes to draw"));
    };
    let s = first.size;
    let plane = s * s;
    if before.len() != scenes.len()
        || after.len() != scenes.len()
        || scenes.iter().any(|sc| sc.size != s)
        || before.iter().chain(after).any(|p| p.len() != plane)
    {
        return Err(Error::config(
            "predictions",
            "every scene needs a prediction before and after, of its size",
        ));
    }
    let gap = 4;
    let (width, height) = (4 * s + 3 * gap, scenes.len() * s + (scenes.len() - 1) * gap);
    let mut pixels = vec![0u8; width * height * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width as u32, height as u32))
            .into_drawing_area();
        let drawn: Drawn = (|| {
            root.fill(&WHITE)?;
            let to8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let on = |yes: bool| if yes { WHITE } else { BLACK };
            for (r, scene) in scenes.iter().enumerate() {
                let top = (r * (s + gap)) as i32;
                for i in 0..plane {
                    let (x, y) = ((i % s) as i32, top + (i / s) as i32);
                    let image = RGBColor(
                        to8(scene.image[i]),
                        to8(scene.image[plane + i]),
                        to8(scene.image[2 * plane + i]),
                    );
                    let cells = [
                        image,
                        on(scene.mask[i] == 1),
                        on(before[r][i] > 0.5),
                        on(after[r][i] > 0.5),
                    ];
                    for (c, colour) in cells.into_iter().enumerate() {
                        root.draw_pixel(((c * (s + gap)) as i32 + x, y), &colour)?;
                    }
                }
            }
            root.present()?;
            Ok(())
        })();
        // The buffer has the backend's size by construction: nothing can fail.
        drawn.expect("drawing into a buffer of its size");
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
            calibration: None,
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

    /// The SVG's elements named `tag` that mention `colour`.
    fn elements<'a>(svg: &'a str, tag: &str, colour: &str) -> Vec<&'a str> {
        svg.split('<')
            .filter(|e| e.starts_with(tag) && e.contains(colour))
            .collect()
    }

    #[test]
    fn metric_plot_draws_every_step_and_the_floor() {
        let svg = metric_vs_flops(&report());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Baseline + two accepted steps as dots (+ the legend's), one cross of two strokes
        // (+ the legend's).
        assert_eq!(elements(&svg, "circle ", "#22AA77").len(), 3 + 1);
        assert_eq!(elements(&svg, "line ", "#DD3333").len(), 2 * (1 + 1));
        // The accepted path runs baseline → step 1 → step 3, in that order: x falls.
        let path = elements(&svg, "polyline ", "#22AA77");
        assert_eq!(path.len(), 1, "{svg}");
        let points = path[0].split("points=\"").nth(1).unwrap();
        let xs: Vec<f64> = points[..points.find('"').unwrap()]
            .split_whitespace()
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(xs.len(), 3);
        assert!(xs[0] > xs[1] && xs[1] > xs[2], "{xs:?}");
        assert!(svg.contains("tolerance floor 98.50"));
    }

    #[test]
    fn curves_draw_one_line_and_legend_entry_per_method() {
        let svg = curves(
            "IoU",
            "FLOPs removed, %",
            "IoU, %",
            &[
                ("gate".into(), vec![(50.0, 66.0, 0.4), (90.0, 62.0, 1.1)]),
                ("l1".into(), vec![(90.0, 58.0, 2.0), (50.0, 65.5, 0.5)]),
            ],
        );
        // Per method: its line (2 px wide) and a ±sd bar per point (1 px).
        for colour in ["#22AA77", "#DD3333"] {
            let lines = elements(&svg, "polyline ", colour);
            let wide = lines
                .iter()
                .filter(|l| l.contains("stroke-width=\"2\""))
                .count();
            assert_eq!((wide, lines.len()), (1, 3), "{colour}");
        }
        assert!(svg.contains("\ngate\n</text>") && svg.contains("\nl1\n</text>"));
        // No curves: the axes alone, still a document.
        assert!(curves("none", "x", "y", &[]).trim_end().ends_with("</svg>"));
    }

    #[test]
    fn tick_labels_are_short_and_never_negative_zero() {
        assert_eq!(tick(&-1e-17), "0");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&98.5), "98.5");
        assert_eq!(tick(&12.0), "12");
    }

    #[test]
    fn widths_plot_lists_groups_escaped() {
        let svg = widths(&report());
        assert!(svg.contains("encoder.0.conv1") && svg.contains("16 → 3"));
        assert!(svg.contains("decoder&lt;&amp;&gt;") && !svg.contains("decoder<&>"));
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
