//! Gate initialisation strategies.

use burn::config::Config;
use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor};

/// How the importance weights (gates) of a gated layer start.
///
/// The method compares several initialisations because each looks at filters from another
/// side: a constant start lets training alone rank the filters, a random start breaks the
/// symmetry between filters, and [`GateInit::FilterNorm`] starts from the filters' own sizes.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use prunus_layers::GateInit;
///
/// let device = Device::flex();
/// let gates = GateInit::Constant { value: 0.5 }.init_gates(4, None, &device);
/// assert_eq!(gates.into_data().try_to_vec::<f32>().unwrap(), vec![0.5; 4]);
/// ```
#[derive(Config, Debug, PartialEq)]
pub enum GateInit {
    /// Every gate is 1: the gated layer starts exactly as the plain layer.
    Ones,
    /// Every gate is `value`.
    Constant {
        /// The value of every gate.
        value: f64,
    },
    /// Gates drawn uniformly from `[low, high)`.
    Uniform {
        /// Inclusive lower bound.
        low: f64,
        /// Exclusive upper bound.
        high: f64,
    },
    /// Gates drawn from a normal distribution.
    Normal {
        /// Mean of the distribution.
        mean: f64,
        /// Standard deviation of the distribution.
        std: f64,
    },
    /// `g_i = ‖W_i‖₁ / mean_j ‖W_j‖₁`: each filter's L1 norm relative to its layer's mean, taken
    /// from the freshly initialised weights. The gates of a layer therefore average exactly 1.
    FilterNorm,
}

// `#[derive(Default)]` would need `#[default]` on a variant, which `derive(Config)` copies onto
// its serde shadow type, where it does not compile.
#[allow(clippy::derivable_impls)]
impl Default for GateInit {
    fn default() -> Self {
        Self::Ones
    }
}

impl GateInit {
    /// Makes the gate values of a layer with `filters` output channels.
    ///
    /// `filter_l1` is the L1 norm of every filter, `[filters]`; only [`GateInit::FilterNorm`]
    /// reads it, and a layer whose filters are all zero gets gates of 1.
    ///
    /// # Panics
    /// When `filters` is 0, when a uniform range is empty or not finite, when a standard deviation
    /// is negative or not finite, or when [`GateInit::FilterNorm`] is given no norms or norms of
    /// the wrong length.
    pub fn init_gates(
        &self,
        filters: usize,
        filter_l1: Option<Tensor<1>>,
        device: &Device,
    ) -> Tensor<1> {
        assert!(filters > 0, "a gated layer needs at least one filter");
        match self {
            Self::Ones => Tensor::ones([filters], device),
            Self::Constant { value } => {
                assert!(
                    value.is_finite(),
                    "GateInit::Constant needs a finite value, got {value}"
                );
                Tensor::full([filters], *value, device)
            }
            Self::Uniform { low, high } => {
                assert!(
                    low.is_finite() && high.is_finite() && low < high,
                    "GateInit::Uniform needs finite low < high, got [{low}, {high})"
                );
                Tensor::random([filters], Distribution::Uniform(*low, *high), device)
            }
            Self::Normal { mean, std } => {
                assert!(
                    mean.is_finite() && std.is_finite() && *std >= 0.0,
                    "GateInit::Normal needs a finite mean and a finite std ≥ 0, got N({mean}, {std})"
                );
                if *std == 0.0 {
                    Tensor::full([filters], *mean, device)
                } else {
                    Tensor::random([filters], Distribution::Normal(*mean, *std), device)
                }
            }
            Self::FilterNorm => {
                let norms = filter_l1.expect("GateInit::FilterNorm needs the filters' L1 norms");
                assert_eq!(
                    norms.dims(),
                    [filters],
                    "GateInit::FilterNorm got norms for another number of filters"
                );
                let mean = norms.clone().mean().into_scalar::<f32>();
                if mean > 0.0 && mean.is_finite() {
                    norms.div_scalar(mean)
                } else {
                    Tensor::ones([filters], device)
                }
            }
        }
    }

    /// Like [`GateInit::init_gates`], wrapped as a trainable parameter.
    pub(crate) fn init_param(
        &self,
        filters: usize,
        filter_l1: Option<Tensor<1>>,
        device: &Device,
    ) -> Param<Tensor<1>> {
        Param::from_tensor(self.init_gates(filters, filter_l1, device))
    }

    /// Whether this initialisation reads the filters' norms.
    pub(crate) fn needs_filter_norms(&self) -> bool {
        matches!(self, Self::FilterNorm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn mean_std(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn ones_gives_ones() {
        let g = GateInit::Ones.init_gates(7, None, &Device::flex());
        assert_eq!(values(g), vec![1.0; 7]);
    }

    #[test]
    fn constant_gives_its_value_of_any_sign() {
        let g = GateInit::Constant { value: -0.25 }.init_gates(3, None, &Device::flex());
        assert_eq!(values(g), vec![-0.25; 3]);
    }

    #[test]
    fn uniform_stays_in_its_range_and_spreads() {
        let g = values(
            GateInit::Uniform {
                low: 0.2,
                high: 0.6,
            }
            .init_gates(4000, None, &Device::flex()),
        );
        assert!(g.iter().all(|&x| (0.2..0.6).contains(&x)));
        let (mean, std) = mean_std(&g);
        // U(0.2, 0.6): mean 0.4, std 0.4/√12 ≈ 0.1155.
        assert!((mean - 0.4).abs() < 0.01, "mean {mean}");
        assert!((std - 0.1155).abs() < 0.01, "std {std}");
    }

    #[test]
    fn normal_has_its_mean_and_std() {
        let g = values(
            GateInit::Normal {
                mean: 1.0,
                std: 0.1,
            }
            .init_gates(8000, None, &Device::flex()),
        );
        let (mean, std) = mean_std(&g);
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        assert!((std - 0.1).abs() < 0.01, "std {std}");
    }

    #[test]
    fn normal_with_zero_std_is_constant() {
        let g = GateInit::Normal {
            mean: 0.3,
            std: 0.0,
        }
        .init_gates(3, None, &Device::flex());
        assert_eq!(values(g), vec![0.3; 3]);
    }

    #[test]
    fn filter_norm_is_each_norm_over_the_layer_mean() {
        let device = Device::flex();
        let norms = Tensor::from_floats([1.0, 3.0, 2.0, 6.0], &device); // mean 3
        let g = values(GateInit::FilterNorm.init_gates(4, Some(norms), &device));
        let expected = [1.0 / 3.0, 1.0, 2.0 / 3.0, 2.0];
        for (a, b) in g.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn filter_norm_of_all_zero_filters_is_ones() {
        let device = Device::flex();
        let g = GateInit::FilterNorm.init_gates(2, Some(Tensor::zeros([2], &device)), &device);
        assert_eq!(values(g), vec![1.0; 2]);
    }

    #[test]
    fn filter_norm_of_a_conv_averages_one() {
        let device = Device::flex();
        let layer = crate::GatedConv2dConfig::new([3, 16])
            .with_gate_init(GateInit::FilterNorm)
            .init(&device);
        let g = values(layer.gate.unwrap().val());
        let (mean, std) = mean_std(&g);
        assert!((mean - 1.0).abs() < 1e-5, "mean {mean}");
        assert!(std > 0.0, "random filters have different norms");
        let norms = values(crate::filter_l1_norms(layer.conv.weight.val(), 0));
        let norm_mean = norms.iter().sum::<f32>() / 16.0;
        for (gi, ni) in g.iter().zip(&norms) {
            assert!((gi - ni / norm_mean).abs() < 1e-5);
        }
    }

    #[test]
    #[should_panic(expected = "finite low < high")]
    fn empty_uniform_range_panics_with_a_message() {
        GateInit::Uniform {
            low: 1.0,
            high: 1.0,
        }
        .init_gates(2, None, &Device::flex());
    }

    #[test]
    fn config_round_trips_through_json() {
        let init = GateInit::Normal {
            mean: 1.0,
            std: 0.5,
        };
        let json = serde_json::to_string(&init).unwrap();
        assert_eq!(serde_json::from_str::<GateInit>(&json).unwrap(), init);
    }
}
