//! The fine-tunings' learning rate fitted to the network before a search
//! ([`PruneConfig::calibrate_fine_tune`](crate::PruneConfig::calibrate_fine_tune)).
//!
//! A search fine-tunes every candidate and compares it with the unpruned network. When the
//! fine-tune alone knocks a converged network off its optimum by more than the tolerance (a
//! fresh Adam at a rate the network was never trained at the end of, on a network without
//! BatchNorm), every step is rolled back whatever it removed, and the search ends where it
//! started. Calibration measures that jolt on the unpruned network and lowers the rate until it
//! costs at most half the tolerance.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::prune::{Host, PrunableModel};
use crate::task::Task;
use prunus_plan::SearchConfig;

/// Rates tried at most: the configured one, then each √10 smaller (down to 1/31.6 of it).
pub const CALIBRATION_TRIES: usize = 4;

/// The share of the tolerance a fine-tune of the unpruned network may cost.
pub const CALIBRATION_SHARE: f64 = 0.5;

/// One fine-tune of the unpruned network at one learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationTrial {
    /// The fine-tune's learning rate.
    pub learning_rate: f64,
    /// The validation metric after it.
    pub metric: f64,
    /// Its drop from the unpruned network's metric, in the tolerance's unit.
    pub drop: f64,
}

/// What the calibration tried and chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Every rate tried, largest first; the search stops at the first that passes.
    pub trials: Vec<CalibrationTrial>,
    /// The rate the per-step fine-tunes use: the first trial whose drop is at most
    /// [`CALIBRATION_SHARE`] of the tolerance, else the trial with the smallest drop.
    pub learning_rate: f64,
    /// The chosen rate ÷ the configured one; the final fine-tune's rate is scaled by it too.
    pub scale: f64,
}

impl Calibration {
    /// Whether a trial passed (else the rate chosen is the least harmful one, and the search is
    /// likely to roll back its steps).
    pub fn passed(&self, tolerance: f64) -> bool {
        self.trials
            .iter()
            .any(|t| t.drop <= CALIBRATION_SHARE * tolerance)
    }
}

const FILE: &str = "calibration.json";

impl<M: PrunableModel, T: Task<M>> Host<'_, M, T> {
    /// The calibration of this run: read back from the run folder of a resumed run, else
    /// measured (and saved there). `baseline` is the unpruned network's metric.
    pub(crate) fn calibration(
        &mut self,
        baseline: f64,
        search_config: &SearchConfig,
    ) -> Result<Calibration, Error> {
        let saved = self.run.as_ref().map(|run| run.dir().join(FILE));
        if let Some(path) = &saved
            && let Ok(text) = std::fs::read_to_string(path)
        {
            return serde_json::from_str(&text).map_err(|e| Error::Io {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            });
        }
        let calibration = self.calibrate(baseline, search_config)?;
        if let Some(path) = &saved {
            let json = serde_json::to_vec_pretty(&calibration).expect("serialises");
            prunus_surgery::write_atomic(path, &json)?;
        }
        Ok(calibration)
    }

    /// Fine-tunes the unpruned network at falling rates until one costs at most
    /// [`CALIBRATION_SHARE`] of the tolerance.
    fn calibrate(
        &mut self,
        baseline: f64,
        search_config: &SearchConfig,
    ) -> Result<Calibration, Error> {
        let tune = self
            .config
            .fine_tune
            .clone()
            .or_else(|| self.config.final_fine_tune.clone())
            .ok_or_else(|| {
                Error::config(
                    "calibrate_fine_tune",
                    "there is no fine-tuning to calibrate",
                )
            })?;
        let allowed = CALIBRATION_SHARE * search_config.tolerance.value();
        let mut trials: Vec<CalibrationTrial> = Vec::new();
        for k in 0..CALIBRATION_TRIES {
            let learning_rate = tune.learning_rate / 10f64.powf(k as f64 / 2.0);
            let config = tune.clone().with_learning_rate(learning_rate);
            let original = self.original.0.clone();
            let tuned = self.tune(original, &config, "calibration", u64::MAX / 4 + k as u64)?;
            let measured = self
                .task
                .measure(&tuned, self.config.eval_batch_size, self.device)?;
            let metric = *measured.metrics.get(&search_config.metric).ok_or_else(|| {
                Error::config(
                    "metric",
                    format!("the task measured no {:?}", search_config.metric),
                )
            })?;
            let drop = search_config.drop(baseline, metric);
            if self.config.progress {
                eprintln!(
                    "calibrating the fine-tuning: learning rate {learning_rate:.2e} → {} {metric:.2} \
                     (drop {drop:.3}, allowed {allowed:.3})",
                    search_config.metric
                );
            }
            trials.push(CalibrationTrial {
                learning_rate,
                metric,
                drop,
            });
            if drop <= allowed {
                break;
            }
        }
        let chosen = trials
            .iter()
            .find(|t| t.drop <= allowed)
            .or_else(|| trials.iter().min_by(|a, b| a.drop.total_cmp(&b.drop)))
            .expect("at least one trial")
            .learning_rate;
        Ok(Calibration {
            trials,
            learning_rate: chosen,
            scale: chosen / tune.learning_rate,
        })
    }
}
