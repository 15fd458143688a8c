//! Windowed TIFF/GeoTIFF reading: only the strips or tiles a window touches are decoded.
//!
//! Aerial tiles are large (Inria's are 5000×5000, AIRS's larger); decoding a whole file for each
//! 256×256 training crop would dominate training time. [`Raster::read_window`] decodes just the
//! chunks (strips or tiles) that overlap the window. 8- and 16-bit grey, RGB and RGBA images,
//! stored in strips or tiles, uncompressed, LZW or Deflate, are read.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use tiff::ColorType;
use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};

use crate::error::DataError;

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
}

impl std::fmt::Debug for Raster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raster")
            .field("path", &self.path)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("channels", &self.channels)
            .finish()
    }
}

fn tiff_error(path: &Path, reason: impl std::fmt::Display) -> DataError {
    DataError::Tiff {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl Raster {
    /// Opens a TIFF and reads its layout (not its pixels).
    ///
    /// # Errors
    /// When the file cannot be opened, is not a TIFF, or holds a kind of image other than 8/16-bit
    /// grey, RGB or RGBA in chunky (interleaved) layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })?;
        let mut decoder = Decoder::new(BufReader::new(file))
            .map_err(|e| tiff_error(&path, e))?
            .with_limits(Limits::unlimited());
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
        Ok(Self {
            path,
            decoder,
            width: width as usize,
            height: height as usize,
            channels,
            max_value,
            chunk_type,
            chunk_size: [cw as usize, ch as usize],
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

    /// The window `width × height` at column `x`, row `y`, as raw sample values, pixel-interleaved
    /// (`[height, width, channels]` flattened).
    ///
    /// # Errors
    /// When the window does not fit or a chunk cannot be decoded.
    pub fn read_window_raw(
        &mut self,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
    ) -> Result<Vec<u16>, DataError> {
        if width == 0 || height == 0 || x + width > self.width || y + height > self.height {
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
        let c = self.channels;
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
        for ty in y / ch..=(y + height - 1) / ch {
            for tx in tx0..=tx1 {
                let index = (ty * across + tx) as u32;
                let data = self
                    .decoder
                    .read_chunk(index)
                    .map_err(|e| tiff_error(&self.path, format!("chunk {index}: {e}")))?;
                let samples: Vec<u16> = match data {
                    DecodingResult::U8(v) => v.into_iter().map(u16::from).collect(),
                    DecodingResult::U16(v) => v,
                    _ => return Err(tiff_error(&self.path, "unexpected sample format")),
                };
                let (data_w, data_h) = self.decoder.chunk_data_dimensions(index);
                let (data_w, data_h) = (data_w as usize, data_h as usize);
                if samples.len() < data_w * data_h * c {
                    return Err(tiff_error(&self.path, format!("chunk {index} is short")));
                }
                let (chunk_x, chunk_y) = (tx * cw, ty * ch);
                // The overlap of the chunk with the window, in image coordinates.
                let (ox0, ox1) = (x.max(chunk_x), (x + width).min(chunk_x + data_w));
                let (oy0, oy1) = (y.max(chunk_y), (y + height).min(chunk_y + data_h));
                for row in oy0..oy1 {
                    let src = ((row - chunk_y) * data_w + (ox0 - chunk_x)) * c;
                    let dst = ((row - y) * width + (ox0 - x)) * c;
                    let n = (ox1 - ox0) * c;
                    out[dst..dst + n].copy_from_slice(&samples[src..src + n]);
                }
            }
        }
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
