//! The tolerance search on a real (tiny) U-Net with a metric given by formula: the drop bound,
//! roll-back, targets, resume and bad settings.

use burn::tensor::Device;
use prunus_models::{Costed, UNet, UNetConfig};
use prunus_plan::{
    Constraint, Criterion, Evaluation, PlanError, Scores, SearchConfig, SearchHost, SearchState,
    StopReason, Targets, Tolerance, score, search,
};
use prunus_surgery::{Prunable, prune};

/// Metric = 100 − 40·(share of channels removed)²: smooth, falls faster the more is removed.
struct FormulaHost {
    total: usize,
    evaluations: usize,
    accepted: Vec<SearchState>,
    /// Fail after this many accepted steps (an interruption).
    fail_after: Option<usize>,
    /// Half-width of the interval of the main metric's change, when it gives one.
    interval: Option<f64>,
}

impl FormulaHost {
    fn new(model: &UNet) -> Self {
        Self {
            total: channels(model),
            evaluations: 0,
            accepted: Vec::new(),
            fail_after: None,
            interval: None,
        }
    }
}

fn channels(model: &UNet) -> usize {
    model.channel_groups().iter().map(|g| g.size).sum()
}

#[derive(Debug)]
struct HostError(String);

impl From<PlanError> for HostError {
    fn from(e: PlanError) -> Self {
        HostError(e.to_string())
    }
}

impl SearchHost<UNet> for FormulaHost {
    type Error = HostError;

    fn evaluate(&mut self, model: &UNet) -> Result<Evaluation, HostError> {
        self.evaluations += 1;
        let removed = 1.0 - channels(model) as f64 / self.total as f64;
        let mut e = Evaluation::new([
            ("metric", 100.0 - 40.0 * removed * removed),
            ("steep", 100.0 - 400.0 * removed * removed),
        ]);
        if let Some(w) = self.interval {
            let change = -40.0 * removed * removed;
            e.changes.insert("metric".into(), [change - w, change + w]);
        }
        Ok(e)
    }

    fn scores(&mut self, model: &UNet, step: usize) -> Result<Scores, HostError> {
        if self.fail_after.is_some_and(|n| self.accepted.len() >= n) {
            return Err(HostError("interrupted".into()));
        }
        Ok(score(model, Criterion::Random { seed: 7 }, step as u64)?)
    }

    fn flops(&mut self, model: &UNet) -> Result<u64, HostError> {
        Ok(model.cost([32, 32]).unwrap().flops())
    }

    fn accepted(&mut self, _model: &UNet, state: &SearchState) -> Result<(), HostError> {
        self.accepted.push(state.clone());
        Ok(())
    }
}

fn unet() -> UNet {
    UNetConfig::standard(3, 1, 8, 2)
        .init(&Device::flex())
        .unwrap()
}

fn start(model: &UNet, host: &mut FormulaHost, config: &SearchConfig) -> SearchState {
    let baseline = host.evaluate(model).unwrap();
    let flops = host.flops(model).unwrap();
    SearchState::start(&model.channel_groups(), &baseline, flops, config).unwrap()
}

#[test]
fn drop_stays_within_tolerance_and_rollbacks_are_recorded() {
    let model = unet();
    let mut host = FormulaHost::new(&model);
    let config = SearchConfig {
        tolerance: Tolerance::Points(0.5),
        initial_step: 0.5,
        ..SearchConfig::default()
    };
    let state = start(&model, &mut host, &config);
    let (pruned, state) = search(model.clone(), state, &mut host, &config).unwrap();

    // 40·r² ≤ 0.5 ⇒ r ≤ 0.1118: the search must end inside that and reasonably close to it.
    let removed = 1.0 - channels(&pruned) as f64 / host.total as f64;
    assert!(removed <= 0.1118 + 1e-9, "removed {removed}");
    assert!(removed > 0.08, "the search stopped too early: {removed}");
    assert!(state.baseline - state.metric <= 0.5);
    assert!(
        state.steps.iter().any(|s| !s.accepted),
        "a 50% step must roll back"
    );
    for s in &state.steps {
        assert_eq!(s.accepted, s.drop <= 0.5, "{s:?}");
    }
    assert_eq!(state.stopped, Some(StopReason::StepTooSmall));
    assert_eq!(state.evaluations, host.evaluations);
    // The kept lists describe the returned network.
    let rebuilt = prune(model, &state.plan()).unwrap();
    let widths = |m: &UNet| {
        m.channel_groups()
            .iter()
            .map(|g| g.size)
            .collect::<Vec<_>>()
    };
    assert_eq!(widths(&rebuilt), widths(&pruned));
}

#[test]
fn rate_target_stops_where_asked() {
    let model = unet();
    let mut host = FormulaHost::new(&model);
    let config = SearchConfig {
        tolerance: Tolerance::Points(100.0),
        initial_step: 0.5,
        targets: Targets {
            rate: Some(0.3),
            flops: None,
        },
        ..SearchConfig::default()
    };
    let state = start(&model, &mut host, &config);
    let (pruned, state) = search(model, state, &mut host, &config).unwrap();
    assert_eq!(state.stopped, Some(StopReason::RateReached));
    let removed = host.total - channels(&pruned);
    let goal = (0.3 * host.total as f64).ceil() as usize;
    assert_eq!(removed, goal, "removed {removed} of {}", host.total);
}

#[test]
fn flops_target_stops_where_asked() {
    let model = unet();
    let mut host = FormulaHost::new(&model);
    let config = SearchConfig {
        tolerance: Tolerance::Points(100.0),
        initial_step: 0.5,
        targets: Targets {
            rate: None,
            flops: Some(0.4),
        },
        ..SearchConfig::default()
    };
    let state = start(&model, &mut host, &config);
    let before = host.flops(&model).unwrap() as f64;
    let (pruned, state) = search(model, state, &mut host, &config).unwrap();
    assert_eq!(state.stopped, Some(StopReason::FlopsReached));
    let cut = 1.0 - host.flops(&pruned).unwrap() as f64 / before;
    assert!((0.4..0.5).contains(&cut), "FLOPs cut {cut}");
}

#[test]
fn budget_limits_validation_passes() {
    let model = unet();
    let mut host = FormulaHost::new(&model);
    let config = SearchConfig {
        max_evaluations: Some(4),
        ..SearchConfig::default()
    };
    let state = start(&model, &mut host, &config);
    let (_, state) = search(model, state, &mut host, &config).unwrap();
    assert_eq!(state.stopped, Some(StopReason::Budget));
    assert_eq!(state.evaluations, 4);
    assert_eq!(host.evaluations, 4);
}

#[test]
fn resuming_from_an_accepted_step_ends_like_an_uninterrupted_run() {
    let model = unet();
    let config = SearchConfig {
        tolerance: Tolerance::Points(2.0),
        initial_step: 0.25,
        ..SearchConfig::default()
    };
    let mut host = FormulaHost::new(&model);
    let state = start(&model, &mut host, &config);
    let (whole, whole_state) = search(model.clone(), state.clone(), &mut host, &config).unwrap();
    assert!(whole_state.accepted() >= 3);

    let mut interrupted = FormulaHost::new(&model);
    interrupted.fail_after = Some(2);
    assert!(search(model.clone(), state, &mut interrupted, &config).is_err());
    let saved = interrupted.accepted.last().unwrap().clone();
    assert_eq!(saved.accepted(), 2);

    let current = prune(model, &saved.plan()).unwrap();
    let mut resumed_host = FormulaHost::new(&current);
    resumed_host.total = interrupted.total;
    let (resumed, resumed_state) = search(current, saved, &mut resumed_host, &config).unwrap();
    assert_eq!(resumed_state, whole_state);
    assert_eq!(channels(&resumed), channels(&whole));
}

#[test]
fn invalid_settings_are_errors() {
    let model = unet();
    let cases = [
        SearchConfig {
            tolerance: Tolerance::Points(-0.1),
            ..SearchConfig::default()
        },
        SearchConfig {
            tolerance: Tolerance::Points(f64::NAN),
            ..SearchConfig::default()
        },
        SearchConfig {
            tolerance: Tolerance::Relative(f64::INFINITY),
            ..SearchConfig::default()
        },
        SearchConfig {
            initial_step: 0.0,
            ..SearchConfig::default()
        },
        SearchConfig {
            initial_step: 1.5,
            ..SearchConfig::default()
        },
        SearchConfig {
            max_evaluations: Some(1),
            ..SearchConfig::default()
        },
    ];
    for config in cases {
        let mut host = FormulaHost::new(&model);
        let state = SearchState::start(
            &model.channel_groups(),
            &100.0.into(),
            1,
            &SearchConfig::default(),
        )
        .unwrap();
        let err = search(model.clone(), state, &mut host, &config).unwrap_err();
        assert!(err.0.contains("invalid pruning configuration"), "{}", err.0);
    }
}

#[test]
fn criteria_score_every_channel() {
    let model = unet();
    let groups = model.channel_groups();
    for criterion in [
        Criterion::Gate,
        Criterion::GateNorm,
        Criterion::L1,
        Criterion::L2,
        Criterion::BatchNormGamma,
        Criterion::Random { seed: 1 },
    ] {
        let scores = score(&model, criterion, 0).unwrap();
        scores.check(&groups).unwrap();
    }
    // Gates start at 1 (GateInit::Ones) and γ at 1: every gate score is 1.
    let gates = score(&model, Criterion::Gate, 0).unwrap();
    assert!(gates.iter().all(|(_, s)| s.iter().all(|&v| v == 1.0)));
    // L2 by hand for the first group's producer.
    let mut m = model.clone();
    let first = &groups[0];
    let w = match m.layer_mut(&first.producers[0]).unwrap() {
        prunus_surgery::LayerMut::Gated(l) => l.conv.weight.val(),
        _ => unreachable!(),
    };
    let [o, i, k, _] = w.dims();
    let w = w.into_data().try_to_vec::<f32>().unwrap();
    let l2 = score(&model, Criterion::L2, 0).unwrap();
    for c in 0..o {
        let want: f32 = w[c * i * k * k..(c + 1) * i * k * k]
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt();
        let got = l2.get(&first.name).unwrap()[c];
        assert!((got - want).abs() < 1e-5 * want.max(1.0), "{got} vs {want}");
    }
    // Random scores differ between steps and are reproducible.
    let r = |step| score(&model, Criterion::Random { seed: 3 }, step).unwrap();
    assert_eq!(r(1), r(1));
    assert_ne!(r(1), r(2));
    // Taylor needs gradients.
    assert!(score(&model, Criterion::Taylor, 0).is_err());
}

#[test]
fn gate_norm_reads_the_filter_norm_where_no_batch_norm_carries_the_scale() {
    // Gates at 1: a producer with a BatchNorm scores |g·γ| = 1, one without (the transposed
    // convolutions) ‖W_f‖₂ over its layer's mean, the same for every filter of one norm.
    let model = unet();
    let gate_norm = score(&model, Criterion::GateNorm, 0).unwrap();
    let l2 = score(&model, Criterion::L2, 0).unwrap();
    let (mut with_norm, mut without) = (0, 0);
    for group in model.channel_groups() {
        let mut m = model.clone();
        let has_norm = match m.layer_mut(&group.producers[0]).unwrap() {
            prunus_surgery::LayerMut::Gated(l) => l.norm.is_some(),
            prunus_surgery::LayerMut::GatedTranspose(l) => l.norm.is_some(),
            _ => unreachable!("U-Net's producers are gated"),
        };
        let got = gate_norm.get(&group.name).unwrap();
        if has_norm {
            with_norm += 1;
            assert!(got.iter().all(|&v| v == 1.0), "{}", group.name);
        } else {
            without += 1;
            let norms = l2.get(&group.name).unwrap();
            let mean = norms.iter().sum::<f32>() / norms.len() as f32;
            for (g, n) in got.iter().zip(norms) {
                assert!(
                    (g - n / mean).abs() < 1e-5,
                    "{}: {g} vs {}",
                    group.name,
                    n / mean
                );
            }
        }
    }
    assert!(with_norm > 0 && without > 0, "{with_norm} {without}");
    assert!(gate_norm.shared_scale());
}

/// Accepts or rolls back steps as scripted (metric 100 or 0 against a baseline of 100), then
/// rolls back everything.
struct ScriptHost {
    verdicts: std::collections::VecDeque<bool>,
    calls: usize,
}

impl SearchHost<UNet> for ScriptHost {
    type Error = HostError;

    fn evaluate(&mut self, _model: &UNet) -> Result<Evaluation, HostError> {
        self.calls += 1;
        if self.calls == 1 {
            return Ok(100.0.into());
        }
        Ok(if self.verdicts.pop_front().unwrap_or(false) {
            100.0
        } else {
            0.0
        }
        .into())
    }

    fn scores(&mut self, model: &UNet, step: usize) -> Result<Scores, HostError> {
        Ok(score(model, Criterion::Random { seed: 3 }, step as u64)?)
    }

    fn flops(&mut self, model: &UNet) -> Result<u64, HostError> {
        Ok(model.cost([32, 32]).unwrap().flops())
    }
}

fn fractions(grow_after: Option<usize>) -> Vec<(f64, bool)> {
    let model = unet();
    let mut host = ScriptHost {
        verdicts: [true, false, true, true, true, true].into(),
        calls: 0,
    };
    let config = SearchConfig {
        grow_after,
        ..SearchConfig::default()
    };
    let baseline = host.evaluate(&model).unwrap();
    let flops = host.flops(&model).unwrap();
    let state = SearchState::start(&model.channel_groups(), &baseline, flops, &config).unwrap();
    let (_, state) = search(model, state, &mut host, &config).unwrap();
    state
        .steps
        .iter()
        .map(|s| (s.fraction, s.accepted))
        .collect()
}

#[test]
fn the_step_grows_again_after_accepted_steps_in_a_row() {
    let steps = fractions(Some(2));
    // accept 0.5, roll back 0.5 (→ 0.25), accept 0.25 twice (→ 0.5 again), accept 0.5 twice.
    let want = [
        (0.5, true),
        (0.5, false),
        (0.25, true),
        (0.25, true),
        (0.5, true),
        (0.5, true),
    ];
    assert_eq!(&steps[..6], &want, "{steps:?}");
    // Without growth the halved step stays halved.
    let steps = fractions(None);
    assert_eq!(
        &steps[..6],
        &[
            (0.5, true),
            (0.5, false),
            (0.25, true),
            (0.25, true),
            (0.25, true),
            (0.25, true)
        ],
        "{steps:?}"
    );
}

#[test]
fn a_step_that_never_grows_after_zero_steps_is_refused() {
    let config = SearchConfig {
        grow_after: Some(0),
        ..SearchConfig::default()
    };
    let message = config.validate().unwrap_err().to_string();
    assert!(message.contains("grow"), "{message}");
}

/// Runs the formula host's search with `config` (interval half-width `interval`) to the end.
fn run_formula(config: &SearchConfig, interval: Option<f64>) -> (UNet, SearchState) {
    let model = unet();
    let mut host = FormulaHost::new(&model);
    host.interval = interval;
    let state = start(&model, &mut host, config);
    search(model, state, &mut host, config).unwrap()
}

#[test]
fn every_constrained_metric_stays_within_its_tolerance() {
    let alone = SearchConfig {
        tolerance: Tolerance::Points(2.0),
        ..SearchConfig::default()
    };
    let both = SearchConfig {
        also: vec![Constraint {
            metric: "steep".into(),
            tolerance: Tolerance::Points(2.0),
            higher_is_better: true,
        }],
        ..alone.clone()
    };
    let (_, one) = run_formula(&alone, None);
    let (_, two) = run_formula(&both, None);
    // Every step records both metrics; the kept ones are within both tolerances.
    for s in &two.steps {
        let steep = 100.0 - s.metrics["steep"];
        assert_eq!(s.accepted, s.drop <= 2.0 && steep <= 2.0, "{s:?}");
        assert_eq!(s.violated.contains(&"steep".to_string()), steep > 2.0);
    }
    assert!(two.steps.iter().any(|s| s.violated == ["steep"]));
    assert_eq!(two.baseline_metrics["steep"], 100.0);
    // The steeper metric binds first: less is removed than under the main tolerance alone.
    let left = |s: &SearchState| s.kept.values().map(Vec::len).sum::<usize>();
    assert!(left(&two) > left(&one), "{} vs {}", left(&two), left(&one));
}

#[test]
fn the_conservative_search_keeps_the_upper_end_of_the_interval_within_the_tolerance() {
    let config = SearchConfig {
        tolerance: Tolerance::Points(2.0),
        ..SearchConfig::default()
    };
    let (_, plain) = run_formula(&config, Some(0.5));
    let conservative = SearchConfig {
        conservative: true,
        ..config
    };
    let (_, careful) = run_formula(&conservative, Some(0.5));
    for s in &careful.steps {
        let [low, high] = s.drop_interval.expect("the host gives intervals");
        assert!((low - (s.drop - 0.5)).abs() < 1e-9 && (high - (s.drop + 0.5)).abs() < 1e-9);
        assert_eq!(s.accepted, high <= 2.0, "{s:?}");
    }
    // The plain search keeps steps whose interval reaches past the tolerance.
    assert!(
        plain
            .steps
            .iter()
            .any(|s| s.accepted && s.drop_interval.unwrap()[1] > 2.0)
    );
    assert!(100.0 - careful.metric <= 1.5 + 1e-9);
}

#[test]
fn a_constraint_on_a_metric_the_host_does_not_measure_is_an_error() {
    let config = SearchConfig {
        metric: "IoU".into(),
        ..SearchConfig::default()
    };
    let model = unet();
    let mut host = FormulaHost::new(&model);
    let baseline = host.evaluate(&model).unwrap();
    let err = SearchState::start(&model.channel_groups(), &baseline, 1, &config).unwrap_err();
    assert!(err.to_string().contains("IoU"), "{err}");
    let twice = SearchConfig {
        also: vec![Constraint {
            metric: "metric".into(),
            tolerance: Tolerance::Points(1.0),
            higher_is_better: true,
        }],
        ..SearchConfig::default()
    };
    assert!(twice.validate().unwrap_err().to_string().contains("two"));
}

#[test]
fn drop_intervals_follow_the_metric_direction_and_unit() {
    let points = Tolerance::Points(1.0);
    // Higher is better: a change of [-3, +1] is a drop of [-1, 3].
    assert_eq!(
        points.worsening_interval(80.0, [-3.0, 1.0], true),
        [-1.0, 3.0]
    );
    // Lower is better (an error): the same change is a worsening of [-3, 1].
    assert_eq!(
        points.worsening_interval(20.0, [-3.0, 1.0], false),
        [-3.0, 1.0]
    );
    let relative = Tolerance::Relative(0.1);
    assert_eq!(
        relative.worsening_interval(50.0, [-5.0, 0.0], true),
        [0.0, 0.1]
    );
}

#[test]
fn taylor_scores_are_the_squared_gate_times_its_gradient_averaged_over_batches() {
    use burn::optim::GradientsParams;
    use prunus_plan::TaylorScores;
    let device = Device::flex().autodiff();
    let model = UNetConfig::standard(3, 1, 4, 2).init(&device).unwrap();
    let mut taylor = TaylorScores::new();
    let mut by_hand: Vec<Vec<f32>> = Vec::new();
    let group = model.channel_groups()[0].clone();
    for batch in 0..2 {
        device.seed(batch);
        let x = burn::tensor::Tensor::<4>::random(
            [2, 3, 16, 16],
            burn::tensor::Distribution::Default,
            &device,
        );
        let loss = model.forward(x).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        taylor.add(&model, &grads).unwrap();
        // The first group's producer, read directly: its gate and the gate's gradient.
        let mut m = model.clone();
        let layer = m.layer_mut(&group.producers[0]).unwrap();
        let gate = layer.gate().unwrap();
        let g: Vec<f32> = gate.val().inner().into_data().try_to_vec().unwrap();
        let d: Vec<f32> = grads
            .get::<1>(gate.id)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        by_hand.push(g.iter().zip(&d).map(|(g, d)| (g * d) * (g * d)).collect());
    }
    let got = taylor.scores();
    let got = got.get(&group.name).unwrap();
    for (c, value) in got.iter().enumerate() {
        let want = (by_hand[0][c] + by_hand[1][c]) / 2.0;
        assert!(
            (value - want).abs() <= 1e-6 * want.abs().max(1e-12) + 1e-12,
            "channel {c}: {value} vs {want}"
        );
    }
    assert!(got.iter().any(|&v| v > 0.0));
    assert_eq!(taylor.batches(), 2);
}
