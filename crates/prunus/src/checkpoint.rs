//! Training checkpoints written atomically and read whole into memory.
//!
//! Burn's `FileCheckpointer` restores records backed by their file, read when a tensor is
//! first used. The run folder keeps only the last two checkpoints, and a restored optimiser
//! state waits on Burn's default device until the next step; a record still backed by a file
//! that has been deleted since then fails inside a later, unrelated computation
//! ("host access failed: No such file or directory"). Reading the file at restore time makes a
//! restored record independent of the folder.

use std::path::{Path, PathBuf};

use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError, FileCheckpointer};

/// Saves and deletes like Burn's `FileCheckpointer`; restores from the file's bytes in memory.
pub(crate) struct EagerCheckpointer {
    files: FileCheckpointer,
    directory: PathBuf,
    name: String,
}

impl EagerCheckpointer {
    /// Checkpoints named `{name}-{epoch}.bpk` in `directory`.
    pub(crate) fn new(directory: &Path, name: &str) -> Self {
        Self {
            files: FileCheckpointer::new(directory, name),
            directory: directory.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// The file holding the checkpoint of `epoch`.
    pub(crate) fn path(&self, epoch: usize) -> PathBuf {
        self.directory.join(format!("{}-{epoch}.bpk", self.name))
    }
}

impl<R: Checkpoint> Checkpointer<R> for EagerCheckpointer {
    /// Writes atomically (a temporary file, then a rename): a run killed while saving leaves
    /// the previous checkpoint and no partial file, so the next run resumes from it.
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        std::fs::create_dir_all(&self.directory).map_err(CheckpointerError::IOError)?;
        prunus_surgery::write_atomic(&self.path(epoch), &bytes).map_err(|e| match e {
            prunus_surgery::SurgeryError::Write {
                source: prunus_surgery::WriteError::Io(io),
                ..
            } => CheckpointerError::IOError(io),
            other => CheckpointerError::IOError(std::io::Error::other(other.to_string())),
        })
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        <FileCheckpointer as Checkpointer<R>>::delete(&self.files, epoch)
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let bytes = std::fs::read(self.path(epoch)).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::store::ModuleRecord;
    use burn::tensor::{Device, Distribution, Tensor};

    #[test]
    fn a_restored_record_outlives_its_file() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = EagerCheckpointer::new(dir.path(), "model");
        let saved: Linear = LinearConfig::new(5, 3).init(&device);
        checkpoints.save(1, saved.clone().into_record()).unwrap();
        let record: ModuleRecord = checkpoints.restore(1).unwrap();
        Checkpointer::<ModuleRecord>::delete(&checkpoints, 1).unwrap();
        assert!(!checkpoints.path(1).exists());

        let loaded = LinearConfig::new(5, 3).init(&device).load_record(record);
        let x = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &device);
        let (a, b) = (saved.forward(x.clone()), loaded.forward(x));
        assert_eq!(
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap()
        );
    }

    #[test]
    fn a_missing_checkpoint_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = EagerCheckpointer::new(dir.path(), "model");
        let restored: Result<ModuleRecord, _> = checkpoints.restore(7);
        assert!(restored.is_err());
    }
}
