//! Whole images in and masks out: PNG and TIFF, chosen by the file's extension.
//!
//! [`RgbImage::open`] reads a PNG (8/16-bit grey, RGB, RGBA, palette) or a TIFF (what
//! [`Raster`] reads) into RGB in `[0, 1]`; [`write_mask`] writes a binary mask (0 / 255) as an
//! 8-bit grey PNG or TIFF, atomically (a temporary file renamed into place).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::raster::Raster;

/// An RGB image in `[0, 1]`, channels first: `data` is `[3, height, width]` flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The three planes, red then green then blue, each row-major.
    pub data: Vec<f32>,
}

/// The image formats prunus reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Tiff,
}

fn format_of(path: &Path) -> Result<Format, DataError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => Ok(Format::Png),
        Some("tif" | "tiff") => Ok(Format::Tiff),
        _ => Err(DataError::Format {
            path: path.to_path_buf(),
            reason: "the extension must be .png, .tif or .tiff".into(),
        }),
    }
}

fn png_error(path: &Path, reason: impl std::fmt::Display) -> DataError {
    DataError::Format {
        path: path.to_path_buf(),
        reason: format!("cannot decode PNG: {reason}"),
    }
}

impl RgbImage {
    /// Reads a PNG or TIFF whole. Grey images are repeated on the three channels; alpha is
    /// dropped.
    ///
    /// # Errors
    /// When the file cannot be read, its extension is not `.png`/`.tif`/`.tiff`, or it cannot be
    /// decoded; the error names the file.
    ///
    /// # Example
    /// ```
    /// use prunus_data::{RgbImage, write_mask};
    /// let dir = std::env::temp_dir().join(format!("prunus-doc-image-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("mask.png");
    /// write_mask(&path, 3, 2, &[true, false, true, false, false, true]).unwrap();
    /// let image = RgbImage::open(&path).unwrap();
    /// assert_eq!((image.width, image.height), (3, 2));
    /// assert_eq!(&image.data[..3], &[1.0, 0.0, 1.0]);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        match format_of(path)? {
            Format::Tiff => {
                let mut raster = Raster::open(path)?;
                let [height, width] = raster.size();
                let data = raster.read_window_rgb(0, 0, width, height)?;
                Ok(Self {
                    width,
                    height,
                    data,
                })
            }
            Format::Png => Self::open_png(path),
        }
    }

    fn open_png(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Aerial tiles are large (an Inria tile is 5000×5000): lift the default memory limit.
        let limits = png::Limits { bytes: 1 << 34 };
        let mut decoder = png::Decoder::new_with_limits(BufReader::new(file), limits);
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(|e| png_error(path, e))?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| png_error(path, "the image is too large"))?;
        let mut buf = vec![0u8; size];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| png_error(path, e))?;
        let (width, height) = (info.width as usize, info.height as usize);
        let channels = match info.color_type {
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Indexed => return Err(png_error(path, "unexpanded palette")),
        };
        let plane = width * height;
        let mut data = vec![0.0; 3 * plane];
        for y in 0..height {
            let row = &buf[y * info.line_size..];
            for x in 0..width {
                let px = &row[x * channels..];
                for k in 0..3 {
                    let v = if channels < 3 { px[0] } else { px[k] };
                    data[k * plane + y * width + x] = f32::from(v) / 255.0;
                }
            }
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }
}

/// Writes a binary mask (`mask` is `height × width`, row-major, `true` = foreground) as an 8-bit
/// grey PNG or TIFF (by `path`'s extension) with values 0 and 255. The file is written to a
/// temporary name beside `path` and renamed into place, so a reader never sees half a file.
///
/// # Errors
/// When the extension is not `.png`/`.tif`/`.tiff`, `mask` does not hold `width × height`
/// values, or the file cannot be written.
pub fn write_mask(
    path: impl AsRef<Path>,
    width: usize,
    height: usize,
    mask: &[bool],
) -> Result<(), DataError> {
    let pixels: Vec<u8> = mask.iter().map(|&m| if m { 255 } else { 0 }).collect();
    write_grey(path.as_ref(), width, height, &pixels)
}

/// Writes 8-bit grey or RGB pixels (`channels` 1 or 3, interleaved) as a PNG, atomically.
///
/// # Errors
/// When the buffer does not match the size or the file cannot be written.
pub fn write_png(
    path: impl AsRef<Path>,
    width: usize,
    height: usize,
    channels: usize,
    pixels: &[u8],
) -> Result<(), DataError> {
    let path = path.as_ref();
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                reason: format!("cannot write {channels} channels (1 or 3)"),
            });
        }
    };
    check_len(path, width, height, channels, pixels.len())?;
    atomic(path, |file| {
        let mut encoder = png::Encoder::new(BufWriter::new(file), width as u32, height as u32);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        writer
            .write_image_data(pixels)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

fn check_len(
    path: &Path,
    width: usize,
    height: usize,
    channels: usize,
    len: usize,
) -> Result<(), DataError> {
    if width == 0 || height == 0 || len != width * height * channels {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "{len} values do not make a {width}×{height} image of {channels} channel(s)"
            ),
        });
    }
    Ok(())
}

fn write_grey(path: &Path, width: usize, height: usize, pixels: &[u8]) -> Result<(), DataError> {
    match format_of(path)? {
        Format::Png => write_png(path, width, height, 1, pixels),
        Format::Tiff => {
            check_len(path, width, height, 1, pixels.len())?;
            atomic(path, |file| {
                let mut writer = BufWriter::new(file);
                let mut encoder = tiff::encoder::TiffEncoder::new(&mut writer)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                encoder
                    .write_image::<tiff::encoder::colortype::Gray8>(
                        width as u32,
                        height as u32,
                        pixels,
                    )
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                writer.flush()
            })
        }
    }
}

/// Writes through `write` into a temporary file beside `path`, then renames it over `path`.
fn atomic(path: &Path, write: impl FnOnce(&File) -> std::io::Result<()>) -> Result<(), DataError> {
    let io = |path: PathBuf| move |source| DataError::Io { path, source };
    let name = path
        .file_name()
        .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = File::create(&tmp)
        .and_then(|file| {
            write(&file)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "prunus-image-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn png_and_tiff_masks_read_back() {
        let d = dir();
        let mask: Vec<bool> = (0..35).map(|i| (i * 7) % 3 == 0).collect();
        for name in ["m.png", "m.tif"] {
            write_mask(d.join(name), 7, 5, &mask).unwrap();
            let image = RgbImage::open(d.join(name)).unwrap();
            assert_eq!((image.width, image.height), (7, 5));
            let back: Vec<bool> = image.data[..35].iter().map(|&v| v > 0.5).collect();
            assert_eq!(back, mask, "{name}");
            // Grey is repeated on all three channels.
            assert_eq!(image.data[..35], image.data[70..]);
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn rgb_png_keeps_channels() {
        let d = dir();
        let pixels: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 13) as u8).collect();
        write_png(d.join("c.png"), 3, 2, 3, &pixels).unwrap();
        let image = RgbImage::open(d.join("c.png")).unwrap();
        // Pixel (x=1, y=1) is the 5th pixel: bytes 12, 13, 14.
        let plane = 6;
        for k in 0..3 {
            let want = f32::from(pixels[12 + k]) / 255.0;
            assert_eq!(image.data[k * plane + 4], want);
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_file() {
        let d = dir();
        let corrupt = d.join("corrupt.png");
        std::fs::write(&corrupt, b"not a png at all").unwrap();
        let err = RgbImage::open(&corrupt).unwrap_err().to_string();
        assert!(err.contains("corrupt.png"), "{err}");
        let err = RgbImage::open(d.join("x.jpg")).unwrap_err().to_string();
        assert!(err.contains(".png"), "{err}");
        let err = RgbImage::open(d.join("missing.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.png"), "{err}");
        let err = write_mask(d.join("short.png"), 4, 4, &[true; 3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("4×4"), "{err}");
        assert!(!d.join("short.png").exists());
        std::fs::remove_dir_all(d).unwrap();
    }
}
