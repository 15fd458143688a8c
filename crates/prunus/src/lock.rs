//! One process at a time in a folder: an advisory lock on a file in it (`.lock` for run
//! folders), released when the guard is dropped or the process ends (even by SIGKILL, so a
//! killed run never leaves a stale lock behind).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::Error;

/// Holds the lock of a folder while alive.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

/// Takes the lock of a run folder `dir` (which must exist) without waiting: its `.lock` file.
///
/// # Errors
/// As [`lock_folder_with`].
pub(crate) fn lock_folder(dir: &Path) -> Result<FolderLock, Error> {
    lock_folder_with(dir, ".lock")
}

/// Takes the lock `name` (a file in `dir`, which must exist) without waiting, so that one
/// process at a time works in the folder; released when the guard is dropped or the process
/// ends, however it ends. On a file system without locks it works unguarded.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let held = prunus::lock_folder_with(dir.path(), ".masks.lock")?;
/// assert!(prunus::lock_folder_with(dir.path(), ".masks.lock").is_err());
/// drop(held);
/// prunus::lock_folder_with(dir.path(), ".masks.lock")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Busy`] when another process holds it, [`Error::Io`] when the lock file cannot be
/// made.
pub fn lock_folder_with(dir: &Path, name: &str) -> Result<FolderLock, Error> {
    let path = dir.join(name);
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
