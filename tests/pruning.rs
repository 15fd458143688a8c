//! `prune_to_tolerance()` on a tiny trained U-Net: the drop bound, roll-back, targets, resume,
//! run files, criteria, fine-tuning and bad settings.

use std::sync::OnceLock;

use burn::tensor::Device;
use prunus::data::{Metric, SyntheticConfig};
use prunus::models::{UNet, UNetConfig};
use prunus::plan::{Constraint, Criterion, StopReason, Tolerance};
use prunus::surgery::{ModelFile, Network, Prunable};
use prunus::{
    Error, PruneConfig, SegmentationData, SegmentationTask, TrainConfig, TrainDisplay, evaluate,
    prune_to_tolerance, prune_to_tolerance_with, train,
};

fn data() -> (SegmentationData, SegmentationData) {
    // 128 px: smaller synthetic tiles hold few buildings.
    let scenes = SyntheticConfig::new().with_size(128);
    (
        SegmentationData::synthetic(scenes.clone(), 0, 64),
        SegmentationData::synthetic(scenes.with_seed(1), 0, 12),
    )
}

/// A small U-Net trained for a few epochs, shared by the tests.
fn trained() -> UNet {
    static MODEL: OnceLock<UNet> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let device = Device::flex();
            let (train_data, valid_data) = data();
            // Every other test waits on this lock, so nothing else draws from the generator.
            device.seed(11);
            let net = UNetConfig::standard(3, 1, 8, 2).init(&device).unwrap();
            let run = tempfile::tempdir().unwrap();
            let config = TrainConfig::new()
                .with_epochs(4)
                .with_batch_size(8)
                .with_learning_rate(5e-3)
                .with_display(TrainDisplay::Quiet);
            train(net, &train_data, &valid_data, run.path(), &config, &device)
                .unwrap()
                .model
        })
        .clone()
}

fn task(train: &SegmentationData, valid: &SegmentationData) -> SegmentationTask {
    SegmentationTask::new(train.clone(), valid.clone())
}

fn config() -> PruneConfig {
    PruneConfig::new()
        .with_progress(false)
        .with_latency_runs(1)
        .with_eval_batch_size(12)
}

fn channels(model: &UNet) -> usize {
    model.channel_groups().iter().map(|g| g.size).sum()
}

#[test]
fn the_drop_stays_within_the_tolerance_and_every_step_is_reported() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    // IoU: a network pruned to nothing predicts background and loses all of it, so a zero
    // tolerance must roll back.
    let config = config().with_tolerance(0.0).with_fold(false);
    let mut task = SegmentationTask::new(train_data, valid_data.clone()).with_metric(Metric::Iou);
    let outcome = prune_to_tolerance(trained(), &mut task, &config, &device).unwrap();
    let report = &outcome.report;
    assert!(report.drop <= 0.0, "{}", report.summary());
    // The reported metric is the network's, on the search's data.
    let measured = 100.0
        * evaluate(&outcome.model, &valid_data, 12, &device)
            .unwrap()
            .metric(Metric::Iou);
    assert_eq!(measured, report.final_metric);
    assert!(report.baseline - measured <= 0.0);

    // The step halves at every roll-back and doubles (up to 0.5) after two acceptances in a row.
    let (mut fraction, mut streak) = (0.5, 0);
    for step in &report.steps {
        assert_eq!(step.fraction, fraction);
        assert_eq!(step.accepted, step.drop <= 0.0, "{step:?}");
        if step.accepted {
            streak += 1;
            if streak % 2 == 0 {
                fraction = f64::min(fraction * 2.0, 0.5);
            }
        } else {
            streak = 0;
            fraction /= 2.0;
        }
    }
    // Whether a step rolls back depends on the trained network; the search's roll-back is
    // tested deterministically in prunus-plan (tests/search.rs). Here: it is reported.
    eprintln!("{}", report.summary());
    assert_eq!(report.evaluations, 1 + report.steps.len());
    assert!(matches!(
        report.stop,
        Some(StopReason::StepTooSmall | StopReason::NothingRemovable)
    ));
    // Widths and FLOPs match the network.
    let after: usize = report.widths.iter().map(|w| w.after).sum();
    assert_eq!(after, channels(&outcome.model));
    assert!(report.flops_after <= report.flops_before);
    assert!(report.latency_ms_before > 0.0 && report.latency_ms_after > 0.0);
}

#[test]
fn rate_and_flops_targets_stop_where_asked() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let total = channels(&trained());

    let rate = config().with_tolerance(100.0).with_target_rate(Some(0.25));
    let outcome = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &rate,
        &device,
    )
    .unwrap();
    assert_eq!(outcome.report.stop, Some(StopReason::RateReached));
    assert_eq!(
        total - channels(&outcome.model),
        (0.25 * total as f64).ceil() as usize
    );

    let flops = config().with_tolerance(100.0).with_target_flops(Some(0.5));
    let outcome = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &flops,
        &device,
    )
    .unwrap();
    assert_eq!(outcome.report.stop, Some(StopReason::FlopsReached));
    let cut = outcome.report.flops_cut();
    assert!((0.5..0.6).contains(&cut), "FLOPs cut {cut}");
}

#[test]
fn an_interrupted_run_resumes_to_the_same_result() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let whole_dir = tempfile::tempdir().unwrap();
    let split_dir = tempfile::tempdir().unwrap();
    let base = config().with_tolerance(3.0).with_initial_step(0.3);

    let whole_config = base
        .clone()
        .with_run_dir(Some(whole_dir.path().to_path_buf()));
    let whole = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &whole_config,
        &device,
    )
    .unwrap();
    let accepted = whole.report.steps.iter().filter(|s| s.accepted).count();
    assert!(accepted >= 2, "{}", whole.report.summary());

    let split_config = base.with_run_dir(Some(split_dir.path().to_path_buf()));
    let mut seen = 0;
    let mut stop_after_first = |step: &prunus::plan::StepRecord, _: &prunus::plan::SearchState| {
        seen += step.accepted as usize;
        seen < 1
    };
    let err = prune_to_tolerance_with(
        trained(),
        &mut task(&train_data, &valid_data),
        &split_config,
        &device,
        &mut stop_after_first,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("resume"), "{err}");

    let resumed = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &split_config,
        &device,
    )
    .unwrap();
    assert_eq!(resumed.report.steps, whole.report.steps);
    assert_eq!(resumed.report.widths, whole.report.widths);
    assert_eq!(resumed.report.final_metric, whole.report.final_metric);
    assert_eq!(resumed.report.evaluations, whole.report.evaluations);

    // The run folder: a model file per accepted step, the report, the result.
    let n = whole.report.steps.iter().position(|s| s.accepted).unwrap() + 1;
    let first = ModelFile::<Network>::load(
        whole_dir.path().join(format!("step-{n:03}.prunus")),
        &device,
    );
    assert!(first.is_ok(), "{:?}", first.err());
    let report: prunus::Report =
        serde_json::from_slice(&std::fs::read(whole_dir.path().join("report.json")).unwrap())
            .unwrap();
    // JSON keeps every float to within an ulp.
    assert_eq!(report.steps.len(), whole.report.steps.len());
    for (read, kept) in report.steps.iter().zip(&whole.report.steps) {
        assert_eq!(
            (read.removed, read.accepted, read.flops),
            (kept.removed, kept.accepted, kept.flops)
        );
        assert!((read.metric - kept.metric).abs() < 1e-9);
    }
    let pruned =
        ModelFile::<Network>::load(whole_dir.path().join("pruned.prunus"), &device).unwrap();
    let kept = &pruned.header.provenance.kept;
    for width in &whole.report.widths {
        assert_eq!(
            kept.get(&width.group).map_or(width.before, Vec::len),
            width.after
        );
    }

    // Another model or other settings in the same folder are refused.
    let other = config()
        .with_tolerance(1.0)
        .with_run_dir(Some(whole_dir.path().to_path_buf()));
    let err = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &other,
        &device,
    )
    .unwrap_err();
    let messages = prunus::error_messages(&err).join(": ");
    assert!(messages.contains("other pruning settings"), "{messages}");
}

#[test]
fn every_criterion_prunes() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    for criterion in [
        Criterion::Gate,
        Criterion::L1,
        Criterion::L2,
        Criterion::BatchNormGamma,
        Criterion::Taylor,
        Criterion::Random { seed: 5 },
    ] {
        let settings = config()
            .with_criterion(criterion)
            .with_tolerance(100.0)
            .with_max_evaluations(Some(3));
        let outcome = prune_to_tolerance(
            trained(),
            &mut task(&train_data, &valid_data),
            &settings,
            &device,
        )
        .unwrap();
        assert!(outcome.report.flops_cut() > 0.0, "{criterion:?}");
        assert_eq!(outcome.report.evaluations, 3);
    }
}

#[test]
fn fine_tuning_runs_between_steps_and_at_the_end() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let tune = TrainConfig::new()
        .with_epochs(1)
        .with_batch_size(8)
        .with_learning_rate(1e-3);
    let config = config()
        .with_tolerance(5.0)
        .with_max_evaluations(Some(3))
        .with_fine_tune(Some(tune.clone()))
        .with_final_fine_tune(Some(tune));
    let outcome = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &config,
        &device,
    )
    .unwrap();
    let report = &outcome.report;
    let (metric, kept) = report.final_fine_tune.unwrap();
    assert_eq!(report.evaluations, 4);
    assert_eq!(kept, report.baseline - metric <= 5.0);
    assert!(report.drop <= 5.0);
}

/// A fine-tune at a rate that wrecks the network is measured on the unpruned network and the
/// rate lowered by √10 steps until one costs at most half the tolerance; a resumed run reads
/// the calibration back instead of measuring it again.
#[test]
fn a_wrecking_fine_tune_rate_is_calibrated_down() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let run = tempfile::tempdir().unwrap();
    let wrecking = 0.09;
    let tune = TrainConfig::new()
        .with_epochs(1)
        .with_batch_size(8)
        .with_learning_rate(wrecking);
    let tolerance = 2.0;
    let config = config()
        .with_tolerance(tolerance)
        .with_max_evaluations(Some(3))
        .with_fine_tune(Some(tune.clone()))
        .with_final_fine_tune(Some(tune))
        .with_calibrate_fine_tune(true)
        .with_run_dir(Some(run.path().to_path_buf()));
    let outcome = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &config,
        &device,
    )
    .unwrap();
    let report = &outcome.report;
    assert!(
        report.baseline > 10.0,
        "the network learnt: {}",
        report.summary()
    );
    let c = report.calibration.as_ref().expect("calibrated");
    let allowed = 0.5 * tolerance;
    // Adam at 0.09 (0.9 for the gates) throws the network far off.
    assert_eq!(c.trials[0].learning_rate, wrecking);
    assert!(c.trials[0].drop > allowed, "{c:?}");
    assert!(c.trials.len() >= 2 && c.trials.len() <= prunus::CALIBRATION_TRIES);
    for (k, t) in c.trials.iter().enumerate() {
        let rate = wrecking / 10f64.powf(k as f64 / 2.0);
        assert!((t.learning_rate - rate).abs() < 1e-12 * rate, "{c:?}");
        assert!(
            (t.drop - (report.baseline - t.metric)).abs() < 1e-9,
            "{c:?}"
        );
        // Only the last trial may pass: the calibration stops at the first that does.
        assert!(k + 1 == c.trials.len() || t.drop > allowed, "{c:?}");
    }
    let least = c
        .trials
        .iter()
        .min_by(|a, b| a.drop.total_cmp(&b.drop))
        .unwrap();
    let chosen = c.trials.iter().find(|t| t.drop <= allowed).unwrap_or(least);
    assert_eq!(c.learning_rate, chosen.learning_rate);
    assert!((c.scale - c.learning_rate / wrecking).abs() < 1e-12);
    assert_eq!(
        c.passed(tolerance),
        c.trials.iter().any(|t| t.drop <= allowed)
    );
    assert!(
        report.summary().contains("fine-tuning calibrated"),
        "{}",
        report.summary()
    );
    assert!(report.drop <= tolerance);

    // Resumed: the saved calibration is read back, not measured again.
    let saved = run.path().join("calibration.json");
    let written = std::fs::metadata(&saved).unwrap().modified().unwrap();
    let again = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &config,
        &device,
    )
    .unwrap();
    assert_eq!(again.report.calibration.as_ref(), Some(c));
    assert_eq!(
        std::fs::metadata(&saved).unwrap().modified().unwrap(),
        written
    );

    // Nothing to calibrate is a configuration error.
    let err = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &self::config().with_calibrate_fine_tune(true),
        &device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("calibrate_fine_tune"), "{err}");
}

#[test]
fn relative_tolerance_is_a_share_of_the_baseline() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let config = config().with_tolerance(0.01).with_relative(true);
    let outcome = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &config,
        &device,
    )
    .unwrap();
    let r = &outcome.report;
    assert_eq!(r.tolerance, Tolerance::Relative(0.01));
    assert!((r.baseline - r.final_metric) / r.baseline <= 0.01);
}

#[test]
fn invalid_settings_are_errors() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let bad = [
        (config().with_tolerance(-0.5), "tolerance"),
        (config().with_tolerance(f64::NAN), "tolerance"),
        (config().with_initial_step(0.0), "step"),
        (config().with_initial_step(1.01), "step"),
        (config().with_target_rate(Some(1.5)), "rate"),
        (config().with_confidence(1.0), "confidence"),
    ];
    for (settings, word) in bad {
        let err = prune_to_tolerance(
            trained(),
            &mut task(&train_data, &valid_data),
            &settings,
            &device,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(err.to_string().contains(word), "{err}");
    }
    let err = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data.take(0)),
        &config(),
        &device,
    )
    .unwrap_err();
    assert!(matches!(err, Error::EmptyData("validation")), "{err}");
}

#[test]
fn every_metric_is_reported_and_the_test_split_is_measured_apart() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let test_data =
        SegmentationData::synthetic(SyntheticConfig::new().with_size(128).with_seed(2), 0, 12);
    let config = config()
        .with_tolerance(3.0)
        .with_also(vec![Constraint {
            metric: "pixel accuracy".into(),
            tolerance: Tolerance::Points(0.2),
            higher_is_better: true,
        }])
        .with_bootstrap(200)
        .with_seed(5)
        .with_fold(false);
    let mut task = task(&train_data, &valid_data).with_test(test_data.clone());
    let outcome = prune_to_tolerance(trained(), &mut task, &config, &device).unwrap();
    let r = &outcome.report;
    let names: Vec<String> = Metric::ALL.iter().map(|m| m.to_string()).collect();
    // IoU is the segmentation task's default metric; all five are measured before and after.
    assert_eq!(r.metric, "IoU");
    assert_eq!(r.metrics_before.keys().count(), 5);
    assert_eq!(r.metrics_before["IoU"], r.baseline);
    assert_eq!(r.metrics_after["IoU"], r.final_metric);
    // The test figures are the networks' own on the test scenes, counted independently.
    let test = r.test.as_ref().expect("the task has a test split");
    for (model, figures) in [(&trained(), &test.before), (&outcome.model, &test.after)] {
        let c = evaluate(model, &test_data, 5, &device).unwrap();
        for (m, name) in Metric::ALL.iter().zip(&names) {
            assert_eq!(figures[name], 100.0 * c.metric(*m), "{name}");
        }
    }
    assert_eq!(test.changes.len(), 5);
    // Every step records every metric and an interval; a kept step holds both tolerances.
    for s in &r.steps {
        assert_eq!(s.metrics.len(), 5, "{s:?}");
        let [lo, hi] = s.drop_interval.expect("segmentation gives intervals");
        assert!(lo <= hi);
        let accuracy_drop = r.metrics_before["pixel accuracy"] - s.metrics["pixel accuracy"];
        assert_eq!(s.accepted, s.drop <= 3.0 && accuracy_drop <= 0.2, "{s:?}");
        assert_eq!(
            s.violated.contains(&"pixel accuracy".to_string()),
            accuracy_drop > 0.2
        );
    }
    // Provenance.
    assert_eq!(r.seed, 5);
    assert!(r.data.contains("test: 12 synthetic"), "{}", r.data);
    assert!(r.prunus.starts_with("prunus "));
    let summary = r.summary();
    assert!(
        summary.contains("test (never seen by the search)"),
        "{summary}"
    );
}

#[test]
fn the_conservative_search_keeps_each_interval_within_the_tolerance() {
    let device = Device::flex();
    let (train_data, valid_data) = data();
    let config = config()
        .with_tolerance(4.0)
        .with_conservative(true)
        .with_bootstrap(300)
        .with_fold(false);
    let outcome = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &config,
        &device,
    )
    .unwrap();
    let r = &outcome.report;
    for s in &r.steps {
        let [_, hi] = s.drop_interval.unwrap();
        assert_eq!(s.accepted, s.drop.max(hi) <= 4.0, "{s:?}");
    }
    if let Some([_, hi]) = r.drop_interval {
        assert!(hi <= 4.0);
    }
    // Without intervals there is nothing to be conservative about.
    let bad = config.with_bootstrap(0);
    let err = prune_to_tolerance(
        trained(),
        &mut task(&train_data, &valid_data),
        &bad,
        &device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("bootstrap"), "{err}");
}
