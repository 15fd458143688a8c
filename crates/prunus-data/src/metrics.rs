//! Binary segmentation metrics accumulated over a whole dataset.
//!
//! Counts are summed over every pixel of every image before any ratio is taken (micro
//! averaging), so a metric over a dataset does not depend on how it was batched. A ratio whose
//! numerator and denominator are both 0 — nothing to find and nothing claimed — is 1.

use serde::{Deserialize, Serialize};

/// True/false positives/negatives over any number of pixels.
///
/// # Example
/// ```
/// use prunus_data::Confusion;
///
/// let mut c = Confusion::default();
/// c.add(&[true, true, false, false], &[true, false, true, false]);
/// assert_eq!((c.tp, c.fp, c.fn_, c.tn), (1, 1, 1, 1));
/// assert_eq!(c.iou(), 1.0 / 3.0);
/// assert_eq!(c.pixel_accuracy(), 0.5);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Building pixels predicted as building.
    pub tp: u64,
    /// Background pixels predicted as building.
    pub fp: u64,
    /// Building pixels predicted as background.
    pub fn_: u64,
    /// Background pixels predicted as background.
    pub tn: u64,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

impl Confusion {
    /// Adds pixels: `predicted[i]` and `truth[i]` say whether pixel `i` is a building.
    ///
    /// # Panics
    /// When the two slices differ in length.
    pub fn add(&mut self, predicted: &[bool], truth: &[bool]) {
        assert_eq!(
            predicted.len(),
            truth.len(),
            "prediction and truth differ in size"
        );
        for (&p, &t) in predicted.iter().zip(truth) {
            match (p, t) {
                (true, true) => self.tp += 1,
                (true, false) => self.fp += 1,
                (false, true) => self.fn_ += 1,
                (false, false) => self.tn += 1,
            }
        }
    }

    /// Adds the counts of another accumulator.
    pub fn merge(&mut self, other: &Confusion) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
        self.tn += other.tn;
    }

    /// Pixels counted.
    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// `(tp + tn) / total`.
    pub fn pixel_accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }

    /// Intersection over union (Jaccard) of the building class: `tp / (tp + fp + fn)`.
    pub fn iou(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp + self.fn_)
    }

    /// Dice, equal to F1: `2tp / (2tp + fp + fn)`.
    pub fn dice(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// `tp / (tp + fp)`.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// `tp / (tp + fn)`.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// The value of `metric`.
    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::PixelAccuracy => self.pixel_accuracy(),
            Metric::Iou => self.iou(),
            Metric::Dice => self.dice(),
            Metric::Precision => self.precision(),
            Metric::Recall => self.recall(),
        }
    }
}

/// A segmentation metric, in `[0, 1]`, higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Share of pixels classified right.
    PixelAccuracy,
    /// Intersection over union of the building class.
    Iou,
    /// Dice / F1 of the building class.
    Dice,
    /// Precision of the building class.
    Precision,
    /// Recall of the building class.
    Recall,
}

impl Metric {
    /// Every metric, in the order reports list them: IoU, Dice, precision, recall, pixel
    /// accuracy.
    pub const ALL: [Metric; 5] = [
        Metric::Iou,
        Metric::Dice,
        Metric::Precision,
        Metric::Recall,
        Metric::PixelAccuracy,
    ];
}

impl std::fmt::Display for Metric {
    /// The metric as a report names it: `pixel accuracy`, `IoU`, `Dice`, `precision`, `recall`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PixelAccuracy => "pixel accuracy",
            Self::Iou => "IoU",
            Self::Dice => "Dice",
            Self::Precision => "precision",
            Self::Recall => "recall",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_display_as_reports_name_them() {
        assert_eq!(Metric::PixelAccuracy.to_string(), "pixel accuracy");
        assert_eq!(Metric::Iou.to_string(), "IoU");
    }

    fn confusion(pred: &[u8], truth: &[u8]) -> Confusion {
        let mut c = Confusion::default();
        c.add(
            &pred.iter().map(|&p| p == 1).collect::<Vec<_>>(),
            &truth.iter().map(|&t| t == 1).collect::<Vec<_>>(),
        );
        c
    }

    #[test]
    fn hand_computed_case() {
        // tp = 3, fp = 1, fn = 2, tn = 4.
        let c = confusion(
            &[1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
            &[1, 1, 1, 0, 1, 1, 0, 0, 0, 0],
        );
        assert_eq!((c.tp, c.fp, c.fn_, c.tn), (3, 1, 2, 4));
        assert_eq!(c.pixel_accuracy(), 0.7);
        assert_eq!(c.iou(), 0.5);
        assert_eq!(c.dice(), 6.0 / 9.0);
        assert_eq!(c.precision(), 0.75);
        assert_eq!(c.recall(), 0.6);
    }

    #[test]
    fn empty_truth_and_empty_prediction_is_perfect() {
        let c = confusion(&[0, 0, 0], &[0, 0, 0]);
        for m in [
            Metric::PixelAccuracy,
            Metric::Iou,
            Metric::Dice,
            Metric::Precision,
            Metric::Recall,
        ] {
            assert_eq!(c.metric(m), 1.0, "{m:?}");
        }
    }

    #[test]
    fn buildings_predicted_on_an_empty_mask() {
        let c = confusion(&[1, 0, 0, 0], &[0, 0, 0, 0]);
        assert_eq!(c.iou(), 0.0);
        assert_eq!(c.precision(), 0.0);
        assert_eq!(c.recall(), 1.0); // nothing to find
        assert_eq!(c.pixel_accuracy(), 0.75);
    }

    #[test]
    fn nothing_predicted_on_a_full_mask() {
        let c = confusion(&[0, 0], &[1, 1]);
        assert_eq!(c.iou(), 0.0);
        assert_eq!(c.dice(), 0.0);
        assert_eq!(c.precision(), 1.0); // nothing claimed
        assert_eq!(c.recall(), 0.0);
    }

    #[test]
    fn accumulation_is_independent_of_batching() {
        let mut whole = confusion(&[1, 0, 1, 1, 0, 1], &[1, 1, 0, 1, 0, 0]);
        let mut parts = confusion(&[1, 0, 1], &[1, 1, 0]);
        parts.merge(&confusion(&[1, 0, 1], &[1, 0, 0]));
        assert_eq!(whole, parts);
        whole.merge(&Confusion::default());
        assert_eq!(whole, parts);
    }

    #[test]
    #[should_panic(expected = "differ in size")]
    fn mismatched_sizes_panic_with_a_message() {
        Confusion::default().add(&[true], &[true, false]);
    }
}
