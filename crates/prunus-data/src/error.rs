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
    /// An image that cannot be decoded, or of a kind prunus does not read.
    #[error("cannot decode {format} {path}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The file's format: `TIFF` or `PNG`.
        format: &'static str,
        /// The decoder's error, or what prunus found wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
    /// An image, or a window of one, with more pixels than the reader allows (by default
    /// [`MAX_IMAGE_PIXELS`](crate::MAX_IMAGE_PIXELS)); refused from its header, before anything
    /// proportional to its size is allocated.
    #[error(
        "{path}: {width}×{height} pixels ({}) exceeds the limit of {} pixels per image",
        pixel_count(*.width as u128 * *.height as u128),
        pixel_count(*.limit as u128)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Width in pixels, as the file claims it (or the window asked for).
        width: usize,
        /// Height in pixels, as the file claims it (or the window asked for).
        height: usize,
        /// The most pixels allowed.
        limit: usize,
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

/// `n` for display: in millions ("268 M") from a million up, exact below.
fn pixel_count(n: u128) -> String {
    if n >= 1_000_000 {
        format!("{} M", n / 1_000_000)
    } else {
        n.to_string()
    }
}

/// Test support: `err` refuses a 4×4 image at `path` over a limit of 10 pixels, saying so.
#[cfg(test)]
pub(crate) fn assert_4x4_over_10(err: &DataError, path: &std::path::Path) {
    assert!(
        matches!(
            err,
            DataError::TooLarge {
                width: 4,
                height: 4,
                limit: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: 4×4 pixels (16) exceeds the limit of 10 pixels per image",
            path.display()
        )
    );
}
