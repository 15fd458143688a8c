//! A user's own network and data through `prune_to_tolerance`: a ResNet on the bundled digits,
//! classification as the task, run folders that resume; top-1 accuracy by hand.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use prunus::data::Digits;
use prunus::layers::{ChannelGroup, Prunable};
use prunus::plan::{SearchState, StepRecord};
use prunus::surgery::{ModelFile, Rebuild};
use prunus::{
    ClassificationBatch, ClassificationModel, ClassificationTask, Error, LossConfig, PrunableModel,
    PruneConfig, Task, TrainConfig, TrainDisplay, prune_to_tolerance, prune_to_tolerance_with,
};

#[path = "../examples/common/resnet.rs"]
#[allow(dead_code)]
mod resnet;

fn digits() -> ClassificationTask<resnet::DigitItem> {
    let [train, valid, _] = Digits::bundled().split([0.3, 0.1], 3);
    ClassificationTask::new(
        resnet::dataset(&train),
        resnet::dataset(&valid),
        resnet::DigitBatcher,
    )
}

/// Wide enough, with a strong enough gate penalty, to have channels it can lose: at widths
/// 8 and 16 with the default penalty and a tolerance of 3 points, one search in 15 accepted no
/// step (the lowest-gated single channel cost 3.3–4.4 points of 180 validation digits); here
/// 60 searches of 60 accepted their first step at 18 or 36 channels removed (2026-12-08).
fn trained(task: &ClassificationTask<resnet::DigitItem>, device: &Device) -> resnet::ResNet {
    let model = resnet::ResNet::new(1, &[16, 32], 10, device);
    let config = TrainConfig::new()
        .with_epochs(10)
        .with_batch_size(32)
        .with_learning_rate(3e-3)
        .with_loss(LossConfig::new().with_gate_l1(1e-3))
        .with_display(TrainDisplay::Quiet);
    task.train(model, &config, device).unwrap()
}

const TOLERANCE: f64 = 5.0;

fn config() -> PruneConfig {
    PruneConfig::new()
        .with_tolerance(TOLERANCE)
        .with_progress(false)
        .with_latency_runs(1)
        .with_eval_batch_size(64)
}

#[test]
fn a_user_resnet_is_pruned_within_the_tolerance_and_its_run_resumes() {
    let device = Device::flex();
    let mut task = digits();
    let model = trained(&task, &device);
    let baseline = task
        .accuracy(
            &model,
            &resnet::dataset(&Digits::bundled().split([0.3, 0.1], 3)[1]),
            64,
            &device,
        )
        .unwrap();
    assert!(baseline > 50.0, "the ResNet did not learn: {baseline}%");

    let whole_dir = tempfile::tempdir().unwrap();
    let whole = prune_to_tolerance(
        model.clone(),
        &mut task,
        &config().with_run_dir(Some(whole_dir.path().to_path_buf())),
        &device,
    )
    .unwrap();
    let report = &whole.report;
    assert_eq!(report.metric, "top-1 accuracy");
    assert_eq!(report.baseline, baseline);
    assert!(report.drop <= TOLERANCE, "{}", report.summary());
    assert!(
        report.flops_after < report.flops_before,
        "{}",
        report.summary()
    );
    assert!(report.params_after < report.params_before);
    assert_eq!(report.input_shape, [1, 1, 8, 8]);
    // The reported metric is the pruned network's, and its cost is counted from its layers,
    // head included.
    let valid = resnet::dataset(&Digits::bundled().split([0.3, 0.1], 3)[1]);
    assert_eq!(
        task.accuracy(&whole.model, &valid, 64, &device).unwrap(),
        report.final_metric
    );
    let cost = task.cost(&whole.model, &device);
    assert_eq!(cost.flops(), report.flops_after);
    assert!(cost.layer("head").is_some());
    // The residual stream of stage 2 kept one width in every layer that writes or reads it.
    let stage2 = report
        .widths
        .iter()
        .find(|w| w.group == "blocks.2.shortcut")
        .unwrap();
    assert_eq!(
        whole
            .model
            .channel_groups()
            .iter()
            .find(|g| g.name == stage2.group)
            .unwrap()
            .size,
        stage2.after
    );

    // The pruned network is a self-describing file that rebuilds it with nothing else.
    let file: ModelFile<resnet::ResNet> =
        ModelFile::load(whole_dir.path().join("pruned.prunus"), &device).unwrap();
    assert_eq!(file.network.architecture(), whole.model.architecture());
    assert_eq!(file.header.provenance.original, model.architecture());
    assert_eq!(
        file.header.provenance.original_cost.macs * 2,
        report.flops_before
    );
    assert_eq!(file.header.provenance.input_size, [8, 8]);
    assert!(!file.header.provenance.kept.is_empty());
    // And every accepted step is one too.
    let steps = std::fs::read_dir(whole_dir.path())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|name| name.starts_with("step-") && name.ends_with(".prunus"))
        .count();
    let accepted = report.steps.iter().filter(|s| s.accepted).count();
    assert!(accepted >= 1);
    assert_eq!(steps, accepted);
    let x = Tensor::<4>::random([4, 1, 8, 8], Distribution::Default, &device);
    let diff = (file.network.forward(x.clone()) - whole.model.forward(x))
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(diff <= 1e-5, "the loaded network differs by {diff}");

    // Stopped after its first accepted step, then called again: the same result.
    let split_dir = tempfile::tempdir().unwrap();
    let split_config = config().with_run_dir(Some(split_dir.path().to_path_buf()));
    let mut stop = |step: &StepRecord, _: &SearchState| !step.accepted;
    let err = prune_to_tolerance_with(model.clone(), &mut task, &split_config, &device, &mut stop)
        .unwrap_err();
    assert!(matches!(err, Error::Interrupted { .. }), "{err}");
    let resumed = prune_to_tolerance(model, &mut task, &split_config, &device).unwrap();
    assert_eq!(resumed.report.steps, report.steps);
    assert_eq!(resumed.report.widths, report.widths);
    assert_eq!(resumed.report.final_metric, report.final_metric);
}

/// Logits = the first ten pixels: predicts the brightest of them.
#[derive(Module, Debug)]
struct FirstTen {
    fc: Linear,
}

impl ClassificationModel for FirstTen {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.fc.forward(images.flatten(1, 3))
    }
}

#[derive(Debug, Clone)]
struct Item(Vec<f32>, i64);

struct ItemBatcher;

impl Batcher<Item, ClassificationBatch> for ItemBatcher {
    fn batch(&self, items: Vec<Item>, device: &Device) -> ClassificationBatch {
        let n = items.len();
        let pixels: Vec<f32> = items.iter().flat_map(|i| i.0.clone()).collect();
        let labels: Vec<i64> = items.iter().map(|i| i.1).collect();
        ClassificationBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, 1, 4, 4]), device),
            targets: Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

#[test]
fn top1_accuracy_counts_the_argmax_against_the_label() {
    let device = Device::flex();
    let mut identity = vec![0.0f32; 16 * 10];
    for i in 0..10 {
        identity[i * 10 + i] = 1.0;
    }
    let model = FirstTen {
        fc: Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(identity, [16, 10]),
                &device,
            )),
            bias: None,
        },
    };
    let item = |hot: usize, label: i64| {
        let mut p = vec![0.1f32; 16];
        p[hot] = 0.9;
        Item(p, label)
    };
    // Right, right, wrong, right, wrong: 3 of 5.
    let items = vec![item(3, 3), item(0, 0), item(7, 2), item(9, 9), item(5, 4)];
    let task = ClassificationTask::new(
        InMemDataset::new(items.clone()),
        InMemDataset::new(items.clone()),
        ItemBatcher,
    );
    let accuracy = task
        .accuracy(&model, &InMemDataset::new(items), 2, &device)
        .unwrap();
    assert_eq!(accuracy, 60.0);
    assert_eq!(Task::<FirstTen>::metric_name(&task), "top-1 accuracy");
}

/// A network whose groups leave out a consumer: the search refuses it before it starts.
#[derive(Module, Debug)]
struct Undeclared {
    net: resnet::ResNet,
}

impl Prunable for Undeclared {
    fn channel_groups(&self) -> Vec<ChannelGroup> {
        let mut groups = self.net.channel_groups();
        let stem = groups.iter_mut().find(|g| g.name == "stem").unwrap();
        stem.consumers.remove(0); // blocks.0.conv1 reads the stem too
        groups
    }

    fn layer_mut(&mut self, path: &str) -> Option<prunus::layers::LayerMut<'_>> {
        self.net.layer_mut(path)
    }
}

impl PrunableModel for Undeclared {}

impl ClassificationModel for Undeclared {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.net.forward(images)
    }
}

#[test]
fn a_wrong_declaration_is_refused_before_the_search() {
    let device = Device::flex();
    let model = Undeclared {
        net: resnet::ResNet::new(1, &[4, 8], 10, &device),
    };
    let err = prune_to_tolerance(model, &mut digits(), &config(), &device).unwrap_err();
    assert!(err.to_string().contains("channel group `stem`"), "{err}");
}
