//! Image classification as a pruning task: cross-entropy fine-tuning, top-1 accuracy.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::{Module, ModuleDisplay};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor};

use crate::error::Error;
use crate::fit::fit;
use crate::measure::{Examples, Measurement};
use crate::task::Task;
use crate::train::TrainConfig;

/// A network that maps `[batch, channels, h, w]` images to `[batch, classes]` logits.
pub trait ClassificationModel: Module + ModuleDisplay + 'static {
    /// The class logits for `images`.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;
}

/// A batch of images and their class indices on a device.
#[derive(Debug, Clone)]
pub struct ClassificationBatch {
    /// `[batch, channels, h, w]`.
    pub images: Tensor<4>,
    /// `[batch]`, class indices.
    pub targets: Tensor<1, Int>,
}

/// Image classification on Burn datasets: fine-tuning with cross-entropy (plus the gates' L1
/// penalty of the [`TrainConfig`]), top-1 accuracy in percent as the metric.
///
/// The data are any Burn [`Dataset`]s of items `I` and a [`Batcher`] that turns items into a
/// [`ClassificationBatch`] — the same pieces a Burn training loop uses.
pub struct ClassificationTask<I> {
    train: Arc<dyn Dataset<I>>,
    valid: Arc<dyn Dataset<I>>,
    test: Option<Arc<dyn Dataset<I>>>,
    batcher: Arc<dyn Batcher<I, ClassificationBatch>>,
}

/// The name of the classification metric.
pub(crate) const TOP1: &str = "top-1 accuracy";

impl<I> std::fmt::Debug for ClassificationTask<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassificationTask")
            .field("train", &self.train.len())
            .field("valid", &self.valid.len())
            .field("test", &self.test.as_ref().map(|t| t.len()))
            .finish()
    }
}

impl<I: Send + Sync + 'static> ClassificationTask<I> {
    /// Fine-tuning on `train`, top-1 accuracy on `valid`, batches made by `batcher`.
    pub fn new(
        train: impl Dataset<I> + 'static,
        valid: impl Dataset<I> + 'static,
        batcher: impl Batcher<I, ClassificationBatch> + 'static,
    ) -> Self {
        Self {
            train: Arc::new(train),
            valid: Arc::new(valid),
            test: None,
            batcher: Arc::new(batcher),
        }
    }

    /// A held-out test split: measured before and after pruning, never seen by the search.
    pub fn with_test(mut self, test: impl Dataset<I> + 'static) -> Self {
        self.test = Some(Arc::new(test));
        self
    }

    fn batch(
        &self,
        data: &dyn Dataset<I>,
        indices: &[usize],
        device: &Device,
    ) -> Result<ClassificationBatch, Error> {
        let items = indices
            .iter()
            .map(|&i| {
                data.get(i)
                    .map_err(|e| Error::Training(format!("cannot read example {i}: {e}")))
            })
            .collect::<Result<Vec<I>, Error>>()?;
        Ok(self.batcher.batch(items, device))
    }

    /// Top-1 accuracy of `model` on `data`, in percent, in batches of `batch_size`.
    ///
    /// # Errors
    /// [`Error::EmptyData`] for an empty dataset; an example that cannot be read.
    pub fn accuracy<M: ClassificationModel>(
        &self,
        model: &M,
        data: &dyn Dataset<I>,
        batch_size: usize,
        device: &Device,
    ) -> Result<f64, Error> {
        let right = self.right(model, data, batch_size, device)?;
        Ok(100.0 * right.iter().filter(|&&r| r).count() as f64 / right.len() as f64)
    }

    /// Whether `model` classifies each example of `data` right, in order.
    fn right<M: ClassificationModel>(
        &self,
        model: &M,
        data: &dyn Dataset<I>,
        batch_size: usize,
        device: &Device,
    ) -> Result<Vec<bool>, Error> {
        if data.is_empty() {
            return Err(Error::EmptyData("evaluation"));
        }
        let model = model.valid();
        let mut right = Vec::with_capacity(data.len());
        let indices: Vec<usize> = (0..data.len()).collect();
        for chunk in indices.chunks(batch_size.max(1)) {
            let batch = self.batch(data, chunk, device)?;
            let predicted = model.forward(batch.images).argmax(1).flatten::<1>(0, 1);
            let equal = predicted
                .equal(batch.targets)
                .int()
                .try_into_vec_as::<i64>()
                .map_err(|e| Error::Training(format!("cannot read the predictions: {e}")))?;
            right.extend(equal.into_iter().map(|e| e != 0));
        }
        Ok(right)
    }

    /// Every metric of `model` on `data`, with the per-example counts.
    fn measure_on<M: ClassificationModel>(
        &self,
        model: &M,
        data: &dyn Dataset<I>,
        batch_size: usize,
        device: &Device,
    ) -> Result<Measurement, Error> {
        let right = self.right(model, data, batch_size, device)?;
        Ok(Measurement::from_examples(Examples::classification(right)))
    }

    /// Trains `model` on the training data with `config` (also how the search fine-tunes):
    /// cross-entropy plus `config.loss.gate_l1 · Σ|g|`, Adam at `learning_rate` (the gates at
    /// `gate_lr_scale` times it) on its `schedule`, `epochs` epochs of shuffled batches of
    /// `batch_size` (by `seed`), all parameters or the gates only (`mode`). The segmentation
    /// loss weights, `workers`, `display` and `resume` do not apply: the loop is in memory and
    /// quiet.
    ///
    /// # Errors
    /// As [`Task::fine_tune`].
    pub fn train<M: ClassificationModel>(
        &self,
        model: M,
        config: &TrainConfig,
        device: &Device,
    ) -> Result<M, Error> {
        let loss = CrossEntropyLossConfig::new();
        fit(
            model,
            self.train.len(),
            config,
            device,
            |indices, device| self.batch(&*self.train, indices, device),
            |model: &M, batch: ClassificationBatch| {
                let logits = model.forward(batch.images);
                loss.init(&logits.device()).forward(logits, batch.targets)
            },
        )
    }
}

impl<I: Send + Sync + 'static, M: ClassificationModel> Task<M> for ClassificationTask<I> {
    fn metric_name(&self) -> String {
        TOP1.into()
    }

    fn check(&self, fine_tuning: bool) -> Result<(), Error> {
        crate::task::check_splits(self.train.len(), self.valid.len(), fine_tuning)
    }

    fn evaluate(&mut self, model: &M, batch_size: usize, device: &Device) -> Result<f64, Error> {
        self.accuracy(model, &*self.valid, batch_size, device)
    }

    fn measure(
        &mut self,
        model: &M,
        batch_size: usize,
        device: &Device,
    ) -> Result<Measurement, Error> {
        self.measure_on(model, &*self.valid, batch_size, device)
    }

    fn measure_test(
        &mut self,
        model: &M,
        batch_size: usize,
        device: &Device,
    ) -> Result<Option<Measurement>, Error> {
        match &self.test {
            Some(test) => Ok(Some(self.measure_on(model, &**test, batch_size, device)?)),
            None => Ok(None),
        }
    }

    fn describe(&self) -> String {
        let examples = |n: usize| format!("{n} examples");
        crate::task::describe_splits(
            examples(self.train.len()),
            examples(self.valid.len()),
            self.test.as_ref().map(|t| examples(t.len())),
        )
    }

    fn fine_tune(
        &mut self,
        model: M,
        config: &TrainConfig,
        _dir: &Path,
        device: &Device,
    ) -> Result<M, Error> {
        self.train(model, config, device)
    }

    fn loss(
        &mut self,
        model: &M,
        index: usize,
        batch_size: usize,
        device: &Device,
    ) -> Result<Tensor<1>, Error> {
        let n = self.train.len().max(1);
        let indices: Vec<usize> = (0..batch_size)
            .map(|i| (index * batch_size + i) % n)
            .collect();
        let batch = self.batch(&*self.train, &indices, device)?;
        let logits = model.forward(batch.images);
        Ok(CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits, batch.targets))
    }

    fn example_input(&self, device: &Device) -> Tensor<4> {
        let batch = self
            .batch(&*self.valid, &[0], device)
            .expect("a checked validation set has a first example");
        batch.images
    }

    fn forward(&self, model: &M, input: Tensor<4>) -> Tensor<2> {
        model.forward(input)
    }
}
