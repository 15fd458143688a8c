//! What the pruning search needs from a task: data, fine-tuning, the validation metric, an
//! example input. Binary segmentation ([`SegmentationTask`]) and image classification
//! ([`ClassificationTask`](crate::ClassificationTask)) are two; any other is a trait impl away.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use prunus_data::Metric;
use prunus_models::{CostReport, measure_cost};

use crate::error::Error;
use crate::measure::{Examples, Measurement};
use crate::tiles::WholeTiles;
use crate::train::{SegmentationModel, TrainConfig, evaluate_images, train_on};
use prunus_data::SegmentationData;

/// A task a network is pruned for: [`prune_to_tolerance`](crate::prune_to_tolerance) asks it
/// for the validation metric of every candidate, fine-tunes candidates through it, and measures
/// cost and latency on its example input.
///
/// Implement it for your own data and objective; the search, criteria, roll-back, run folders,
/// report and progress come with it.
pub trait Task<M> {
    /// The validation metric's name, for reports: `"top-1 accuracy"`, `"IoU"`.
    fn metric_name(&self) -> String;

    /// Whether a higher metric is better (accuracy, IoU) or a lower one (error, loss).
    fn higher_is_better(&self) -> bool {
        true
    }

    /// Checks the data before a search: enough validation examples, and training examples when
    /// `fine_tuning` is on.
    ///
    /// # Errors
    /// [`Error::EmptyData`] naming the empty split.
    fn check(&self, fine_tuning: bool) -> Result<(), Error> {
        let _ = fine_tuning;
        Ok(())
    }

    /// The validation metric of `model`, in points (percent for a share), evaluated in batches
    /// of `batch_size` on `device`.
    ///
    /// # Errors
    /// When the data cannot be read or the model fails.
    fn evaluate(&mut self, model: &M, batch_size: usize, device: &Device) -> Result<f64, Error>;

    /// Every metric of `model` on the validation data — the one [`evaluate`](Self::evaluate)
    /// gives among them, under [`metric_name`](Self::metric_name) — with the per-example
    /// counts they come from when the task has them (the search then gives each step's drop a
    /// confidence interval). By default the one metric, without counts.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate).
    fn measure(
        &mut self,
        model: &M,
        batch_size: usize,
        device: &Device,
    ) -> Result<Measurement, Error> {
        let value = self.evaluate(model, batch_size, device)?;
        Ok(Measurement::single(self.metric_name(), value))
    }

    /// Every metric of `model` on a held-out test split the search never sees, when the task
    /// has one (`None` by default): the report states it beside the validation figures.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate).
    fn measure_test(
        &mut self,
        model: &M,
        batch_size: usize,
        device: &Device,
    ) -> Result<Option<Measurement>, Error> {
        let _ = (model, batch_size, device);
        Ok(None)
    }

    /// What the data is, for reports (sources, sizes, splits); empty by default.
    fn describe(&self) -> String {
        String::new()
    }

    /// `model` trained further with `config` on the training data; `dir` is a scratch folder
    /// the training may use (checkpoints, logs).
    ///
    /// # Errors
    /// When training fails (a loss that is not finite, data that cannot be read).
    fn fine_tune(
        &mut self,
        model: M,
        config: &TrainConfig,
        dir: &Path,
        device: &Device,
    ) -> Result<M, Error>;

    /// The training loss of `model` (on an autodiff device) on training batch `index` of
    /// `batch_size` examples; the Taylor criterion differentiates it.
    ///
    /// # Errors
    /// When the data cannot be read.
    fn loss(
        &mut self,
        model: &M,
        index: usize,
        batch_size: usize,
        device: &Device,
    ) -> Result<Tensor<1>, Error>;

    /// One input example, batch 1, of the shape the network takes (any channel count, any
    /// size): cost, latency and the check of the network's channel groups run on it.
    fn example_input(&self, device: &Device) -> Tensor<4>;

    /// The network's output for `input`, flattened to `[batch, values]`.
    fn forward(&self, model: &M, input: Tensor<4>) -> Tensor<2>;

    /// The cost of one forward pass on the example input; measured by default
    /// ([`measure_cost`]). The search asks for it only for networks without a cost model
    /// ([`PrunableModel::known_cost`](crate::PrunableModel::known_cost)).
    fn cost(&self, model: &M, device: &Device) -> CostReport
    where
        M: Module,
    {
        measure_cost(model, self.example_input(device), |m, x| self.forward(m, x))
    }
}

/// Every segmentation metric of `model` on `data`, with each image's confusion counts.
fn measure_split<M: SegmentationModel>(
    model: &M,
    data: &SegmentationData,
    batch_size: usize,
    device: &Device,
) -> Result<Measurement, Error> {
    let images = evaluate_images(model, data, batch_size, device)?;
    Ok(Measurement::from_examples(Examples::segmentation(images)))
}

/// `training: …; validation: …; test: …`, what a task's [`Task::describe`] says of its splits.
pub(crate) fn describe_splits(train: String, valid: String, test: Option<String>) -> String {
    let mut text = format!("training: {train}; validation: {valid}");
    if let Some(test) = test {
        text += &format!("; test: {test}");
    }
    text
}

/// A task's data checked before a search: validation examples always, training examples when
/// the search fine-tunes.
pub(crate) fn check_splits(train: usize, valid: usize, fine_tuning: bool) -> Result<(), Error> {
    if valid == 0 {
        return Err(Error::EmptyData("validation"));
    }
    if fine_tuning && train == 0 {
        return Err(Error::EmptyData("training"));
    }
    Ok(())
}

/// Binary segmentation (building footprints) on [`SegmentationData`]: BCE + soft-Jaccard
/// fine-tuning with Burn's `Learner`; IoU (by default), Dice, precision, recall or pixel
/// accuracy thresholded at 0 as the metric the tolerance applies to, all five measured and
/// reported; an optional held-out test split ([`with_test`](SegmentationTask::with_test)).
///
/// # Example
/// ```
/// use prunus::data::{Metric, SyntheticConfig};
/// use prunus::{SegmentationData, SegmentationTask, Task};
/// use prunus::models::UNet;
///
/// let scenes = SyntheticConfig::new().with_size(32);
/// let task = SegmentationTask::new(
///     SegmentationData::synthetic(scenes.clone(), 0, 64),
///     SegmentationData::synthetic(scenes.clone(), 1000, 16),
/// )
/// .with_test(SegmentationData::synthetic(scenes, 2000, 16));
/// assert_eq!(Task::<UNet>::metric_name(&task), "IoU");
/// ```
#[derive(Debug, Clone)]
pub struct SegmentationTask {
    train: SegmentationData,
    valid: SegmentationData,
    /// Whole tiles measured instead of `valid`'s crops.
    valid_tiles: Option<WholeTiles>,
    test: Option<SegmentationData>,
    /// Whole tiles measured as the test split instead of `test`'s crops.
    test_tiles: Option<WholeTiles>,
    metric: Metric,
    /// Devices fine-tuning trains on; empty: the search's device.
    devices: Vec<Device>,
}

/// A split the task measures: crops (or scenes) in batches, or whole tiles through the tiling
/// — the tiles when the task has both.
enum Held<'a> {
    Crops(&'a SegmentationData),
    Tiles(&'a WholeTiles),
}

impl Held<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Crops(data) => data.len(),
            Self::Tiles(tiles) => tiles.len(),
        }
    }

    fn measure<M: SegmentationModel>(
        &self,
        model: &M,
        batch_size: usize,
        device: &Device,
    ) -> Result<Measurement, Error> {
        match self {
            Self::Crops(data) => measure_split(model, data, batch_size, device),
            Self::Tiles(tiles) => tiles.measure(model, device),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Crops(data) => data.describe(),
            Self::Tiles(tiles) => tiles.describe(),
        }
    }
}

impl SegmentationTask {
    /// Fine-tuning on `train`, the metric on `valid`; IoU until
    /// [`with_metric`](Self::with_metric).
    pub fn new(train: SegmentationData, valid: SegmentationData) -> Self {
        Self {
            train,
            valid,
            valid_tiles: None,
            test: None,
            test_tiles: None,
            metric: Metric::Iou,
            devices: Vec::new(),
        }
    }

    /// A held-out test split: measured before and after pruning, never seen by the search.
    pub fn with_test(mut self, test: SegmentationData) -> Self {
        self.test = Some(test);
        self
    }

    /// Validation on whole tiles through the seamless tiling, as the network will be used on
    /// them, instead of the validation crops (which then serve only Burn's per-epoch check
    /// while fine-tuning, and the example input of cost and latency). Each tile is one example
    /// of the bootstrap intervals.
    pub fn with_whole_tiles(mut self, valid: WholeTiles) -> Self {
        self.valid_tiles = Some(valid);
        self
    }

    /// A held-out test split of whole tiles through the seamless tiling, measured instead of
    /// any test crops.
    pub fn with_test_tiles(mut self, test: WholeTiles) -> Self {
        self.test_tiles = Some(test);
        self
    }

    /// The validation split the search measures.
    fn validation(&self) -> Held<'_> {
        match &self.valid_tiles {
            Some(tiles) => Held::Tiles(tiles),
            None => Held::Crops(&self.valid),
        }
    }

    /// The held-out test split, if any.
    fn test_split(&self) -> Option<Held<'_>> {
        let tiles = self.test_tiles.as_ref().map(Held::Tiles);
        tiles.or(self.test.as_ref().map(Held::Crops))
    }

    /// Fine-tuning on several devices at once ([`train_on`](crate::train_on)); measuring stays on
    /// the search's device. Empty (the default): fine-tuning on the search's device.
    pub fn with_devices(mut self, devices: Vec<Device>) -> Self {
        self.devices = devices;
        self
    }

    /// The validation metric the tolerance applies to.
    pub fn with_metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    /// The validation metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }
}

impl<M: SegmentationModel> Task<M> for SegmentationTask {
    fn metric_name(&self) -> String {
        self.metric.to_string()
    }

    fn check(&self, fine_tuning: bool) -> Result<(), Error> {
        check_splits(self.train.len(), self.validation().len(), fine_tuning)
    }

    fn evaluate(&mut self, model: &M, batch_size: usize, device: &Device) -> Result<f64, Error> {
        let m = self.measure(model, batch_size, device)?;
        Ok(m.metrics[&self.metric.to_string()])
    }

    fn measure(
        &mut self,
        model: &M,
        batch_size: usize,
        device: &Device,
    ) -> Result<Measurement, Error> {
        self.validation().measure(model, batch_size, device)
    }

    fn measure_test(
        &mut self,
        model: &M,
        batch_size: usize,
        device: &Device,
    ) -> Result<Option<Measurement>, Error> {
        self.test_split()
            .map(|test| test.measure(model, batch_size, device))
            .transpose()
    }

    fn describe(&self) -> String {
        describe_splits(
            self.train.describe(),
            self.validation().describe(),
            self.test_split().as_ref().map(Held::describe),
        )
    }

    fn fine_tune(
        &mut self,
        model: M,
        config: &TrainConfig,
        dir: &Path,
        device: &Device,
    ) -> Result<M, Error> {
        // Burn's Learner validates every epoch; a batch of the validation data keeps that cheap.
        let small_valid = self.valid.take(config.batch_size);
        let devices = match self.devices.as_slice() {
            [] => std::slice::from_ref(device),
            devices => devices,
        };
        Ok(train_on(model, &self.train, &small_valid, dir, config, devices)?.model)
    }

    fn loss(
        &mut self,
        model: &M,
        index: usize,
        batch_size: usize,
        device: &Device,
    ) -> Result<Tensor<1>, Error> {
        let start = index * batch_size % self.train.len().max(1);
        let batch = self.train.batch(start..start + batch_size, device)?;
        let logits = model.forward(batch.images);
        Ok(crate::LossConfig::new().task_loss(logits, batch.masks))
    }

    fn example_input(&self, device: &Device) -> Tensor<4> {
        let size = self.valid.sample_size();
        Tensor::random(
            [1, 3, size, size],
            burn::tensor::Distribution::Default,
            device,
        )
    }

    fn forward(&self, model: &M, input: Tensor<4>) -> Tensor<2> {
        model.forward(input).flatten(1, 3)
    }
}
