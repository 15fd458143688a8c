//! Errors of this crate.

use std::path::PathBuf;

/// What can go wrong when reading data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder that cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A TIFF that cannot be decoded, or of a kind prunus does not read.
    #[error("cannot decode TIFF {path}: {reason}")]
    Tiff {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image file of a format prunus does not read or write, or that cannot be decoded.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A window that does not lie inside its image.
    #[error(
        "{path}: a {width}×{height} window at ({x}, {y}) does not fit in the {image_width}×{image_height} image"
    )]
    Window {
        /// The file.
        path: PathBuf,
        /// Left column of the window.
        x: usize,
        /// Top row of the window.
        y: usize,
        /// Window width.
        width: usize,
        /// Window height.
        height: usize,
        /// Image width.
        image_width: usize,
        /// Image height.
        image_height: usize,
    },
    /// A sample index past the end of a dataset.
    #[error("sample {index} is out of range: the dataset has {len} samples")]
    Index {
        /// The index asked for.
        index: usize,
        /// Number of samples.
        len: usize,
    },
}
