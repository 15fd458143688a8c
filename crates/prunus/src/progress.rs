//! Training metrics for Burn's Learner and a plain-line renderer for non-terminals.

use std::collections::HashMap;
use std::sync::Arc;

use burn::tensor::{Bool, Int, Tensor, TensorReadError};
use burn::train::ItemLazy;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{
    Adaptor, LossInput, Metric, MetricAttributes, MetricDefinition, MetricMetadata, MetricName,
    Numeric, NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use prunus_data::Confusion;

/// What one training or validation step produces.
pub struct SegmentationOutput {
    /// The loss of the batch, 1 element.
    pub loss: Tensor<1>,
    /// `[batch, 1, h, w]` logits.
    pub logits: Tensor<4>,
    /// `[batch, 1, h, w]` 0/1 masks.
    pub masks: Tensor<4>,
}

impl ItemLazy for SegmentationOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            logits: self.logits.without_autodiff(),
            masks: self.masks.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for SegmentationOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

/// Confusion counts of a batch, still on the device.
pub struct ConfusionInput {
    /// `[4]`: true positives, false positives, false negatives, true negatives — integers, so
    /// exact however many pixels a batch holds.
    counts: Tensor<1, Int>,
}

/// Confusion counts of thresholded logits (> 0) against masks, on the tensors' device: the
/// per-image counts of [`confusion_per_image`] summed over the batch.
pub(crate) fn confusion_counts(logits: Tensor<4>, masks: Tensor<4>) -> Tensor<1, Int> {
    confusion_per_image(logits, masks).sum_dim(0).reshape([4])
}

/// Confusion counts `[tp, fp, fn, tn]` of every image of a batch, `[batch, 4]`, counted in
/// integers (exact where a float sum stops being so, past 2^24 pixels).
pub(crate) fn confusion_per_image(logits: Tensor<4>, masks: Tensor<4>) -> Tensor<2, Int> {
    let predicted = logits.greater_elem(0.0).flatten::<2>(1, 3);
    let truth = masks.greater_elem(0.5).flatten::<2>(1, 3);
    let count = |a: Tensor<2, Bool>, b: Tensor<2, Bool>| a.bool_and(b).int().sum_dim(1);
    Tensor::cat(
        vec![
            count(predicted.clone(), truth.clone()),
            count(predicted.clone(), truth.clone().bool_not()),
            count(predicted.clone().bool_not(), truth.clone()),
            count(predicted.bool_not(), truth.bool_not()),
        ],
        1,
    )
}

/// Reads counts made by [`confusion_counts`].
pub(crate) fn read_confusion(counts: Tensor<1, Int>) -> Result<Confusion, TensorReadError> {
    let [tp, fp, fn_, tn] = counts_of(&counts.try_into_vec_as::<i64>()?);
    Ok(Confusion { tp, fp, fn_, tn })
}

/// `[tp, fp, fn, tn]` of one row of counts read from the device (never negative; a negative
/// value would read as 0 rather than wrap).
pub(crate) fn counts_of(row: &[i64]) -> [u64; 4] {
    [0, 1, 2, 3].map(|i| u64::try_from(row[i]).unwrap_or(0))
}

impl Adaptor<ConfusionInput> for SegmentationOutput {
    fn adapt(&self) -> ConfusionInput {
        ConfusionInput {
            counts: confusion_counts(self.logits.clone(), self.masks.clone()),
        }
    }
}

/// A segmentation metric for Burn's Learner, accumulated over the epoch from confusion counts
/// (not an average of per-batch ratios).
#[derive(Clone)]
pub struct SegmentationMetric {
    metric: prunus_data::Metric,
    name: MetricName,
    epoch: Confusion,
    batch: Confusion,
}

impl SegmentationMetric {
    /// A learner metric for `metric`.
    pub fn new(metric: prunus_data::Metric) -> Self {
        let name = match metric {
            prunus_data::Metric::PixelAccuracy => "Pixel accuracy",
            prunus_data::Metric::Iou => "IoU",
            prunus_data::Metric::Dice => "Dice",
            prunus_data::Metric::Precision => "Precision",
            prunus_data::Metric::Recall => "Recall",
        };
        Self {
            metric,
            name: Arc::new(name.to_string()),
            epoch: Confusion::default(),
            batch: Confusion::default(),
        }
    }

    fn entry(&self, final_entry: bool) -> SerializedEntry {
        let epoch = 100.0 * self.epoch.metric(self.metric);
        let batch = 100.0 * self.batch.metric(self.metric);
        let serialized = if final_entry {
            NumericEntry::Final(epoch).serialize()
        } else {
            NumericEntry::Value(batch).serialize()
        };
        SerializedEntry::new(
            format!("epoch {epoch:.2} % - batch {batch:.2} %"),
            serialized,
        )
    }
}

impl Metric for SegmentationMetric {
    type Input = ConfusionInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".to_string()),
            higher_is_better: true,
        }
        .into()
    }

    fn update(
        &mut self,
        item: &ConfusionInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        self.batch = read_confusion(item.counts.clone())?;
        self.epoch.merge(&self.batch);
        Ok(self.entry(false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.entry(true))
    }

    fn clear(&mut self) {
        self.epoch = Confusion::default();
        self.batch = Confusion::default();
    }
}

impl Numeric for SegmentationMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(100.0 * self.batch.metric(self.metric)))
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(100.0 * self.epoch.metric(self.metric)))
    }

    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(100.0 * self.epoch.metric(self.metric))
    }
}

/// Prints one line per split and epoch with every metric's epoch value: the renderer for logs
/// and pipes, where Burn's terminal dashboard cannot draw.
#[derive(Default)]
pub struct PlainRenderer {
    names: HashMap<String, MetricName>,
    order: Vec<String>,
    latest: HashMap<String, String>,
    epoch: usize,
    epochs: usize,
    split: String,
    quiet: bool,
}

impl PlainRenderer {
    /// A renderer that prints to stdout.
    pub fn new() -> Self {
        Self::default()
    }

    /// A renderer that prints nothing.
    pub fn quiet() -> Self {
        Self {
            quiet: true,
            ..Self::default()
        }
    }

    fn record(&mut self, state: MetricState) {
        let entry = match state {
            MetricState::Generic(entry) | MetricState::Numeric(entry, _) => entry,
        };
        let id = format!("{:?}", entry.metric_id);
        let value = entry
            .serialized_entry
            .formatted
            .split(" - batch")
            .next()
            .unwrap_or_default()
            .trim_start_matches("epoch ")
            .to_string();
        self.latest.insert(id, value);
    }
}

impl MetricsRendererTraining for PlainRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.record(state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(state);
    }
}

impl MetricsRendererEvaluation for PlainRenderer {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.record(state);
    }
}

impl MetricsRenderer for PlainRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        let id = format!("{:?}", definition.metric_id);
        if !self.order.contains(&id) {
            self.order.push(id.clone());
        }
        self.names.insert(id, definition.name);
    }
}

impl TrainingProgressLogger for PlainRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.epochs = total_epochs;
        self.epoch = starting_epoch;
    }

    fn update_epoch(&mut self, epoch: usize) {
        // Called with the epoch just completed.
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, _total_items: usize) {
        self.split = split.to_string();
        self.latest.clear();
    }

    fn update_split(&mut self, _items_processed: usize) {}

    fn end_split(&mut self) {
        if self.quiet {
            return;
        }
        let mut line = format!("epoch {}/{} {:<5}", self.epoch, self.epochs, self.split);
        for id in &self.order {
            if let (Some(name), Some(value)) = (self.names.get(id), self.latest.get(id)) {
                line.push_str(&format!("  {name} {value}"));
            }
        }
        println!("{line}");
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for PlainRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, name: &str, _total_items: usize) {
        self.split = name.to_string();
        self.latest.clear();
    }

    fn update_test_progress(&mut self, _items_processed: usize) {}

    fn end_test(&mut self) {
        self.end_split();
    }

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// Past 2^24 pixels a float sum cannot hold an odd count; the integer counts stay exact.
    #[test]
    fn confusion_counts_are_exact_past_two_to_the_24_pixels() {
        let device = Device::flex();
        let side = 4097; // 16,785,409 pixels > 2^24 = 16,777,216
        let n = side * side;
        let logits = Tensor::<4>::ones([1, 1, side, side], &device);
        let mut mask = vec![1.0f32; n];
        mask[12_345] = 0.0;
        mask[n - 7] = 0.0;
        let masks = Tensor::<4>::from_data(TensorData::new(mask, [1, 1, side, side]), &device);
        let c = read_confusion(confusion_counts(logits, masks)).unwrap();
        assert_eq!((c.tp, c.fp, c.fn_, c.tn), (n as u64 - 2, 2, 0, 0));
        assert_eq!(
            (n - 2) % 2,
            1,
            "an odd count, which f32 cannot represent here"
        );
    }
}
