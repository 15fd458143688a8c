//! One process at a time in a run folder: an advisory lock on `<folder>/.lock`, released when
//! the guard is dropped or the process ends (even by SIGKILL, so a killed run never leaves a
//! stale lock behind).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::Error;

/// Holds the lock of a run folder while alive.
#[derive(Debug)]
pub(crate) struct FolderLock {
    _file: File,
}

/// Takes the lock of `dir` (which must exist) without waiting.
///
/// # Errors
/// [`Error::Busy`] when another run holds it, [`Error::Io`] when the lock file cannot be made.
pub(crate) fn lock_folder(dir: &Path) -> Result<FolderLock, Error> {
    let path = dir.join(".lock");
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(FolderLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(Error::Busy {
            run_dir: dir.to_path_buf(),
        }),
        // A file system without locks (some network mounts): work unguarded rather than not at all.
        Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            Ok(FolderLock { _file: file })
        }
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_in_one_folder_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_folder(dir.path()).unwrap();
        let err = lock_folder(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Busy { .. }), "{err}");
        assert!(err.to_string().contains("another prunus run"), "{err}");
        drop(first);
        lock_folder(dir.path()).unwrap();
    }
}
