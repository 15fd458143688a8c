//! Run folders: the search's state and its last accepted network, saved after every step, so
//! that a search stopped at any point resumes where it was.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use prunus_surgery::{Prunable, prune, write_atomic};
use serde::{Deserialize, Serialize};

use crate::error::{PlanError, RunError};
use crate::search::SearchState;

/// The search state's file in a run folder.
pub const RUN_STATE: &str = "search.json";
/// The last accepted network's weights in a run folder.
pub const RUN_WEIGHTS: &str = "accepted.bpk";

/// What a run folder holds between calls.
#[derive(Debug, Serialize, Deserialize)]
struct RunState {
    fingerprint: String,
    original: u64,
    state: SearchState,
}

/// A search's run folder: where its state and last accepted network live.
///
/// The folder belongs to one search — one set of settings (`fingerprint`) and one original
/// network (`original`, e.g. `prunus_surgery::model_digest`): [`RunFolder::resume`] refuses a
/// folder made by another, so a run is never continued with the wrong model or settings.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use prunus_models::UNetConfig;
/// use prunus_plan::{RunFolder, SearchConfig, SearchState};
/// use prunus_surgery::Prunable;
///
/// let dir = std::env::temp_dir().join(format!("prunus-run-doc-{}", std::process::id()));
/// let unet = UNetConfig::standard(3, 1, 4, 2).init(&Device::flex()).unwrap();
/// let run = RunFolder::new(&dir, "settings v1", 42);
/// assert!(run.resume(&unet).unwrap().is_none()); // nothing saved yet
/// let baseline = 90.0.into();
/// let state = SearchState::start(&unet.channel_groups(), &baseline, 1000, &SearchConfig::default())
///     .unwrap();
/// run.save_state(&state).unwrap();
/// let (_, resumed) = run.resume(&unet).unwrap().unwrap();
/// assert_eq!(resumed, state);
/// assert!(RunFolder::new(&dir, "settings v2", 42).resume(&unet).is_err());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct RunFolder {
    dir: PathBuf,
    fingerprint: String,
    original: u64,
}

fn run_error(path: &Path, source: impl Into<RunError>) -> PlanError {
    PlanError::Run {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

impl RunFolder {
    /// The run folder `dir` of a search with settings `fingerprint` from the network whose
    /// digest is `original`.
    pub fn new(dir: impl Into<PathBuf>, fingerprint: impl Into<String>, original: u64) -> Self {
        Self {
            dir: dir.into(),
            fingerprint: fingerprint.into(),
            original,
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves the search state (atomically).
    ///
    /// # Errors
    /// [`PlanError::Run`] when the folder cannot be written.
    pub fn save_state(&self, state: &SearchState) -> Result<(), PlanError> {
        let run = RunState {
            fingerprint: self.fingerprint.clone(),
            original: self.original,
            state: state.clone(),
        };
        // serde_json's `float_roundtrip`: every metric reads back exactly as it was written.
        let json = serde_json::to_vec_pretty(&run).expect("the run state serialises");
        std::fs::create_dir_all(&self.dir).map_err(|e| run_error(&self.dir, e))?;
        write_atomic(&self.dir.join(RUN_STATE), &json)?;
        Ok(())
    }

    /// Saves an accepted network's weights and the state that led to it.
    ///
    /// # Errors
    /// [`PlanError::Run`] when the folder cannot be written.
    pub fn save_accepted<M: Module>(
        &self,
        model: &M,
        state: &SearchState,
    ) -> Result<(), PlanError> {
        // The weights go under the step's own name first, then the state that names the step,
        // then they take the usual name: a run killed between any two of these resumes with
        // weights that fit its state (a new network's weights with the old state did not).
        let path = self.step_weights(state.accepted());
        let mut store = BurnpackStore::from_bytes(None);
        model
            .valid()
            .save_into(&mut store)
            .map_err(|e| run_error(&path, RunError::Weights(e.to_string())))?;
        let bytes = store
            .get_bytes()
            .map_err(|e| run_error(&path, RunError::Weights(e.to_string())))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| run_error(&self.dir, e))?;
        write_atomic(&path, &bytes)?;
        self.save_state(state)?;
        let current = self.dir.join(RUN_WEIGHTS);
        std::fs::rename(&path, &current).map_err(|e| run_error(&current, e))
    }

    /// Where the weights of the network after `accepted` accepted steps wait while its state
    /// is saved (`accepted-<n>.bpk`), before they become [`RUN_WEIGHTS`].
    fn step_weights(&self, accepted: usize) -> PathBuf {
        self.dir.join(format!("accepted-{accepted}.bpk"))
    }

    /// The last accepted network and the state of a search saved in this folder, rebuilt from
    /// `original`; `None` when the folder holds no search yet.
    ///
    /// # Errors
    /// [`PlanError::Run`] when the folder was made with other settings or from another
    /// network, or its files are corrupt or do not fit.
    pub fn resume<M: Prunable>(&self, original: &M) -> Result<Option<(M, SearchState)>, PlanError> {
        let path = self.dir.join(RUN_STATE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read(&path).map_err(|e| run_error(&path, e))?;
        let run: RunState =
            serde_json::from_slice(&text).map_err(|e| run_error(&path, RunError::Corrupt(e)))?;
        if run.fingerprint != self.fingerprint {
            return Err(run_error(&self.dir, RunError::OtherSettings));
        }
        if run.original != self.original {
            return Err(run_error(&self.dir, RunError::OtherModel));
        }
        let mut current = prune(original.clone(), &run.state.plan())?;
        if run.state.accepted() > 0 {
            // Killed after the state was saved and before its weights took the usual name:
            // they are still under the step's own.
            let waiting = self.step_weights(run.state.accepted());
            let path = match waiting.is_file() {
                true => waiting,
                false => self.dir.join(RUN_WEIGHTS),
            };
            let bytes = std::fs::read(&path).map_err(|e| run_error(&path, e))?;
            let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
            let result = current
                .load_from(&mut store)
                .map_err(|e| run_error(&path, RunError::Weights(e.to_string())))?;
            if !result.errors.is_empty() || !result.missing.is_empty() {
                return Err(run_error(&path, RunError::Mismatch));
            }
        }
        Ok(Some((current, run.state)))
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::SplitMix64;

    /// A resumed search must see exactly the metrics it saved: serde_json's `float_roundtrip`
    /// parses every finite `f64` back to the same bits (its default parser may be off by one).
    #[test]
    fn every_float_reads_back_bit_for_bit() {
        let mut rng = SplitMix64::seed_from_u64(17);
        let mut checked = 0;
        while checked < 200_000 {
            let x = f64::from_bits(rng.next_u64());
            if !x.is_finite() {
                continue;
            }
            let text = serde_json::to_string(&x).unwrap();
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{text}");
            checked += 1;
        }
    }
}
