//! GeoTIFF georeferencing: read from an aerial tile and written onto the mask segmented from it,
//! so that a GIS puts the mask where the image is.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use tiff::decoder::Decoder;
use tiff::tags::Tag;

use crate::DataError;
use crate::MaskWriter;
use crate::image::check_len;

/// The GeoTIFF tags of an image that place it on the Earth, as stored in its file.
///
/// # Example
/// ```no_run
/// use prunus_data::{Georeferencing, write_mask_georeferenced};
/// let geo = Georeferencing::read("tile.tif").unwrap().expect("a GeoTIFF");
/// write_mask_georeferenced("mask.tif", 2, 1, &[true, false], &geo).unwrap();
/// assert_eq!(Georeferencing::read("mask.tif").unwrap(), Some(geo));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Georeferencing {
    /// `ModelPixelScaleTag` (33550): the size of a pixel in model units (x, y, z).
    pub pixel_scale: Option<Vec<f64>>,
    /// `ModelTiepointTag` (33922): raster points tied to model points, six values each.
    pub tiepoints: Option<Vec<f64>>,
    /// `ModelTransformationTag` (34264): the 4×4 raster-to-model matrix, row by row.
    pub transformation: Option<Vec<f64>>,
    /// `GeoKeyDirectoryTag` (34735): the coordinate system's keys.
    pub key_directory: Option<Vec<u16>>,
    /// `GeoDoubleParamsTag` (34736): the keys' floating-point values.
    pub double_params: Option<Vec<f64>>,
    /// `GeoAsciiParamsTag` (34737): the keys' text values.
    pub ascii_params: Option<String>,
    /// `GDAL_NODATA` (42113): the value that marks missing pixels.
    pub nodata: Option<String>,
}

fn decode_error(path: &Path, source: tiff::TiffError) -> DataError {
    DataError::Decode {
        path: path.to_path_buf(),
        format: "TIFF",
        source: source.into(),
    }
}

impl Georeferencing {
    /// The georeferencing of the TIFF at `path`; `None` when it has none (neither a placement
    /// nor a key directory).
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read, [`DataError::Decode`] when it is not a
    /// TIFF or a georeferencing tag holds values of the wrong type.
    pub fn read(path: impl AsRef<Path>) -> Result<Option<Self>, DataError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut decoder = Decoder::new(BufReader::new(file)).map_err(|e| decode_error(path, e))?;
        let geo = Self::from_decoder(&mut decoder).map_err(|e| decode_error(path, e))?;
        Ok((geo != Self::default()).then_some(geo))
    }

    fn from_decoder<R: Read + Seek>(decoder: &mut Decoder<R>) -> tiff::TiffResult<Self> {
        let mut f64s = |tag| -> tiff::TiffResult<Option<Vec<f64>>> {
            decoder.find_tag(tag)?.map(|v| v.into_f64_vec()).transpose()
        };
        let pixel_scale = f64s(Tag::ModelPixelScaleTag)?;
        let tiepoints = f64s(Tag::ModelTiepointTag)?;
        let transformation = f64s(Tag::ModelTransformationTag)?;
        let double_params = f64s(Tag::GeoDoubleParamsTag)?;
        let key_directory = decoder
            .find_tag(Tag::GeoKeyDirectoryTag)?
            .map(|v| v.into_u16_vec())
            .transpose()?;
        let mut text = |tag| -> tiff::TiffResult<Option<String>> {
            decoder.find_tag(tag)?.map(|v| v.into_string()).transpose()
        };
        Ok(Self {
            pixel_scale,
            tiepoints,
            transformation,
            key_directory,
            double_params,
            ascii_params: text(Tag::GeoAsciiParamsTag)?,
            nodata: text(Tag::GdalNodata)?,
        })
    }
}

/// Writes a binary mask (`height × width`, row-major, `true` = foreground) as an 8-bit grey
/// GeoTIFF with values 0 and 255, tiled and Deflate-compressed ([`MaskWriter`]), carrying `geo` —
/// the tags of the image it was segmented from, so that it lies where that image lies. Written
/// atomically. A mask too large to hold in memory is written by [`MaskWriter`] band by band.
///
/// # Errors
/// When `path` is not a `.tif`/`.tiff`, `mask` does not hold `width × height` values, or the
/// file cannot be written.
pub fn write_mask_georeferenced(
    path: impl AsRef<Path>,
    width: usize,
    height: usize,
    mask: &[bool],
    geo: &Georeferencing,
) -> Result<(), DataError> {
    let path = path.as_ref();
    check_len(path, width, height, 1, mask.len())?;
    let mut writer = MaskWriter::create(path, width, height, Some(geo))?;
    writer.write_rows(mask)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::mask_pixels;
    use std::io::BufWriter;
    use tiff::encoder::{TiffEncoder, colortype};

    /// A georeferenced RGB GeoTIFF as GDAL writes one: UTM zone 18N (EPSG:32618), 0.3 m pixels.
    fn geotiff(path: &Path, width: u32, height: u32) -> Georeferencing {
        let geo = Georeferencing {
            pixel_scale: Some(vec![0.3, 0.3, 0.0]),
            tiepoints: Some(vec![0.0, 0.0, 0.0, 583_000.5, 4_507_400.25, 0.0]),
            transformation: None,
            key_directory: Some(vec![
                1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32618, 1026, 34737, 22, 0,
            ]),
            double_params: Some(vec![298.257_223_563, 6_378_137.0]),
            ascii_params: Some("WGS 84 / UTM zone 18N|".into()),
            nodata: Some("0".into()),
        };
        let file = File::create(path).unwrap();
        let mut encoder = TiffEncoder::new(BufWriter::new(file)).unwrap();
        let mut image = encoder.new_image::<colortype::RGB8>(width, height).unwrap();
        let tags = image.encoder();
        tags.write_tag(Tag::ModelPixelScaleTag, &[0.3, 0.3, 0.0][..])
            .unwrap();
        tags.write_tag(Tag::ModelTiepointTag, &geo.tiepoints.as_ref().unwrap()[..])
            .unwrap();
        tags.write_tag(
            Tag::GeoKeyDirectoryTag,
            &geo.key_directory.as_ref().unwrap()[..],
        )
        .unwrap();
        tags.write_tag(
            Tag::GeoDoubleParamsTag,
            &geo.double_params.as_ref().unwrap()[..],
        )
        .unwrap();
        tags.write_tag(Tag::GeoAsciiParamsTag, "WGS 84 / UTM zone 18N|")
            .unwrap();
        tags.write_tag(Tag::GdalNodata, "0").unwrap();
        let pixels: Vec<u8> = (0..width * height * 3)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        image.write_data(&pixels).unwrap();
        geo
    }

    #[test]
    fn a_mask_carries_its_images_georeferencing_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("tile.tif"), dir.path().join("mask.tif"));
        let written = geotiff(&input, 37, 23);
        let geo = Georeferencing::read(&input)
            .unwrap()
            .expect("georeferenced");
        assert_eq!(geo, written);
        let mask: Vec<bool> = (0..37 * 23).map(|i| i % 3 == 0).collect();
        write_mask_georeferenced(&output, 37, 23, &mask, &geo).unwrap();
        assert_eq!(Georeferencing::read(&output).unwrap(), Some(geo));
        // Deflate-compressed, and the pixels are the mask's.
        let mut decoder = Decoder::new(File::open(&output).unwrap()).unwrap();
        assert_eq!(decoder.get_tag_u32(Tag::Compression).unwrap(), 8);
        let tiff::decoder::DecodingResult::U8(pixels) = decoder.read_image().unwrap() else {
            panic!("8-bit");
        };
        assert_eq!(pixels, mask_pixels(&mask));
    }

    #[test]
    fn a_plain_tiff_has_no_georeferencing_and_a_png_mask_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.tif");
        crate::write_mask(&path, 2, 2, &[true, false, false, true]).unwrap();
        assert_eq!(Georeferencing::read(&path).unwrap(), None);
        let geo = Georeferencing {
            nodata: Some("0".into()),
            ..Default::default()
        };
        let err =
            write_mask_georeferenced(dir.path().join("m.png"), 1, 1, &[true], &geo).unwrap_err();
        assert!(err.to_string().contains("GeoTIFF"), "{err}");
    }
}
