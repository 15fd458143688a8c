//! Windowed TIFF/GeoTIFF reading: only the strips or tiles a window touches are decoded.
//!
//! Aerial tiles are large (Inria's are 5000×5000, AIRS's larger); decoding a whole file for each
//! 256×256 training crop would dominate training time. [`Raster::read_window`] decodes just the
//! chunks (strips or tiles) that overlap the window. 8- and 16-bit grey, RGB and RGBA images,
//! stored in strips or tiles, uncompressed, LZW or Deflate, are read.
//!
//! Memory is bounded by what the file's header claims, checked before allocating: a window holds
//! at most [`MAX_IMAGE_PIXELS`] pixels (or the limit given to [`Raster::open_with_limit`]), and the
//! decoder refuses a chunk larger than a whole image of that many pixels could need. A tiny file
//! claiming enormous dimensions is an error, not an allocation failure.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use tiff::ColorType;
use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};

use crate::error::DataError;
use crate::image::MAX_IMAGE_PIXELS;

/// The most bytes a pixel takes in a decoded chunk: 4 samples (RGBA) of 16 bits.
const MAX_BYTES_PER_PIXEL: usize = 8;

/// Decoder limits for images of at most `max_pixels` pixels: a chunk (strip or tile), decoded or
/// compressed, may be as large as a whole such image stored in one strip, and never less than the
/// `tiff` crate's defaults (256 MiB decoded, 128 MiB compressed, 1 MiB IFD values), so a small limit
/// does not refuse ordinary directories. With [`MAX_IMAGE_PIXELS`] this is 2 GiB per chunk.
fn decoder_limits(max_pixels: usize) -> Limits {
    let mut limits = Limits::default();
    let chunk = max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL);
    limits.decoding_buffer_size = limits.decoding_buffer_size.max(chunk);
    limits.intermediate_buffer_size = limits.intermediate_buffer_size.max(chunk);
    // Strip/tile offset and byte-count tables: 256 MiB holds 32 M 8-byte offsets. (tiff 0.11
    // bounds directory values by `decoding_buffer_size` as well.)
    limits.ifd_value_size = limits.ifd_value_size.max(256 << 20);
    limits
}

/// An open TIFF whose windows can be read.
pub struct Raster {
    path: PathBuf,
    decoder: Decoder<BufReader<File>>,
    width: usize,
    height: usize,
    channels: usize,
    max_value: f32,
    chunk_type: ChunkType,
    chunk_size: [usize; 2],
    max_pixels: usize,
    /// The chunks the last window read, decoded: the next window takes what it shares with
    /// them from here (bands of windows overlap, and a TIFF stored as one strip would otherwise
    /// be decoded whole for every band).
    kept: Vec<Chunk>,
    /// Chunks decoded so far.
    decoded: usize,
}

/// One decoded strip or tile.
struct Chunk {
    index: u32,
    samples: Vec<u16>,
    /// Its width and height in pixels (edge chunks hold less than the chunk size).
    size: [usize; 2],
}

impl std::fmt::Debug for Raster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raster")
            .field("path", &self.path)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("channels", &self.channels)
            .field("max_pixels", &self.max_pixels)
            .finish()
    }
}

/// A TIFF that cannot be decoded: the decoder's error, or what prunus found wrong.
fn tiff_error(
    path: &Path,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> DataError {
    DataError::Decode {
        path: path.to_path_buf(),
        format: "TIFF",
        source: source.into(),
    }
}

impl Raster {
    /// Opens a TIFF and reads its layout (not its pixels). Windows of up to
    /// [`MAX_IMAGE_PIXELS`] pixels can be read; the image itself may be larger.
    ///
    /// # Errors
    /// When the file cannot be opened, is not a TIFF, or holds a kind of image other than 8/16-bit
    /// grey, RGB or RGBA in chunky (interleaved) layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        Self::open_with_limit(path, MAX_IMAGE_PIXELS)
    }

    /// As [`Raster::open`], reading windows of up to `max_pixels` pixels; the decoder's buffers
    /// are bounded to match (a chunk may be as large as a `max_pixels` image, and no less than
    /// the `tiff` crate's default limits).
    ///
    /// # Errors
    /// As [`Raster::open`].
    pub fn open_with_limit(path: impl AsRef<Path>, max_pixels: usize) -> Result<Self, DataError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })?;
        let mut decoder = Decoder::new(BufReader::new(file))
            .map_err(|e| tiff_error(&path, e))?
            .with_limits(decoder_limits(max_pixels));
        let (width, height) = decoder.dimensions().map_err(|e| tiff_error(&path, e))?;
        let colortype = decoder.colortype().map_err(|e| tiff_error(&path, e))?;
        let (channels, bits) = match colortype {
            ColorType::Gray(b) => (1, b),
            ColorType::RGB(b) => (3, b),
            ColorType::RGBA(b) => (4, b),
            other => {
                return Err(tiff_error(
                    &path,
                    format!("unsupported colour type {other:?}"),
                ));
            }
        };
        let max_value = match bits {
            8 => 255.0,
            16 => 65535.0,
            b => return Err(tiff_error(&path, format!("unsupported bit depth {b}"))),
        };
        let planar = decoder
            .find_tag_unsigned::<u16>(tiff::tags::Tag::PlanarConfiguration)
            .map_err(|e| tiff_error(&path, e))?;
        if channels > 1 && planar == Some(2) {
            return Err(tiff_error(
                &path,
                "planar (band-separate) layout is not supported",
            ));
        }
        let chunk_type = decoder.get_chunk_type();
        let (cw, ch) = decoder.chunk_dimensions();
        if cw == 0 || ch == 0 {
            return Err(tiff_error(&path, format!("empty {cw}×{ch} chunks")));
        }
        Ok(Self {
            path,
            decoder,
            width: width as usize,
            height: height as usize,
            channels,
            max_value,
            chunk_type,
            chunk_size: [cw as usize, ch as usize],
            max_pixels,
            kept: Vec::new(),
            decoded: 0,
        })
    }

    /// Chunk `index`, decoded (or taken from those the last window read).
    fn chunk(&mut self, index: u32) -> Result<Chunk, DataError> {
        if let Some(i) = self.kept.iter().position(|k| k.index == index) {
            return Ok(self.kept.swap_remove(i));
        }
        let data = self
            .decoder
            .read_chunk(index)
            .map_err(|e| tiff_error(&self.path, format!("chunk {index}: {e}")))?;
        self.decoded += 1;
        let samples: Vec<u16> = match data {
            DecodingResult::U8(v) => v.into_iter().map(u16::from).collect(),
            DecodingResult::U16(v) => v,
            _ => return Err(tiff_error(&self.path, "unexpected sample format")),
        };
        let (w, h) = self.decoder.chunk_data_dimensions(index);
        let size = [w as usize, h as usize];
        if samples.len() < size[0] * size[1] * self.channels {
            return Err(tiff_error(&self.path, format!("chunk {index} is short")));
        }
        Ok(Chunk {
            index,
            samples,
            size,
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

    /// Samples per pixel (1 grey, 3 RGB, 4 RGBA).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The most pixels a window may hold ([`MAX_IMAGE_PIXELS`] unless opened with
    /// [`Raster::open_with_limit`]).
    pub fn max_pixels(&self) -> usize {
        self.max_pixels
    }

    /// Refuses a window of more than [`Raster::max_pixels`] pixels, before it is allocated, or
    /// one whose samples (up to 4 a pixel) would not fit in `usize`.
    fn check_window_pixels(&self, width: usize, height: usize) -> Result<(), DataError> {
        match width.checked_mul(height) {
            Some(n) if n <= self.max_pixels && n.checked_mul(4).is_some() => Ok(()),
            _ => Err(DataError::TooLarge {
                path: self.path.clone(),
                width,
                height,
                limit: self.max_pixels,
            }),
        }
    }

    /// The window `width × height` at column `x`, row `y`, as raw sample values, pixel-interleaved
    /// (`[height, width, channels]` flattened).
    ///
    /// # Errors
    /// When the window does not fit, holds more than [`Raster::max_pixels`] pixels
    /// ([`DataError::TooLarge`], before anything is allocated), or a chunk cannot be decoded (or
    /// would exceed the decoder's limits).
    pub fn read_window_raw(
        &mut self,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
    ) -> Result<Vec<u16>, DataError> {
        let outside = |start: usize, len: usize, size: usize| {
            start.checked_add(len).is_none_or(|end| end > size)
        };
        if width == 0
            || height == 0
            || outside(x, width, self.width)
            || outside(y, height, self.height)
        {
            return Err(DataError::Window {
                path: self.path.clone(),
                x,
                y,
                width,
                height,
                image_width: self.width,
                image_height: self.height,
            });
        }
        self.check_window_pixels(width, height)?;
        let c = self.channels;
        // At most 4 samples a pixel: the product cannot overflow once checked above.
        let mut out = vec![0u16; width * height * c];
        let [cw, ch] = self.chunk_size;
        let across = match self.chunk_type {
            ChunkType::Strip => 1,
            ChunkType::Tile => self.width.div_ceil(cw),
        };
        let (tx0, tx1) = match self.chunk_type {
            ChunkType::Strip => (0, 0),
            ChunkType::Tile => (x / cw, (x + width - 1) / cw),
        };
        let mut used = Vec::new();
        for ty in y / ch..=(y + height - 1) / ch {
            for tx in tx0..=tx1 {
                let chunk = self.chunk((ty * across + tx) as u32)?;
                let [data_w, data_h] = chunk.size;
                let (chunk_x, chunk_y) = (tx * cw, ty * ch);
                // The overlap of the chunk with the window, in image coordinates.
                let (ox0, ox1) = (x.max(chunk_x), (x + width).min(chunk_x + data_w));
                let (oy0, oy1) = (y.max(chunk_y), (y + height).min(chunk_y + data_h));
                for row in oy0..oy1 {
                    let src = ((row - chunk_y) * data_w + (ox0 - chunk_x)) * c;
                    let dst = ((row - y) * width + (ox0 - x)) * c;
                    let n = (ox1 - ox0) * c;
                    out[dst..dst + n].copy_from_slice(&chunk.samples[src..src + n]);
                }
                used.push(chunk);
            }
        }
        self.kept = used;
        Ok(out)
    }

    /// The window as RGB in `[0, 1]`, channels first (`[3, height, width]` flattened). Grey
    /// images are repeated on the three channels; alpha is dropped.
    ///
    /// # Errors
    /// As [`Raster::read_window_raw`].
    pub fn read_window_rgb(
        &mut self,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
    ) -> Result<Vec<f32>, DataError> {
        // `read_window_raw` refuses a window over the limit, so `3 * plane` is bounded too.
        let raw = self.read_window_raw(x, y, width, height)?;
        let (c, plane) = (self.channels, width * height);
        let mut out = vec![0.0; 3 * plane];
        for p in 0..plane {
            for k in 0..3 {
                let sample = if c == 1 { raw[p] } else { raw[p * c + k] };
                out[k * plane + p] = sample as f32 / self.max_value;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "prunus-raster-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A little-endian TIFF header and directory (134 bytes for 1 band, 140 for 3) claiming a
    /// `width × height` image of `bands` 8-bit bands, uncompressed, in one strip whose offset
    /// points past the end of the file: no pixel data at all.
    pub(crate) fn tiff_claiming(width: u32, height: u32, bands: u16) -> Vec<u8> {
        const SHORT: u16 = 3;
        const LONG: u16 = 4;
        let count = 10u16;
        let bits_at = 8 + 2 + 12 * u32::from(count) + 4;
        let strip_bytes = u64::from(width) * u64::from(height) * u64::from(bands);
        let entries: [(u16, u16, u32, u32); 10] = [
            (256, LONG, 1, width),  // ImageWidth
            (257, LONG, 1, height), // ImageLength
            (
                258,
                SHORT,
                u32::from(bands),
                if bands == 1 { 8 } else { bits_at },
            ), // BitsPerSample
            (259, SHORT, 1, 1),     // Compression: none
            (262, SHORT, 1, if bands == 1 { 1 } else { 2 }), // Photometric: grey / RGB
            (273, LONG, 1, 1 << 20), // StripOffsets: past the end
            (277, SHORT, 1, u32::from(bands)), // SamplesPerPixel
            (278, LONG, 1, height), // RowsPerStrip: one strip
            (279, LONG, 1, u32::try_from(strip_bytes).unwrap_or(u32::MAX)), // StripByteCounts
            (284, SHORT, 1, 1),     // PlanarConfiguration: chunky
        ];
        let mut out = b"II".to_vec();
        out.extend(42u16.to_le_bytes());
        out.extend(8u32.to_le_bytes());
        out.extend(count.to_le_bytes());
        for (tag, kind, n, value) in entries {
            out.extend(tag.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(n.to_le_bytes());
            // A SHORT stored inline sits in the first two bytes: little-endian u32 does that.
            out.extend(value.to_le_bytes());
        }
        out.extend(0u32.to_le_bytes()); // No next directory.
        assert_eq!(out.len(), bits_at as usize);
        if bands > 1 {
            for _ in 0..bands {
                out.extend(8u16.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn tiny_tiff_claiming_100000_squared_opens_but_reading_it_is_an_error_not_an_abort() {
        let d = dir("huge");
        for bands in [1, 3] {
            let path = d.join(format!("huge{bands}.tif"));
            std::fs::write(&path, tiff_claiming(100_000, 100_000, bands)).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() <= 150);
            let mut raster = Raster::open(&path).unwrap();
            assert_eq!(raster.size(), [100_000, 100_000]);
            assert_eq!(raster.channels(), usize::from(bands));
            // A small window needs the one 100000×100000 strip: beyond the decoder's limits.
            let err = raster
                .read_window_raw(0, 0, 16, 16)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("huge{bands}.tif")), "{err}");
            let err = raster.read_window_rgb(0, 0, 16, 16).unwrap_err();
            assert!(
                matches!(err, DataError::Decode { format: "TIFF", .. }),
                "{err}"
            );
            let cause = std::error::Error::source(&err).expect("the decoder's error is kept");
            assert!(cause.to_string().contains("chunk 0"), "{cause}");
            // The whole image is refused before its buffer is allocated.
            let err = raster.read_window_rgb(0, 0, 100_000, 100_000).unwrap_err();
            assert!(
                matches!(err, DataError::TooLarge { width: 100_000, height: 100_000, limit, .. } if limit == MAX_IMAGE_PIXELS),
                "{err}"
            );
            let err = err.to_string();
            assert!(
                err.contains(&format!("huge{bands}.tif")) && err.contains("100000×100000"),
                "{err}"
            );
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    /// `w × h` interleaved 8-bit RGB pixels, no two neighbours alike.
    pub(crate) fn varied_rgb(w: usize, h: usize) -> Vec<u8> {
        (0..w * h * 3)
            .map(|i| ((i as u64 * 2_654_435_761) % 251) as u8)
            .collect()
    }

    /// An 8-bit RGB TIFF of `w × h` varied pixels in strips of `rows_per_strip` rows; its
    /// pixels, interleaved.
    pub(crate) fn rgb_tiff(path: &Path, w: usize, h: usize, rows_per_strip: usize) -> Vec<u8> {
        let pixels = varied_rgb(w, h);
        let file = File::create(path).unwrap();
        let mut encoder = tiff::encoder::TiffEncoder::new(file).unwrap();
        let mut image = encoder
            .new_image::<tiff::encoder::colortype::RGB8>(w as u32, h as u32)
            .unwrap();
        image.rows_per_strip(rows_per_strip as u32).unwrap();
        image.write_data(&pixels).unwrap();
        pixels
    }

    /// Windows read band after band decode every strip once: a TIFF stored as one strip is
    /// decoded once for all its bands, and overlapping bands share the strips they overlap.
    #[test]
    fn bands_decode_each_strip_once() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (37usize, 29usize);
        for rows_per_strip in [h, 4] {
            let path = dir.path().join(format!("strips-{rows_per_strip}.tif"));
            let pixels = rgb_tiff(&path, w, h, rows_per_strip);
            let mut raster = Raster::open(&path).unwrap();
            // Bands of 8 rows overlapping by 2, as bands of windows do.
            let mut y = 0;
            while y < h {
                let rows = 8.min(h - y);
                let band = raster.read_window_raw(0, y, w, rows).unwrap();
                let expected: Vec<u16> = pixels[y * w * 3..(y + rows) * w * 3]
                    .iter()
                    .map(|&p| u16::from(p))
                    .collect();
                assert_eq!(band, expected, "rows {y}+{rows}");
                y += 6;
            }
            assert_eq!(
                raster.decoded,
                h.div_ceil(rows_per_strip),
                "{rows_per_strip} rows a strip"
            );
        }
    }

    #[test]
    fn window_over_the_pixel_limit_is_too_large_before_allocating() {
        let d = dir("limit");
        let path = d.join("m.tif");
        crate::write_mask(&path, 4, 4, &[true; 16]).unwrap();
        let mut raster = Raster::open_with_limit(&path, 10).unwrap();
        assert_eq!(raster.max_pixels(), 10);
        let err = raster.read_window_raw(0, 0, 4, 4).unwrap_err();
        crate::error::assert_4x4_over_10(&err, &path);
        assert_eq!(raster.read_window_rgb(1, 1, 3, 3).unwrap(), vec![1.0; 27]);
        // A window whose end overflows is an error, not a panic.
        let err = raster.read_window_raw(usize::MAX, 0, 2, 2).unwrap_err();
        assert!(matches!(err, DataError::Window { .. }), "{err}");
        assert_eq!(Raster::open(&path).unwrap().max_pixels(), MAX_IMAGE_PIXELS);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn decoder_limits_are_bounded_by_the_pixel_limit() {
        let limits = decoder_limits(MAX_IMAGE_PIXELS);
        assert_eq!(limits.decoding_buffer_size, 2 << 30);
        assert_eq!(limits.intermediate_buffer_size, 2 << 30);
        assert_eq!(limits.ifd_value_size, 256 << 20);
        // Never below the tiff crate's defaults; never unlimited.
        let small = decoder_limits(10);
        let default = Limits::default();
        assert_eq!(small.decoding_buffer_size, default.decoding_buffer_size);
        assert_eq!(
            small.intermediate_buffer_size,
            default.intermediate_buffer_size
        );
    }
}
