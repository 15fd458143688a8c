//! Whole images in and masks out: PNG and TIFF, chosen by the file's extension.
//!
//! [`RgbImage::open`] reads a PNG (8/16-bit grey, RGB, RGBA, palette) or a TIFF (what
//! [`Raster`] reads) into RGB in `[0, 1]`; [`write_mask`] writes a binary mask (0 / 255) as an
//! 8-bit grey PNG or TIFF, atomically (a temporary file renamed into place).
//!
//! Reading is bounded: an image of more than [`MAX_IMAGE_PIXELS`] pixels (as its header claims)
//! is refused with [`DataError::TooLarge`] before its pixels are allocated.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::raster::Raster;

/// The most pixels (width × height) [`RgbImage::open`] reads: 2^28 = 268 M, a 16384×16384 image.
///
/// `prunus infer` holds about 22 bytes per pixel of a whole image at once: the RGB image as `f32`
/// (12), the decoder's buffer (up to 8: four 16-bit samples), the probabilities (4) and the mask
/// (1). At 2^28 pixels that is about 6 GB, which fits a 24 GB machine alongside the model. A larger
/// claim in a file's header (often a corrupt or hostile file: a 150-byte TIFF can claim
/// 100000×100000 pixels) is refused up front instead of failing an allocation and aborting the
/// process. [`RgbImage::open_with_limit`] and [`Raster::open_with_limit`] take another limit.
pub const MAX_IMAGE_PIXELS: usize = 1 << 28;

/// Refuses a `width × height` image of no pixels, or of more than `max_pixels`.
fn check_pixels(
    path: &Path,
    width: usize,
    height: usize,
    max_pixels: usize,
) -> Result<(), DataError> {
    if width == 0 || height == 0 {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            reason: format!("the image has no pixels ({width}×{height})"),
        });
    }
    match width.checked_mul(height) {
        Some(n) if n <= max_pixels => Ok(()),
        _ => Err(DataError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            limit: max_pixels,
        }),
    }
}

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
pub(crate) enum Format {
    Png,
    Tiff,
}

/// Whether `path` names a TIFF (`.tif`/`.tiff`, any case): the format that can carry GeoTIFF
/// georeferencing.
pub fn is_tiff(path: impl AsRef<Path>) -> bool {
    matches!(format_of(path.as_ref()), Ok(Format::Tiff))
}

pub(crate) fn format_of(path: &Path) -> Result<Format, DataError> {
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

/// A PNG decoder past the header of `path`, decoding to 8 bits a sample (palettes expanded,
/// 16-bit samples reduced) within the memory `max_pixels` pixels of 16-bit RGBA take, and the
/// samples of one decoded pixel (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA).
pub(crate) fn png_reader(
    path: &Path,
    max_pixels: usize,
) -> Result<(png::Reader<BufReader<File>>, usize), DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let limits = png::Limits {
        bytes: max_pixels.saturating_mul(8),
    };
    let mut decoder = png::Decoder::new_with_limits(BufReader::new(file), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let reader = decoder.read_info().map_err(|e| png_error(path, e))?;
    let channels = match reader.output_color_type().0 {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(png_error(path, "unexpanded palette")),
    };
    Ok((reader, channels))
}

/// A PNG that cannot be decoded: the decoder's error, or what prunus found wrong.
pub(crate) fn png_error(
    path: &Path,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> DataError {
    DataError::Decode {
        path: path.to_path_buf(),
        format: "PNG",
        source: source.into(),
    }
}

impl RgbImage {
    /// Reads a PNG or TIFF whole. Grey images are repeated on the three channels; alpha is
    /// dropped.
    ///
    /// # Errors
    /// When the file cannot be read, its extension is not `.png`/`.tif`/`.tiff`, it cannot be
    /// decoded, or its header claims more than [`MAX_IMAGE_PIXELS`] pixels
    /// ([`DataError::TooLarge`], refused before the pixels are allocated); the error names the
    /// file.
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
        Self::open_with_limit(path, MAX_IMAGE_PIXELS)
    }

    /// As [`RgbImage::open`], refusing an image of more than `max_pixels` pixels (width ×
    /// height, as the file's header claims) instead of [`MAX_IMAGE_PIXELS`].
    ///
    /// # Errors
    /// As [`RgbImage::open`]; [`DataError::TooLarge`] names the file, the claimed size and
    /// `max_pixels`.
    ///
    /// # Example
    /// ```
    /// use prunus_data::{DataError, RgbImage, write_mask};
    /// let dir = std::env::temp_dir().join(format!("prunus-doc-limit-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("mask.png");
    /// write_mask(&path, 4, 4, &[true; 16]).unwrap();
    /// assert!(RgbImage::open_with_limit(&path, 16).is_ok());
    /// let err = RgbImage::open_with_limit(&path, 10).unwrap_err();
    /// assert!(matches!(err, DataError::TooLarge { width: 4, height: 4, limit: 10, .. }));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open_with_limit(path: impl AsRef<Path>, max_pixels: usize) -> Result<Self, DataError> {
        let path = path.as_ref();
        match format_of(path)? {
            Format::Tiff => {
                let mut raster = Raster::open_with_limit(path, max_pixels)?;
                let [height, width] = raster.size();
                check_pixels(path, width, height, max_pixels)?;
                let data = raster.read_window_rgb(0, 0, width, height)?;
                Ok(Self {
                    width,
                    height,
                    data,
                })
            }
            Format::Png => Self::open_png(path, max_pixels),
        }
    }

    fn open_png(path: &Path, max_pixels: usize) -> Result<Self, DataError> {
        // Aerial tiles are large (an Inria tile is 5000×5000): the memory limit is what a
        // `max_pixels` image may need.
        let (mut reader, channels) = png_reader(path, max_pixels)?;
        // The header's claim, checked before anything of its size is allocated.
        let header = reader.info();
        check_pixels(
            path,
            header.width as usize,
            header.height as usize,
            max_pixels,
        )?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| png_error(path, "the image is too large"))?;
        let mut buf = vec![0u8; size];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| png_error(path, e))?;
        let (width, height) = (info.width as usize, info.height as usize);
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
    write_grey(path.as_ref(), width, height, &mask_pixels(mask))
}

/// A mask's pixels as written: 255 for foreground, 0 for background.
pub(crate) fn mask_pixels(mask: &[bool]) -> Vec<u8> {
    mask.iter().map(|&m| if m { 255 } else { 0 }).collect()
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

pub(crate) fn check_len(
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
/// Where a file is written before it is renamed to `path`: a hidden name beside it, unique to
/// this process.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

pub(crate) fn atomic(
    path: &Path,
    write: impl FnOnce(&File) -> std::io::Result<()>,
) -> Result<(), DataError> {
    let io = |path: PathBuf| move |source| DataError::Io { path, source };
    let tmp = temporary_path(path);
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

    /// CRC-32 (ISO-HDLC, as PNG uses it), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }

    /// A 68-byte PNG whose header claims a `width × height` 8-bit RGB image: signature, IHDR,
    /// an IDAT holding an empty zlib stream, IEND; every CRC correct.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend(width.to_be_bytes());
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, adaptive filter, no interlace
        png_chunk(&mut out, b"IHDR", &ihdr);
        // zlib header, one empty stored block, Adler-32 of nothing.
        let idat = [
            0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        ];
        png_chunk(&mut out, b"IDAT", &idat);
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    fn assert_too_large(err: &DataError, name: &str, size: &str) {
        assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
        let m = err.to_string();
        assert!(m.contains(name) && m.contains(size), "{m}");
    }

    #[test]
    fn crc32_matches_png() {
        // The CRC every PNG's IEND chunk ends with.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn tiny_tiff_claiming_100000_squared_is_an_error_not_an_abort() {
        let d = dir();
        for bands in [1, 3] {
            let path = d.join(format!("huge{bands}.tif"));
            let bytes = crate::raster::tests::tiff_claiming(100_000, 100_000, bands);
            assert!(bytes.len() <= 150);
            std::fs::write(&path, bytes).unwrap();
            let err = RgbImage::open(&path).unwrap_err();
            assert_too_large(&err, &format!("huge{bands}.tif"), "100000×100000");
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: 100000×100000 pixels (10000 M) exceeds the limit of 268 M pixels per image",
                    path.display()
                )
            );
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn tiny_png_claiming_100000_squared_is_an_error_not_an_abort() {
        let d = dir();
        let path = d.join("huge.png");
        let bytes = png_claiming(100_000, 100_000);
        assert_eq!(bytes.len(), 68);
        std::fs::write(&path, bytes).unwrap();
        let err = RgbImage::open(&path).unwrap_err();
        assert_too_large(&err, "huge.png", "100000×100000");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: 100000×100000 pixels (10000 M) exceeds the limit of 268 M pixels per image",
                path.display()
            )
        );
        // A real 30000×30000 image (900 M pixels) is refused from its header the same way.
        std::fs::write(&path, png_claiming(30_000, 30_000)).unwrap();
        assert_too_large(
            &RgbImage::open(&path).unwrap_err(),
            "huge.png",
            "30000×30000",
        );
        // Just over the limit in one dimension, and a product that overflows 32 bits.
        std::fs::write(&path, png_claiming(16_385, 16_384)).unwrap();
        assert_too_large(
            &RgbImage::open(&path).unwrap_err(),
            "huge.png",
            "16385×16384",
        );
        std::fs::write(&path, png_claiming(u32::MAX >> 1, u32::MAX >> 1)).unwrap();
        assert!(RgbImage::open(&path).is_err());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn tiff_claiming_a_size_within_the_limit_but_holding_no_pixels_is_an_error() {
        let d = dir();
        // 64 M pixels: allowed, so it is decoded, and the missing strip is a decoding error.
        let path = d.join("hollow.tif");
        std::fs::write(&path, crate::raster::tests::tiff_claiming(8192, 8192, 1)).unwrap();
        let err = RgbImage::open(&path).unwrap_err();
        assert!(!matches!(err, DataError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("hollow.tif"), "{err}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn open_with_limit_refuses_a_real_image_over_the_limit() {
        let d = dir();
        let mask: Vec<bool> = (0..16).map(|i| i % 3 == 0).collect();
        for name in ["small.png", "small.tif"] {
            let path = d.join(name);
            write_mask(&path, 4, 4, &mask).unwrap();
            // A small legitimate image still opens, up to exactly the limit.
            let image = RgbImage::open(&path).unwrap();
            assert_eq!((image.width, image.height), (4, 4));
            assert_eq!(RgbImage::open_with_limit(&path, 16).unwrap(), image);
            let err = RgbImage::open_with_limit(&path, 10).unwrap_err();
            crate::error::assert_4x4_over_10(&err, &path);
        }
        std::fs::remove_dir_all(d).unwrap();
    }
}
