//! Handwritten digits: scikit-learn's 1,797 8×8 images, bundled with the crate.

use std::path::Path;

use crate::error::DataError;

/// The bundled file (`data/digits.bin`, see its README): 1,797 records of 64 pixels and a label.
const BUNDLED: &[u8] = include_bytes!("../data/digits.bin");

/// Bytes per record: an 8×8 image (values 0–16) and its label (0–9).
const RECORD: usize = 65;

/// 8×8 greyscale images of handwritten digits with their labels: scikit-learn's `load_digits`
/// (a copy of the UCI test set), bundled, so a classifier trains and prunes with no download.
///
/// # Example
/// ```
/// use prunus_data::Digits;
///
/// let digits = Digits::bundled();
/// assert_eq!(digits.len(), 1797);
/// let [train, valid, test] = digits.split([0.6, 0.2], 0);
/// assert_eq!(train.len() + valid.len() + test.len(), 1797);
/// assert!(digits.image(0).iter().all(|&v| (0.0..=1.0).contains(&v)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digits {
    pixels: Vec<[u8; 64]>,
    labels: Vec<u8>,
}

impl Digits {
    /// The 1,797 bundled digits.
    pub fn bundled() -> Self {
        Self::parse(BUNDLED, Path::new("bundled digits.bin")).expect("the bundled file is valid")
    }

    /// Digits from a file of the bundled layout (65-byte records: 64 pixels 0–16, a label 0–9).
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read, [`DataError::Format`] when its size is
    /// not a whole number of records or a value is out of range.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes, path)
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::Format {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
            return Err(bad(format!(
                "{} bytes is not a whole number of {RECORD}-byte digit records",
                bytes.len()
            )));
        }
        let mut pixels = Vec::with_capacity(bytes.len() / RECORD);
        let mut labels = Vec::with_capacity(bytes.len() / RECORD);
        for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
            if let Some(v) = record[..64].iter().find(|&&v| v > 16) {
                return Err(bad(format!("digit {i}: pixel value {v} is above 16")));
            }
            if record[64] > 9 {
                return Err(bad(format!(
                    "digit {i}: label {} is not a digit",
                    record[64]
                )));
            }
            pixels.push(record[..64].try_into().expect("64 bytes"));
            labels.push(record[64]);
        }
        Ok(Self { pixels, labels })
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `index`, row-major, scaled to `[0, 1]`.
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn image(&self, index: usize) -> [f32; 64] {
        self.pixels[index].map(|v| v as f32 / 16.0)
    }

    /// Label `index` (0–9).
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn label(&self, index: usize) -> usize {
        self.labels[index] as usize
    }

    /// Three disjoint parts in a shuffled order (fixed by `seed`): the first two with the given
    /// shares, the third with the rest — e.g. `[0.6, 0.2]` for 60% training, 20% validation
    /// (what the pruning search sees) and 20% test (what it never sees).
    pub fn split(&self, shares: [f64; 2], seed: u64) -> [Digits; 3] {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = crate::rng::Rng::for_item(seed, 0xd161_7500);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let n = self.len() as f64;
        let first = (shares[0].clamp(0.0, 1.0) * n).round() as usize;
        let second = ((shares[1].clamp(0.0, 1.0) * n).round() as usize).min(self.len() - first);
        let part = |range: std::ops::Range<usize>| Digits {
            pixels: order[range.clone()]
                .iter()
                .map(|&i| self.pixels[i])
                .collect(),
            labels: order[range].iter().map(|&i| self.labels[i]).collect(),
        };
        [
            part(0..first),
            part(first..first + second),
            part(first + second..self.len()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_digits_are_sklearns() {
        let d = Digits::bundled();
        assert_eq!(d.len(), 1797);
        // scikit-learn's first digit is a 0; its first row is 0,0,5,13,9,1,0,0.
        assert_eq!(d.label(0), 0);
        assert_eq!(
            d.image(0)[..8],
            [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0].map(|v| v / 16.0)
        );
        let mut counts = [0usize; 10];
        (0..d.len()).for_each(|i| counts[d.label(i)] += 1);
        assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    }

    #[test]
    fn splits_are_disjoint_complete_and_reproducible() {
        let d = Digits::bundled();
        let [a, b, c] = d.split([0.6, 0.2], 7);
        assert_eq!((a.len(), b.len(), c.len()), (1078, 359, 360));
        assert_eq!(d.split([0.6, 0.2], 7), [a.clone(), b.clone(), c.clone()]);
        assert_ne!(d.split([0.6, 0.2], 8)[0], a);
        let mut all: Vec<([u8; 64], u8)> = [&a, &b, &c]
            .iter()
            .flat_map(|p| p.pixels.iter().copied().zip(p.labels.iter().copied()))
            .collect();
        let mut original: Vec<([u8; 64], u8)> = d
            .pixels
            .iter()
            .copied()
            .zip(d.labels.iter().copied())
            .collect();
        all.sort();
        original.sort();
        assert_eq!(all, original);
    }

    #[test]
    fn bad_files_are_errors_that_name_them() {
        let dir = std::env::temp_dir().join(format!("prunus-digits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let short = dir.join("short.bin");
        std::fs::write(&short, [0u8; 64]).unwrap();
        let err = Digits::open(&short).unwrap_err().to_string();
        assert!(
            err.contains("short.bin") && err.contains("whole number"),
            "{err}"
        );
        let mut record = [1u8; 65];
        record[64] = 12;
        let label = dir.join("label.bin");
        std::fs::write(&label, record).unwrap();
        let err = Digits::open(&label).unwrap_err().to_string();
        assert!(err.contains("label 12"), "{err}");
        record[64] = 3;
        record[5] = 17;
        std::fs::write(&label, record).unwrap();
        let err = Digits::open(&label).unwrap_err().to_string();
        assert!(err.contains("pixel value 17"), "{err}");
        assert!(Digits::open(&dir.join("missing.bin")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
