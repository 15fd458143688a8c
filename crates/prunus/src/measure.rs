//! What a task measures on a split — every metric, and the per-example counts they come from —
//! and how sure a change of them is: a paired bootstrap over the examples.

use std::collections::BTreeMap;

use prunus_data::{Confusion, Metric};
use rand::RngExt;

use crate::fit::stream;

/// Every metric a task measured on one split, and what a bootstrap needs to resample it.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Every metric, in points, by name.
    pub metrics: BTreeMap<String, f64>,
    /// The per-example counts the metrics are computed from, when they are sums over examples
    /// (confusion counts, right/total); `None` gives no confidence intervals.
    pub examples: Option<Examples>,
}

impl Measurement {
    /// One metric, no per-example counts.
    pub fn single(name: impl Into<String>, value: f64) -> Self {
        Self {
            metrics: BTreeMap::from([(name.into(), value)]),
            examples: None,
        }
    }

    /// The metrics of `examples`' summed counts, with the examples kept for intervals.
    pub fn from_examples(examples: Examples) -> Self {
        Self {
            metrics: examples.metrics_of(0..examples.len()),
            examples: Some(examples),
        }
    }
}

/// Metrics that are functions of per-example counts summed over a dataset (micro-averaged):
/// what a bootstrap resamples.
///
/// # Example
/// ```
/// use prunus::Examples;
///
/// // Two images of a segmentation task, as confusion counts [tp, fp, fn, tn].
/// let examples = Examples::segmentation(vec![[6, 2, 2, 90], [0, 0, 0, 100]]);
/// let all = examples.metrics_of(0..2);
/// assert_eq!(all["IoU"], 60.0); // 6 / (6 + 2 + 2)
/// assert_eq!(all["pixel accuracy"], 98.0);
/// ```
#[derive(Debug, Clone)]
pub struct Examples {
    /// One row of counts per example, all rows of one length.
    pub counts: Vec<Vec<f64>>,
    /// The metrics, in points by name, of counts summed over any set of examples.
    pub metrics: fn(&[f64]) -> BTreeMap<String, f64>,
}

/// The five segmentation metrics, in points, of confusion counts `[tp, fp, fn, tn]`.
fn segmentation_metrics(sums: &[f64]) -> BTreeMap<String, f64> {
    let c = Confusion {
        tp: sums[0] as u64,
        fp: sums[1] as u64,
        fn_: sums[2] as u64,
        tn: sums[3] as u64,
    };
    Metric::ALL
        .iter()
        .map(|&m| (m.to_string(), 100.0 * c.metric(m)))
        .collect()
}

/// Top-1 accuracy, in points, of counts `[right, examples]`.
fn accuracy_metric(sums: &[f64]) -> BTreeMap<String, f64> {
    let value = if sums[1] > 0.0 {
        100.0 * sums[0] / sums[1]
    } else {
        0.0
    };
    BTreeMap::from([(crate::classify::TOP1.to_string(), value)])
}

impl Examples {
    /// Images of a binary segmentation task by their confusion counts `[tp, fp, fn, tn]`: IoU,
    /// Dice, precision, recall and pixel accuracy.
    pub fn segmentation(images: Vec<[u64; 4]>) -> Self {
        Self {
            counts: images
                .into_iter()
                .map(|c| c.iter().map(|&v| v as f64).collect())
                .collect(),
            metrics: segmentation_metrics,
        }
    }

    /// Examples of a classification task by whether each was classified right: top-1 accuracy.
    pub fn classification(right: impl IntoIterator<Item = bool>) -> Self {
        Self {
            counts: right
                .into_iter()
                .map(|r| vec![if r { 1.0 } else { 0.0 }, 1.0])
                .collect(),
            metrics: accuracy_metric,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The metrics of the examples `indices` (repeats count repeatedly).
    pub fn metrics_of(&self, indices: impl IntoIterator<Item = usize>) -> BTreeMap<String, f64> {
        let width = self.counts.first().map_or(0, Vec::len);
        let mut sums = vec![0.0; width];
        for i in indices {
            for (s, c) in sums.iter_mut().zip(&self.counts[i]) {
                *s += c;
            }
        }
        (self.metrics)(&sums)
    }
}

/// Percentile intervals, at `confidence` (e.g. 0.95), of the change `candidate − baseline` of
/// every metric both measure, by a paired bootstrap: `resamples` times, draw as many examples
/// as there are with replacement, the same draw for both networks, and take the change of the
/// metrics over the draw. Empty when the two were not measured on the same examples or
/// `resamples` is 0.
///
/// # Example
/// ```
/// use prunus::{Examples, change_intervals};
///
/// let before = Examples::classification((0..100).map(|i| i % 10 != 0)); // 90% right
/// let after = Examples::classification((0..100).map(|i| i % 10 > 1)); // 80% right
/// let ci = change_intervals(&before, &after, 1000, 0.95, 7)["top-1 accuracy"];
/// assert!(ci[0] <= -10.0 && -10.0 <= ci[1] && ci[1] < 0.0, "{ci:?}");
/// ```
pub fn change_intervals(
    baseline: &Examples,
    candidate: &Examples,
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> BTreeMap<String, [f64; 2]> {
    let n = baseline.len();
    if resamples == 0 || n == 0 || candidate.len() != n {
        return BTreeMap::new();
    }
    let mut rng = stream(seed ^ 0x5eed_b007_57a9_0000);
    let mut changes: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut draw = vec![0usize; n];
    for _ in 0..resamples {
        for d in &mut draw {
            *d = rng.random_range(0..n);
        }
        let before = baseline.metrics_of(draw.iter().copied());
        let after = candidate.metrics_of(draw.iter().copied());
        for (name, b) in before {
            if let Some(a) = after.get(&name) {
                changes.entry(name).or_default().push(a - b);
            }
        }
    }
    let tail = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    changes
        .into_iter()
        .map(|(name, mut v)| {
            v.sort_by(f64::total_cmp);
            let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
            (name, [at(tail), at(1.0 - tail)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_networks_change_by_exactly_nothing() {
        let e = Examples::segmentation(vec![[5, 1, 2, 92], [0, 3, 0, 97], [9, 0, 1, 90]]);
        let ci = change_intervals(&e, &e, 200, 0.95, 1);
        assert_eq!(ci.len(), 5);
        assert!(ci.values().all(|&c| c == [0.0, 0.0]));
    }

    #[test]
    fn a_change_on_one_image_of_many_is_uncertain_a_change_on_all_is_not() {
        // One image of 50 loses all its buildings: the IoU change spans 0 in some resamples.
        let before: Vec<[u64; 4]> = (0..50).map(|_| [10, 2, 2, 86]).collect();
        let mut one = before.clone();
        one[0] = [0, 2, 12, 86];
        let b = Examples::segmentation(before.clone());
        let ci = change_intervals(&b, &Examples::segmentation(one), 2000, 0.95, 3)["IoU"];
        assert!(ci[0] < 0.0 && ci[1] == 0.0, "{ci:?}");
        // Every image loses one building pixel: a certain drop.
        let all: Vec<[u64; 4]> = (0..50).map(|_| [9, 2, 3, 86]).collect();
        let ci = change_intervals(&b, &Examples::segmentation(all), 2000, 0.95, 3)["IoU"];
        let exact = 100.0 * (9.0 / 14.0 - 10.0 / 14.0);
        assert!((ci[0] - exact).abs() < 1e-9 && (ci[1] - exact).abs() < 1e-9);
    }

    #[test]
    fn the_interval_covers_the_measured_change_and_narrows_with_more_examples() {
        let make = |n: usize, flip: usize| {
            Examples::classification((0..n).map(move |i| i % 4 != 0 && i % flip != 1))
        };
        let width = |n: usize| {
            let (b, a) = (make(n, 1_000_000), make(n, 7));
            let measured = a.metrics_of(0..n)[TOP] - b.metrics_of(0..n)[TOP];
            let ci = change_intervals(&b, &a, 1000, 0.9, 5)[TOP];
            assert!(ci[0] <= measured && measured <= ci[1], "{ci:?} {measured}");
            ci[1] - ci[0]
        };
        assert!(width(2000) < width(100) / 2.0);
    }

    const TOP: &str = crate::classify::TOP1;

    #[test]
    fn different_examples_give_no_interval() {
        let a = Examples::classification([true, false]);
        let b = Examples::classification([true]);
        assert!(change_intervals(&a, &b, 100, 0.95, 0).is_empty());
        assert!(change_intervals(&a, &a, 0, 0.95, 0).is_empty());
    }
}
