//! Reading an image a band of rows at a time, so that segmenting it never holds it whole.
//!
//! A TIFF/GeoTIFF is read through [`Raster`]: only the strips or tiles a band touches are
//! decoded. A PNG is decoded row by row from the top, keeping only the rows of the current band
//! (an interlaced PNG cannot be read that way and is decoded whole). Memory for a band of `rows`
//! rows is about `width × rows × 12` bytes (RGB as `f32`), plus the file's strips or tiles that
//! the band touches.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::image::{Format, MAX_IMAGE_PIXELS, RgbImage, format_of, png_error, png_reader};
use crate::raster::Raster;

/// The most pixels an image read band by band may have: 2^32 (65536×65536). Memory does not grow
/// with the image, but a header claiming more is far more often corrupt or hostile than real.
pub const MAX_STREAMED_PIXELS: usize = 1 << 32;

/// An image whose rows are read band by band: `[3, rows, width]` RGB in `[0, 1]`, grey repeated on
/// the three channels, alpha dropped (as [`RgbImage::open`] reads it).
///
/// # Example
/// ```
/// use prunus_data::{ImageReader, write_mask};
/// let dir = std::env::temp_dir().join(format!("prunus-doc-bands-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("mask.tif");
/// write_mask(&path, 3, 4, &[true, false, true, false, false, true, true, true, true, false, false, false]).unwrap();
/// let mut image = ImageReader::open(&path).unwrap();
/// assert_eq!(image.size(), [4, 3]);
/// // Rows 1 and 2, red plane first.
/// let band = image.read_rows(1, 2).unwrap();
/// assert_eq!(&band[..6], &[0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct ImageReader {
    path: PathBuf,
    width: usize,
    height: usize,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Tiff(Box<Raster>),
    Png(Box<PngRows>),
    Whole(RgbImage),
}

impl ImageReader {
    /// Opens a PNG or TIFF (by its extension) and reads its size, not its pixels.
    ///
    /// # Errors
    /// When the file cannot be read, its extension is not `.png`/`.tif`/`.tiff`, its header
    /// cannot be decoded, or it claims more than [`MAX_STREAMED_PIXELS`] pixels
    /// ([`DataError::TooLarge`]); the error names the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref().to_path_buf();
        let source = match format_of(&path)? {
            Format::Tiff => Source::Tiff(Box::new(Raster::open(&path)?)),
            Format::Png => match PngRows::open(&path)? {
                Some(rows) => Source::Png(rows),
                None => Source::Whole(RgbImage::open(&path)?),
            },
        };
        let [height, width] = match &source {
            Source::Tiff(raster) => raster.size(),
            Source::Png(rows) => [rows.height, rows.width],
            Source::Whole(image) => [image.height, image.width],
        };
        if width == 0 || height == 0 {
            return Err(DataError::Format {
                path,
                reason: format!("the image has no pixels ({width}×{height})"),
            });
        }
        if width
            .checked_mul(height)
            .is_none_or(|n| n > MAX_STREAMED_PIXELS)
        {
            return Err(DataError::TooLarge {
                path,
                width,
                height,
                limit: MAX_STREAMED_PIXELS,
            });
        }
        Ok(Self {
            path,
            width,
            height,
            source,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `[height, width]` in pixels.
    pub fn size(&self) -> [usize; 2] {
        [self.height, self.width]
    }

    /// Rows `y .. y + rows`, whole width, as `[3, rows, width]` RGB in `[0, 1]`. Bands are read
    /// fastest from the top down (a PNG is re-read from its start when a band begins above the
    /// previous one).
    ///
    /// # Errors
    /// When the rows are not inside the image, the band would hold more than
    /// [`MAX_IMAGE_PIXELS`] pixels, or the file cannot be decoded.
    pub fn read_rows(&mut self, y: usize, rows: usize) -> Result<Vec<f32>, DataError> {
        let (width, height) = (self.width, self.height);
        if rows == 0 || y.checked_add(rows).is_none_or(|end| end > height) {
            return Err(DataError::Window {
                path: self.path.clone(),
                x: 0,
                y,
                width,
                height: rows,
                image_width: width,
                image_height: height,
            });
        }
        match &mut self.source {
            Source::Tiff(raster) => raster.read_window_rgb(0, y, width, rows),
            Source::Png(png) => png.read_rows(y, rows),
            Source::Whole(image) => {
                let plane = width * height;
                let band = width * rows;
                let mut out = Vec::with_capacity(3 * band);
                for k in 0..3 {
                    let start = k * plane + y * width;
                    out.extend_from_slice(&image.data[start..start + band]);
                }
                Ok(out)
            }
        }
    }
}

/// A non-interlaced PNG decoded row by row from the top, keeping only the rows still needed.
struct PngRows {
    path: PathBuf,
    reader: png::Reader<BufReader<File>>,
    width: usize,
    height: usize,
    channels: usize,
    /// The next row the decoder gives.
    next: usize,
    /// Decoded rows `next - kept.len() .. next`, RGB interleaved as `f32` in `[0, 1]`.
    kept: VecDeque<Vec<f32>>,
}

impl std::fmt::Debug for PngRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PngRows")
            .field("path", &self.path)
            .field("next", &self.next)
            .finish()
    }
}

impl PngRows {
    /// The PNG ready to be read from its first row; `None` when it is interlaced.
    fn open(path: &Path) -> Result<Option<Box<Self>>, DataError> {
        // A row of the widest image prunus reads fits the memory limit.
        let (reader, channels) = png_reader(path, MAX_IMAGE_PIXELS)?;
        if reader.info().interlaced {
            return Ok(None);
        }
        let info = reader.info();
        Ok(Some(Box::new(Self {
            path: path.to_path_buf(),
            width: info.width as usize,
            height: info.height as usize,
            channels,
            reader,
            next: 0,
            kept: VecDeque::new(),
        })))
    }

    fn read_rows(&mut self, y: usize, rows: usize) -> Result<Vec<f32>, DataError> {
        if y + self.kept.len() < self.next {
            // Rows above the kept ones: start again from the top.
            let Some(again) = Self::open(&self.path)? else {
                return Err(png_error(&self.path, "the file changed while it was read"));
            };
            *self = *again;
        }
        while self.next < y + rows {
            let row = self
                .reader
                .next_row()
                .map_err(|e| png_error(&self.path, e))?
                .ok_or_else(|| png_error(&self.path, format!("ends at row {}", self.next)))?;
            let data = row.data();
            if data.len() < self.width * self.channels {
                return Err(png_error(&self.path, format!("row {} is short", self.next)));
            }
            let c = self.channels;
            let rgb = (0..self.width * 3)
                .map(|i| {
                    let (x, k) = (i / 3, i % 3);
                    let v = if c < 3 { data[x * c] } else { data[x * c + k] };
                    f32::from(v) / 255.0
                })
                .collect();
            self.kept.push_back(rgb);
            self.next += 1;
        }
        // Forget the rows above the band: bands only move down.
        while self.next - self.kept.len() < y {
            self.kept.pop_front();
        }
        let w = self.width;
        let mut out = vec![0.0; 3 * rows * w];
        for (r, row) in self.kept.iter().take(rows).enumerate() {
            for x in 0..w {
                for k in 0..3 {
                    out[(k * rows + r) * w + x] = row[x * 3 + k];
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb_png(path: &Path, width: usize, height: usize) -> Vec<u8> {
        let pixels = crate::raster::tests::varied_rgb(width, height);
        let file = File::create(path).unwrap();
        let mut encoder = png::Encoder::new(file, width as u32, height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
        writer.finish().unwrap();
        pixels
    }

    /// Bands, in any order and overlapping, equal the same rows of the whole image, for a PNG
    /// read row by row and a TIFF in strips.
    #[test]
    fn bands_equal_the_rows_of_the_whole_image() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (37, 29);
        let png_path = dir.path().join("rgb.png");
        rgb_png(&png_path, w, h);
        let tif = dir.path().join("rgb.tif");
        crate::raster::tests::rgb_tiff(&tif, w, h, 4);
        for path in [&png_path, &tif] {
            let whole = RgbImage::open(path).unwrap();
            let mut reader = ImageReader::open(path).unwrap();
            assert_eq!(reader.size(), [h, w]);
            for (y, rows) in [(0, 8), (5, 8), (13, 16), (28, 1), (2, 3), (0, 29)] {
                let band = reader.read_rows(y, rows).unwrap();
                for k in 0..3 {
                    let start = k * w * h + y * w;
                    assert_eq!(
                        &band[k * w * rows..(k + 1) * w * rows],
                        &whole.data[start..start + w * rows],
                        "{} rows {y}+{rows} channel {k}",
                        path.display()
                    );
                }
            }
            let err = reader.read_rows(20, 10).unwrap_err();
            assert!(matches!(err, DataError::Window { .. }), "{err}");
        }
        assert!(matches!(
            ImageReader::open(&png_path).unwrap().source,
            Source::Png(_)
        ));
    }

    /// An interlaced PNG is decoded whole. (png 0.18 writes no interlaced PNGs: a 1×1 image has
    /// the same data interlaced or not, so its header's interlace byte is set by hand.)
    #[test]
    fn an_interlaced_png_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adam7.png");
        let pixels = rgb_png(&path, 1, 1);
        let mut bytes = std::fs::read(&path).unwrap();
        // Signature (8), IHDR length and type (8), then width, height, depth, colour,
        // compression, filter, interlace; the chunk's CRC covers type and data.
        bytes[8 + 8 + 12] = 1;
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = ImageReader::open(&path).unwrap();
        assert!(matches!(reader.source, Source::Whole(_)));
        let expected: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        assert_eq!(reader.read_rows(0, 1).unwrap(), expected);
    }

    #[test]
    fn a_truncated_png_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.png");
        rgb_png(&path, 64, 64);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let mut reader = ImageReader::open(&path).unwrap();
        let err = reader.read_rows(0, 64).unwrap_err();
        assert!(err.to_string().contains("cut.png"), "{err}");
    }
}
