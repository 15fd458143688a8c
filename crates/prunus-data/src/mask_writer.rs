//! Writing a mask as its rows arrive, so that segmenting an image never holds its whole mask.
//!
//! A `.tif`/`.tiff` mask is a tiled (256×256), Deflate-compressed 8-bit grey TIFF, the layout GIS
//! tools read fastest; it carries the input's GeoTIFF tags when given them. Only one band of 256
//! rows is held (`width × 256` bytes); each tile is compressed and appended as soon as its band is
//! complete, and the directory is written last. A `.png` mask is streamed row by row. Either is
//! written to a temporary file beside its path and renamed into place by [`MaskWriter::finish`],
//! so a reader never sees half a mask; a writer dropped unfinished removes its temporary file.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::write::ZlibEncoder;

use crate::error::DataError;
use crate::geo::Georeferencing;
use crate::image::{Format, format_of, mask_pixels, temporary_path};

/// Side of the square tiles of a TIFF mask.
pub const MASK_TILE: usize = 256;

/// A binary mask written row by row: 255 for foreground, 0 for background.
///
/// # Example
/// ```
/// use prunus_data::{MaskWriter, RgbImage};
/// let dir = std::env::temp_dir().join(format!("prunus-doc-maskwriter-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("mask.tif");
/// let mut writer = MaskWriter::create(&path, 3, 2, None).unwrap();
/// writer.write_rows(&[true, false, true]).unwrap();
/// writer.write_rows(&[false, false, true]).unwrap();
/// writer.finish().unwrap();
/// let mask = RgbImage::open(&path).unwrap();
/// assert_eq!(&mask.data[..6], &[1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct MaskWriter {
    path: PathBuf,
    tmp: PathBuf,
    width: usize,
    height: usize,
    rows: usize,
    /// `None` once finished.
    out: Option<Output>,
}

enum Output {
    Tiff(TiledTiff),
    Png(png::StreamWriter<'static, BufWriter<File>>, File),
}

impl std::fmt::Debug for MaskWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskWriter")
            .field("path", &self.path)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("rows", &self.rows)
            .finish()
    }
}

impl MaskWriter {
    /// Starts a `width × height` mask at `path` (`.png`, `.tif` or `.tiff`), written to a
    /// temporary file beside it until [`MaskWriter::finish`]. `geo` is written on a TIFF mask.
    ///
    /// # Errors
    /// When the extension is not one of those, `geo` is given for a PNG, the size is 0 or beyond
    /// what the format holds (2^32 − 1 per side), or the temporary file cannot be created.
    pub fn create(
        path: impl AsRef<Path>,
        width: usize,
        height: usize,
        geo: Option<&Georeferencing>,
    ) -> Result<Self, DataError> {
        let path = path.as_ref().to_path_buf();
        let format_error = |reason: String| DataError::Format {
            path: path.clone(),
            reason,
        };
        if width == 0 || height == 0 || u32::try_from(width.max(height)).is_err() {
            return Err(format_error(format!(
                "cannot write a {width}×{height} mask"
            )));
        }
        let format = format_of(&path)?;
        if format == Format::Png && geo.is_some() {
            return Err(format_error(
                "a georeferenced mask is a GeoTIFF: use .tif or .tiff".into(),
            ));
        }
        let tmp = temporary_path(&path);
        let io = |source| DataError::Io {
            path: tmp.clone(),
            source,
        };
        let file = File::create(&tmp).map_err(io)?;
        // From here on, dropping `writer` removes the temporary file.
        let mut writer = Self {
            path,
            tmp: tmp.clone(),
            width,
            height,
            rows: 0,
            out: None,
        };
        writer.out = Some(match format {
            Format::Tiff => Output::Tiff(TiledTiff::start(file, width, geo.cloned()).map_err(io)?),
            Format::Png => {
                let sync = file.try_clone().map_err(io)?;
                let mut encoder =
                    png::Encoder::new(BufWriter::new(file), width as u32, height as u32);
                encoder.set_color(png::ColorType::Grayscale);
                encoder.set_depth(png::BitDepth::Eight);
                let stream = encoder
                    .write_header()
                    .and_then(png::Writer::into_stream_writer)
                    .map_err(|e| io(std::io::Error::other(e)))?;
                Output::Png(stream, sync)
            }
        });
        Ok(writer)
    }

    /// The mask's path (where [`MaskWriter::finish`] puts it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows written so far.
    pub fn rows_written(&self) -> usize {
        self.rows
    }

    /// Appends whole rows (`mask.len()` a multiple of the width, row-major, `true` = foreground).
    ///
    /// # Errors
    /// When `mask` is not whole rows, would pass the mask's height, or cannot be written.
    pub fn write_rows(&mut self, mask: &[bool]) -> Result<(), DataError> {
        let rows = mask.len() / self.width;
        if !mask.len().is_multiple_of(self.width) || self.rows + rows > self.height {
            return Err(DataError::Format {
                path: self.path.clone(),
                reason: format!(
                    "{} values are not whole rows of {} pixels within the mask's {} rows ({} \
                     written)",
                    mask.len(),
                    self.width,
                    self.height,
                    self.rows
                ),
            });
        }
        let pixels = mask_pixels(mask);
        let tmp = &self.tmp;
        let io = |source| DataError::Io {
            path: tmp.clone(),
            source,
        };
        match self.out.as_mut() {
            Some(Output::Tiff(tiff)) => tiff.write_rows(&pixels).map_err(io)?,
            Some(Output::Png(stream, _)) => stream.write_all(&pixels).map_err(io)?,
            None => unreachable!("a finished writer is consumed"),
        }
        self.rows += rows;
        Ok(())
    }

    /// Completes the file and renames it into place (replacing a file there).
    ///
    /// # Errors
    /// When fewer rows than the height were written, or the file cannot be completed or renamed;
    /// the temporary file is removed.
    pub fn finish(mut self) -> Result<(), DataError> {
        if self.rows != self.height {
            return Err(DataError::Format {
                path: self.path.clone(),
                reason: format!(
                    "only {} of the mask's {} rows were written",
                    self.rows, self.height
                ),
            });
        }
        let out = self.out.take().expect("not finished yet");
        let done = match out {
            Output::Tiff(tiff) => tiff.finish(self.width, self.height),
            Output::Png(stream, sync) => stream
                .finish()
                .map_err(std::io::Error::other)
                .and_then(|()| sync.sync_all()),
        };
        let tmp = self.tmp.clone();
        done.map_err(|source| DataError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &self.path).map_err(|source| DataError::Io {
            path: self.path.clone(),
            source,
        })?;
        // Renamed: nothing left for `drop` to remove.
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for MaskWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.out = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A classic little-endian TIFF of Deflate-compressed 8-bit grey tiles, written band by band.
struct TiledTiff {
    file: BufWriter<File>,
    /// Bytes written so far: where the next tile goes.
    position: u64,
    /// The rows of the current band of tiles, `width` bytes each.
    band: Vec<u8>,
    width: usize,
    offsets: Vec<u32>,
    counts: Vec<u32>,
    geo: Option<Georeferencing>,
}

/// A TIFF field's type: its code and the bytes of one value.
#[derive(Clone, Copy)]
enum Type {
    Ascii = 2,
    Short = 3,
    Long = 4,
    Double = 12,
}

/// One directory entry: tag, type, number of values and their little-endian bytes.
struct Entry(u16, Type, u32, Vec<u8>);

impl Entry {
    fn shorts(tag: u16, values: &[u16]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self(tag, Type::Short, values.len() as u32, bytes)
    }
    fn longs(tag: u16, values: &[u32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self(tag, Type::Long, values.len() as u32, bytes)
    }
    fn doubles(tag: u16, values: &[f64]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self(tag, Type::Double, values.len() as u32, bytes)
    }
    fn ascii(tag: u16, text: &str) -> Self {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        Self(tag, Type::Ascii, bytes.len() as u32, bytes)
    }
}

fn too_large() -> std::io::Error {
    std::io::Error::other("the mask passes the 4 GiB a classic TIFF can address")
}

impl TiledTiff {
    fn start(file: File, width: usize, geo: Option<Georeferencing>) -> std::io::Result<Self> {
        let mut file = BufWriter::new(file);
        // Little-endian, 42, and the directory's offset, written by `finish`.
        file.write_all(&[b'I', b'I', 42, 0, 0, 0, 0, 0])?;
        Ok(Self {
            file,
            position: 8,
            band: Vec::with_capacity(width * MASK_TILE),
            width,
            offsets: Vec::new(),
            counts: Vec::new(),
            geo,
        })
    }

    fn write_rows(&mut self, mut pixels: &[u8]) -> std::io::Result<()> {
        while !pixels.is_empty() {
            let room = self.width * MASK_TILE - self.band.len();
            let (now, rest) = pixels.split_at(room.min(pixels.len()));
            self.band.extend_from_slice(now);
            if self.band.len() == self.width * MASK_TILE {
                self.flush_band()?;
            }
            pixels = rest;
        }
        Ok(())
    }

    /// Compresses and appends the tiles of the band held; a last, partial band is padded with 0.
    fn flush_band(&mut self) -> std::io::Result<()> {
        let rows = self.band.len() / self.width;
        let mut tile = vec![0u8; MASK_TILE * MASK_TILE];
        for x0 in (0..self.width).step_by(MASK_TILE) {
            let n = MASK_TILE.min(self.width - x0);
            tile.fill(0);
            for r in 0..rows {
                let src = &self.band[r * self.width + x0..][..n];
                tile[r * MASK_TILE..r * MASK_TILE + n].copy_from_slice(src);
            }
            let mut encoder = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&tile)?;
            let compressed = encoder.finish()?;
            self.offsets
                .push(u32::try_from(self.position).map_err(|_| too_large())?);
            self.counts.push(compressed.len() as u32);
            self.file.write_all(&compressed)?;
            self.position += compressed.len() as u64;
        }
        self.band.clear();
        Ok(())
    }

    fn entries(&self, width: usize, height: usize) -> Vec<Entry> {
        let tile = MASK_TILE as u32;
        let mut entries = vec![
            Entry::longs(256, &[width as u32]),
            Entry::longs(257, &[height as u32]),
            Entry::shorts(258, &[8]),
            // Adobe Deflate.
            Entry::shorts(259, &[8]),
            // Black is zero.
            Entry::shorts(262, &[1]),
            Entry::shorts(277, &[1]),
            Entry::shorts(284, &[1]),
            Entry::longs(322, &[tile]),
            Entry::longs(323, &[tile]),
            Entry::longs(324, &self.offsets),
            Entry::longs(325, &self.counts),
        ];
        if let Some(geo) = &self.geo {
            for (tag, values) in [
                (33550, &geo.pixel_scale),
                (33922, &geo.tiepoints),
                (34264, &geo.transformation),
                (34736, &geo.double_params),
            ] {
                entries.extend(values.as_ref().map(|v| Entry::doubles(tag, v)));
            }
            entries.extend(geo.key_directory.as_ref().map(|k| Entry::shorts(34735, k)));
            for (tag, text) in [(34737, &geo.ascii_params), (42113, &geo.nodata)] {
                entries.extend(text.as_deref().map(|t| Entry::ascii(tag, t)));
            }
        }
        entries.sort_by_key(|e| e.0);
        entries
    }

    /// Writes the last band, the directory's out-of-line values, the directory, and its offset
    /// in the header; then syncs the file to disk.
    fn finish(mut self, width: usize, height: usize) -> std::io::Result<()> {
        if !self.band.is_empty() {
            self.flush_band()?;
        }
        let entries = self.entries(width, height);
        // Values of more than 4 bytes go before the directory, each at an even offset.
        let mut values = Vec::with_capacity(entries.len());
        for Entry(_, _, _, bytes) in &entries {
            if bytes.len() > 4 {
                self.align()?;
                values.push(u32::try_from(self.position).map_err(|_| too_large())?);
                self.file.write_all(bytes)?;
                self.position += bytes.len() as u64;
            } else {
                values.push(0);
            }
        }
        self.align()?;
        let directory = u32::try_from(self.position).map_err(|_| too_large())?;
        let mut ifd = Vec::with_capacity(2 + 12 * entries.len() + 4);
        ifd.extend((entries.len() as u16).to_le_bytes());
        for (Entry(tag, kind, count, bytes), offset) in entries.iter().zip(values) {
            ifd.extend(tag.to_le_bytes());
            ifd.extend((*kind as u16).to_le_bytes());
            ifd.extend(count.to_le_bytes());
            if bytes.len() > 4 {
                ifd.extend(offset.to_le_bytes());
            } else {
                let mut inline = [0u8; 4];
                inline[..bytes.len()].copy_from_slice(bytes);
                ifd.extend(inline);
            }
        }
        // No next directory.
        ifd.extend(0u32.to_le_bytes());
        self.file.write_all(&ifd)?;
        self.file.seek(SeekFrom::Start(4))?;
        self.file.write_all(&directory.to_le_bytes())?;
        self.file.flush()?;
        self.file.get_ref().sync_all()
    }

    fn align(&mut self) -> std::io::Result<()> {
        if self.position % 2 == 1 {
            self.file.write_all(&[0])?;
            self.position += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiff::decoder::{ChunkType, Decoder, DecodingResult};
    use tiff::tags::Tag;

    fn pattern(width: usize, height: usize) -> Vec<bool> {
        (0..width * height)
            .map(|i| (i as u64 * 2_654_435_761) % 7 < 3)
            .collect()
    }

    /// Written in uneven batches of rows, a mask reads back pixel for pixel: a tiled, Deflate
    /// TIFF whose edge tiles are partial, and a PNG; no temporary file is left.
    #[test]
    fn rows_written_in_batches_read_back_as_the_mask() {
        for (w, h) in [(300, 517), (256, 256), (1, 1), (700, 3)] {
            let dir = tempfile::tempdir().unwrap();
            let mask = pattern(w, h);
            for name in ["m.tif", "m.png"] {
                let path = dir.path().join(name);
                let mut writer = MaskWriter::create(&path, w, h, None).unwrap();
                let mut y = 0;
                for step in [1, 7, 300, 1].iter().cycle() {
                    let rows = (*step).min(h - y);
                    writer.write_rows(&mask[y * w..(y + rows) * w]).unwrap();
                    y += rows;
                    if y == h {
                        break;
                    }
                }
                assert!(!path.exists(), "written before finish");
                writer.finish().unwrap();
                let image = crate::RgbImage::open(&path).unwrap();
                let back: Vec<bool> = image.data[..w * h].iter().map(|&v| v == 1.0).collect();
                assert_eq!(back, mask, "{name} {w}×{h}");
            }
            let mut decoder = Decoder::new(File::open(dir.path().join("m.tif")).unwrap()).unwrap();
            assert_eq!(decoder.get_chunk_type(), ChunkType::Tile);
            assert_eq!(decoder.chunk_dimensions(), (256, 256));
            assert_eq!(decoder.get_tag_u32(Tag::Compression).unwrap(), 8);
            let DecodingResult::U8(pixels) = decoder.read_image().unwrap() else {
                panic!("8-bit")
            };
            assert!(pixels.iter().all(|&p| p == 0 || p == 255));
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 2, "only the two masks: {left:?}");
        }
    }

    #[test]
    fn an_unfinished_mask_leaves_nothing_and_wrong_rows_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.tif");
        let mut writer = MaskWriter::create(&path, 4, 3, None).unwrap();
        let err = writer.write_rows(&[true; 5]).unwrap_err();
        assert!(err.to_string().contains("whole rows"), "{err}");
        writer.write_rows(&[true; 8]).unwrap();
        let err = writer.write_rows(&[true; 8]).unwrap_err();
        assert!(err.to_string().contains("m.tif"), "{err}");
        let err = writer.finish().unwrap_err();
        assert!(
            err.to_string().contains("only 2 of the mask's 3 rows"),
            "{err}"
        );
        let mut writer = MaskWriter::create(&path, 4, 3, None).unwrap();
        writer.write_rows(&[false; 4]).unwrap();
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let geo = Georeferencing::default();
        let png = dir.path().join("m.png");
        let err = MaskWriter::create(&png, 1, 1, Some(&geo)).unwrap_err();
        assert!(err.to_string().contains("GeoTIFF"), "{err}");
        assert!(MaskWriter::create(dir.path().join("m.jpg"), 1, 1, None).is_err());
        assert!(MaskWriter::create(&path, 0, 1, None).is_err());
    }
}
