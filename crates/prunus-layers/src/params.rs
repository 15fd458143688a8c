//! Finding the gates in any module: their values, their L1 penalty, and which parameters train.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

use crate::{GatedConv2d, GatedConvTranspose2d};

/// The container type Burn's `Module` derive gives struct `T` when a visitor enters it
/// (`"Struct:GatedConv2d"`), computed from the type itself: a renamed layer is still found, and
/// a change of Burn's naming fails the tests that count every network's gates.
pub fn container_type<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    // `prunus_layers::conv2d::GatedConv2d` → `GatedConv2d` (generic parameters never occur).
    let name = full.rsplit("::").next().unwrap_or(full);
    format!("Struct:{name}")
}

/// Whether a visitor's `container_type` is one of prunus's gated layers, whose `gate` field is
/// an importance weight.
pub fn is_gated_container(container_type: &str) -> bool {
    static GATED: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    GATED
        .get_or_init(|| {
            [
                self::container_type::<GatedConv2d>(),
                self::container_type::<GatedConvTranspose2d>(),
            ]
        })
        .iter()
        .any(|t| t == container_type)
}

/// Tracks the module path and tells whether the parameter being visited is a gate.
#[derive(Default)]
struct PathTracker {
    path: Vec<String>,
    in_gate: Vec<bool>,
}

impl PathTracker {
    fn enter(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.in_gate
            .push(name == "gate" && is_gated_container(container_type));
    }

    fn exit(&mut self) {
        self.path.pop();
        self.in_gate.pop();
    }

    fn is_gate(&self) -> bool {
        self.in_gate.last().copied().unwrap_or(false)
    }

    /// The dotted path of the gated layer that owns the current gate.
    fn layer_path(&self) -> String {
        self.path[..self.path.len().saturating_sub(1)].join(".")
    }
}

/// One gate parameter found in a module.
struct FoundGate {
    /// The gated layer's path (`"encoder.conv1"`).
    layer: String,
    /// The parameter's own path (`"encoder.conv1.gate"`).
    path: String,
    id: ParamId,
    value: Tensor<1>,
}

/// Visits a module and collects every gate parameter: one walk serves [`gates`],
/// [`gate_param_paths`] and [`gate_param_ids`].
#[derive(Default)]
struct GateCollector {
    tracker: PathTracker,
    found: Vec<FoundGate>,
}

impl ModuleVisitor for GateCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.tracker.is_gate() {
            let value = param.val();
            let n = value.shape().num_elements();
            self.found.push(FoundGate {
                layer: self.tracker.layer_path(),
                path: self.tracker.path.join("."),
                id: param.id,
                value: value.reshape([n]),
            });
        }
    }
}

fn find_gates<M: Module>(module: &M) -> Vec<FoundGate> {
    let mut collector = GateCollector::default();
    module.visit(&mut collector);
    collector.found
}

/// Every gate of `module` with the dotted path of the gated layer that owns it
/// (`"encoder.conv1"`), in the module's field order.
///
/// The tensors keep their autodiff graph, so a loss built from them trains the gates.
pub fn gates<M: Module>(module: &M) -> Vec<(String, Tensor<1>)> {
    find_gates(module)
        .into_iter()
        .map(|g| (g.layer, g.value))
        .collect()
}

/// The full dotted path of every gate parameter of `module` (`"encoder.conv1.gate"`), as
/// Burn's optimizers and learning-rate schedulers name parameters: use it in a
/// [`ParamGroup`](burn::module::ParamGroup) to give the gates their own learning rate.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use prunus_layers::{GatedConv2dConfig, gate_param_paths};
///
/// let layer = GatedConv2dConfig::new([3, 4]).init(&Device::flex());
/// assert_eq!(gate_param_paths(&layer), vec!["gate".to_string()]);
/// ```
pub fn gate_param_paths<M: Module>(module: &M) -> Vec<String> {
    find_gates(module).into_iter().map(|g| g.path).collect()
}

/// The id of every gate parameter of `module`: split a step's gradients into the gates' and
/// the weights' (`GradientsParams::from_params`) to give the gates their own learning rate in
/// a hand-written training loop.
pub fn gate_param_ids<M: Module>(module: &M) -> Vec<ParamId> {
    find_gates(module).into_iter().map(|g| g.id).collect()
}

/// `Σ|g|` over every gate of `module`, as a one-element tensor that back-propagates into the
/// gates. `None` when the module has no gated layer.
///
/// The training loss of the method is `task_loss + λ · gate_l1(model)`.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use prunus_layers::{GateInit, GatedConv2dConfig, gate_l1};
///
/// let device = Device::flex();
/// let layer = GatedConv2dConfig::new([3, 4])
///     .with_gate_init(GateInit::Constant { value: -0.5 })
///     .init(&device);
/// let l1 = gate_l1(&layer).unwrap().into_scalar::<f32>();
/// assert_eq!(l1, 2.0);
/// ```
pub fn gate_l1<M: Module>(module: &M) -> Option<Tensor<1>> {
    gates(module)
        .into_iter()
        .map(|(_, g)| g.abs().sum())
        .reduce(|a, b| a + b)
}

/// Collects every BatchNorm scale γ of a module.
#[derive(Default)]
struct ScaleCollector {
    in_scale: Vec<bool>,
    found: Vec<Tensor<1>>,
}

impl ModuleVisitor for ScaleCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.in_scale
            .push(name == "gamma" && container_type == "Struct:BatchNorm");
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.in_scale.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.in_scale.last().copied().unwrap_or(false) {
            let value = param.val();
            let n = value.shape().num_elements();
            self.found.push(value.reshape([n]));
        }
    }
}

/// `Σ|γ|` over the scale of every BatchNorm of `module`, as a one-element tensor that
/// back-propagates into the scales: Network Slimming's sparsity penalty (Liu et al. 2017), the
/// baseline that ranks channels by |γ| after training with it. `None` when the module has no
/// BatchNorm.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use prunus_layers::{GatedConv2dConfig, norm_scale_l1};
///
/// let device = Device::flex();
/// let layer = GatedConv2dConfig::new([3, 4]).with_batch_norm(true).init(&device);
/// assert_eq!(norm_scale_l1(&layer).unwrap().into_scalar::<f32>(), 4.0); // γ starts at 1
/// let plain = GatedConv2dConfig::new([3, 4]).with_batch_norm(false).init(&device);
/// assert!(norm_scale_l1(&plain).is_none());
/// ```
pub fn norm_scale_l1<M: Module>(module: &M) -> Option<Tensor<1>> {
    let mut collector = ScaleCollector::default();
    module.visit(&mut collector);
    collector
        .found
        .into_iter()
        .map(|g| g.abs().sum())
        .reduce(|a, b| a + b)
}

/// Which parameters of a gated network train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trainable {
    /// Weights and gates train together (joint training), BatchNorm statistics update.
    All,
    /// Only the gates train; weights are frozen and BatchNorm layers use their running
    /// statistics. This is the cheap importance estimation for an already-trained network.
    GatesOnly,
    /// Only the weights train; the gates are frozen at their current values.
    WeightsOnly,
}

struct GateGradSetter {
    tracker: PathTracker,
    gates: bool,
    others: Option<bool>,
}

impl ModuleMapper for GateGradSetter {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match (self.tracker.is_gate(), self.others) {
            (true, _) => param.set_require_grad(self.gates),
            (false, Some(require)) => param.set_require_grad(require),
            (false, None) => param,
        }
    }
}

/// Chooses which parameters of `module` require gradients.
///
/// [`Trainable::GatesOnly`] also freezes module-owned training behaviour (BatchNorm running
/// statistics); [`Trainable::All`] and [`Trainable::WeightsOnly`] turn it back on. As with any
/// Burn module, gradients flow only when the module lives on an autodiff device.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use prunus_layers::{GatedConv2dConfig, Trainable, set_trainable};
///
/// let device = Device::flex().autodiff();
/// let layer = GatedConv2dConfig::new([3, 4]).init(&device);
/// let layer = set_trainable(layer, Trainable::GatesOnly);
/// assert!(layer.gate.as_ref().unwrap().is_require_grad());
/// assert!(!layer.conv.weight.is_require_grad());
/// ```
pub fn set_trainable<M: Module>(module: M, trainable: Trainable) -> M {
    let (base, gates) = match trainable {
        Trainable::All => (module.unfreeze(), true),
        Trainable::GatesOnly => (module.freeze(), true),
        Trainable::WeightsOnly => (module.unfreeze(), false),
    };
    base.map(&mut GateGradSetter {
        tracker: PathTracker::default(),
        gates,
        others: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::random;
    use crate::{GatedConv2d, GatedConv2dConfig, GatedConvTranspose2d, GatedConvTranspose2dConfig};
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Net {
        first: GatedConv2d,
        blocks: Vec<GatedConv2d>,
        up: GatedConvTranspose2d,
    }

    fn net(device: &Device) -> Net {
        Net {
            first: GatedConv2dConfig::new([2, 3])
                .with_batch_norm(true)
                .init(device),
            blocks: vec![GatedConv2dConfig::new([3, 4]).init(device)],
            up: GatedConvTranspose2dConfig::new([4, 2]).init(device),
        }
    }

    fn loss(net: &Net, device: &Device) -> Tensor<1> {
        let x = random([2, 2, 6, 6], device);
        let y = net.up.forward(net.blocks[0].forward(net.first.forward(x)));
        y.powi_scalar(2).mean() + gate_l1(net).unwrap().mul_scalar(0.01)
    }

    #[test]
    fn gates_are_found_with_their_layer_paths() {
        let paths: Vec<String> = gates(&net(&Device::flex()))
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(paths, ["first", "blocks.0", "up"]);
    }

    #[test]
    fn gate_l1_sums_absolute_gates() {
        let device = Device::flex();
        let mut n = net(&device);
        n.up.gate = Some(Param::from_tensor(Tensor::from_floats(
            [-2.0, 0.5],
            &device,
        )));
        // 3 + 4 ones, then |−2| + 0.5.
        assert_eq!(gate_l1(&n).unwrap().into_scalar::<f32>(), 9.5);
    }

    #[test]
    fn gradients_reach_gates_and_weights() {
        let device = Device::flex().autodiff();
        let n = net(&device);
        let grads = loss(&n, &device).backward();
        assert!(n.first.gate.as_ref().unwrap().grad(&grads).is_some());
        assert!(n.up.gate.as_ref().unwrap().grad(&grads).is_some());
        assert!(n.first.conv.weight.grad(&grads).is_some());
        assert!(n.blocks[0].conv.weight.grad(&grads).is_some());
    }

    #[test]
    fn gates_only_freezes_weights_and_batch_norm() {
        let device = Device::flex().autodiff();
        let n = set_trainable(net(&device), Trainable::GatesOnly);
        let grads = loss(&n, &device).backward();
        assert!(n.first.gate.as_ref().unwrap().grad(&grads).is_some());
        assert!(n.blocks[0].gate.as_ref().unwrap().grad(&grads).is_some());
        assert!(n.first.conv.weight.grad(&grads).is_none());
        assert!(n.up.conv.weight.grad(&grads).is_none());
        let norm = n.first.norm.as_ref().unwrap();
        assert!(norm.gamma.grad(&grads).is_none());
        // BatchNorm uses running statistics, so they do not move.
        let before = norm.running_mean.value().into_data();
        let _ = loss(&n, &device);
        before.assert_eq(&norm.running_mean.value().into_data(), true);
    }

    #[test]
    fn weights_only_freezes_the_gates() {
        let device = Device::flex().autodiff();
        let n = set_trainable(net(&device), Trainable::WeightsOnly);
        let grads = loss(&n, &device).backward();
        assert!(n.first.gate.as_ref().unwrap().grad(&grads).is_none());
        assert!(n.up.gate.as_ref().unwrap().grad(&grads).is_none());
        assert!(n.first.conv.weight.grad(&grads).is_some());
    }

    #[test]
    fn all_undoes_gates_only() {
        let device = Device::flex().autodiff();
        let n = set_trainable(
            set_trainable(net(&device), Trainable::GatesOnly),
            Trainable::All,
        );
        let grads = loss(&n, &device).backward();
        assert!(n.first.gate.as_ref().unwrap().grad(&grads).is_some());
        assert!(n.first.conv.weight.grad(&grads).is_some());
    }
}
