//! The training loss: BCE-with-logits + weighted (1 − soft Jaccard) + λ·L1 of the gates.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, sigmoid};
use prunus_layers::{gate_l1, norm_scale_l1};

/// Weights of the loss terms.
///
/// `loss = BCE(logits, mask) + jaccard_weight · (1 − softJaccard) + gate_l1 · Σ|g| + bn_l1 · Σ|γ|`
#[derive(Config, Debug, PartialEq)]
pub struct LossConfig {
    /// Weight of `1 − soft Jaccard` (0 turns it off).
    #[config(default = 1.0)]
    pub jaccard_weight: f64,
    /// λ, the weight of the L1 norm of all gates (0 turns it off).
    #[config(default = 1e-4)]
    pub gate_l1: f64,
    /// Weight of the L1 norm of every BatchNorm scale γ (Network Slimming's penalty, the
    /// baseline; 0, the default, turns it off).
    #[config(default = 0.0)]
    pub bn_l1: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl LossConfig {
    /// Checks that every weight is finite and ≥ 0.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the bad weight.
    pub fn validate(&self) -> Result<(), crate::Error> {
        for (name, value) in [
            ("jaccard_weight", self.jaccard_weight),
            ("gate_l1", self.gate_l1),
            ("bn_l1", self.bn_l1),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(crate::Error::config(
                    name,
                    format!("a loss weight must be finite and ≥ 0, got {value}"),
                ));
            }
        }
        Ok(())
    }

    /// The task loss of `logits` against `masks` (both `[batch, 1, h, w]`), a 1-element
    /// tensor: mean binary cross-entropy with logits plus `jaccard_weight · (1 − J)`, where J is
    /// the soft Jaccard index of `sigmoid(logits)` over the whole batch.
    pub fn task_loss(&self, logits: Tensor<4>, masks: Tensor<4>) -> Tensor<1> {
        // BCE with logits, stable form: (1 − y)·x − log σ(x).
        let bce = (masks.clone().neg().add_scalar(1.0) * logits.clone()
            - log_sigmoid(logits.clone()))
        .mean();
        if self.jaccard_weight == 0.0 {
            return bce;
        }
        let p = sigmoid(logits);
        let intersection = (p.clone() * masks.clone()).sum();
        let union = p.sum() + masks.sum() - intersection.clone();
        let eps = 1.0;
        let jaccard = intersection.add_scalar(eps) / union.add_scalar(eps);
        bce + jaccard
            .neg()
            .add_scalar(1.0)
            .mul_scalar(self.jaccard_weight)
    }

    /// The whole loss: [`task_loss`](Self::task_loss) plus `gate_l1 · Σ|g|` over `model`'s gates
    /// and `bn_l1 · Σ|γ|` over its BatchNorm scales.
    pub fn loss<M: Module>(&self, model: &M, logits: Tensor<4>, masks: Tensor<4>) -> Tensor<1> {
        self.with_penalties(model, self.task_loss(logits, masks))
    }

    /// `task` plus the penalties on `model`'s parameters: `gate_l1 · Σ|g| + bn_l1 · Σ|γ|`.
    pub fn with_penalties<M: Module>(&self, model: &M, task: Tensor<1>) -> Tensor<1> {
        let mut loss = task;
        if self.gate_l1 > 0.0
            && let Some(l1) = gate_l1(model)
        {
            loss = loss + l1.mul_scalar(self.gate_l1);
        }
        if self.bn_l1 > 0.0
            && let Some(l1) = norm_scale_l1(model)
        {
            loss = loss + l1.mul_scalar(self.bn_l1);
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t4(values: Vec<f32>, device: &Device) -> Tensor<4> {
        let n = values.len();
        Tensor::from_data(TensorData::new(values, [1, 1, 1, n]), device)
    }

    #[test]
    fn bce_and_jaccard_match_hand_computation() {
        let device = Device::flex();
        let logits = vec![2.0f32, -1.0, 0.5, -3.0];
        let masks = vec![1.0f32, 0.0, 0.0, 1.0];
        let config = LossConfig::new().with_jaccard_weight(0.7);
        let got = config
            .task_loss(t4(logits.clone(), &device), t4(masks.clone(), &device))
            .into_scalar::<f64>();

        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let mut bce = 0.0;
        let (mut inter, mut psum, mut ysum) = (0.0, 0.0, 0.0);
        for (&x, &y) in logits.iter().zip(&masks) {
            let (x, y) = (x as f64, y as f64);
            let p = sig(x);
            bce += -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
            inter += p * y;
            psum += p;
            ysum += y;
        }
        bce /= 4.0;
        let jaccard = (inter + 1.0) / (psum + ysum - inter + 1.0);
        let want = bce + 0.7 * (1.0 - jaccard);
        assert!((got - want).abs() < 1e-5, "got {got}, want {want}");
    }

    #[test]
    fn the_penalties_add_the_gates_and_the_norm_scales_l1() {
        use prunus_layers::{GateInit, GatedConv2dConfig};
        let device = Device::flex();
        // Four gates at -0.5 (Σ|g| = 2) and a BatchNorm of four scales at 1 (Σ|γ| = 4).
        let layer = GatedConv2dConfig::new([3, 4])
            .with_batch_norm(true)
            .with_gate_init(GateInit::Constant { value: -0.5 })
            .init(&device);
        let task = Tensor::<1>::from_floats([1.5], &device);
        let total = |c: LossConfig| c.with_penalties(&layer, task.clone()).into_scalar::<f64>();
        let plain = LossConfig::new().with_gate_l1(0.0);
        assert!((total(plain.clone()) - 1.5).abs() < 1e-6);
        assert!((total(plain.clone().with_gate_l1(0.1)) - (1.5 + 0.2)).abs() < 1e-6);
        assert!((total(plain.with_bn_l1(0.01)) - (1.5 + 0.04)).abs() < 1e-6);
    }

    #[test]
    fn bce_is_stable_for_large_logits() {
        let device = Device::flex();
        let config = LossConfig::new().with_jaccard_weight(0.0);
        let loss = config
            .task_loss(t4(vec![80.0, -80.0], &device), t4(vec![0.0, 1.0], &device))
            .into_scalar::<f64>();
        assert!((loss - 80.0).abs() < 1e-3, "{loss}");
    }

    #[test]
    fn bad_weights_are_rejected() {
        assert!(LossConfig::new().validate().is_ok());
        let err = LossConfig::new()
            .with_gate_l1(f64::NAN)
            .validate()
            .unwrap_err();
        assert!(
            matches!(&err, crate::Error::Config { field, .. } if field == "gate_l1"),
            "{err}"
        );
        assert!(
            LossConfig::new()
                .with_jaccard_weight(-1.0)
                .validate()
                .is_err()
        );
    }
}
