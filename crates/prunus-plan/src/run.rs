//! Run folders: the search's state and its last accepted network, saved after every step, so
//! that a search stopped at any point resumes where it was.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use prunus_surgery::{Prunable, prune, write_atomic};
use serde::{Deserialize, Serialize};

use crate::error::PlanError;
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

fn io(path: &Path, e: impl std::fmt::Display) -> PlanError {
    PlanError::Run {
        path: path.to_path_buf(),
        reason: e.to_string(),
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
        let value = serde_json::to_value(&run).expect("the run state serialises");
        let json = serde_json::to_vec_pretty(&exact_floats(value, true)).expect("JSON");
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
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
        let path = self.dir.join(RUN_WEIGHTS);
        let mut store = BurnpackStore::from_bytes(None);
        model
            .valid()
            .save_into(&mut store)
            .map_err(|e| io(&path, format!("cannot serialise the weights: {e}")))?;
        let bytes = store
            .get_bytes()
            .map_err(|e| io(&path, format!("cannot serialise the weights: {e}")))?;
        write_atomic(&path, &bytes)?;
        self.save_state(state)
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
        let text = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let run: RunState = serde_json::from_slice(&text)
            .and_then(|v| serde_json::from_value(exact_floats(v, false)))
            .map_err(|e| io(&path, format!("not a prunus run state: {e}")))?;
        if run.fingerprint != self.fingerprint {
            return Err(io(
                &self.dir,
                "was made with other pruning settings; use another run folder",
            ));
        }
        if run.original != self.original {
            return Err(io(
                &self.dir,
                "was started from another model; use another run folder",
            ));
        }
        let mut current = prune(original.clone(), &run.state.plan())?;
        if run.state.accepted() > 0 {
            let path = self.dir.join(RUN_WEIGHTS);
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
            let result = current
                .load_from(&mut store)
                .map_err(|e| io(&path, format!("weights do not load: {e}")))?;
            if !result.errors.is_empty() || !result.missing.is_empty() {
                return Err(io(&path, "weights do not fit the accepted network"));
            }
        }
        Ok(Some((current, run.state)))
    }
}

/// serde_json's parser may be off by one bit on floats; a resumed search must see exactly the
/// metrics it saved. Floats travel as strings (`"f64:…"`, Rust's exact shortest form).
fn exact_floats(value: serde_json::Value, encode: bool) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) if encode && n.is_f64() => {
            Value::String(format!("f64:{:?}", n.as_f64().unwrap_or(f64::NAN)))
        }
        Value::String(s) if !encode && s.starts_with("f64:") => s[4..]
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(s), Value::Number),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| exact_floats(v, encode)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, exact_floats(v, encode)))
                .collect(),
        ),
        other => other,
    }
}
