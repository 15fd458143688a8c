//! Inria and AIRS loaders on small TIFFs written here: both layouts, strips and tiles, 8 and 16
//! bits, uncompressed, LZW and Deflate; and every bad input.

use std::fs;
use std::path::{Path, PathBuf};

use prunus_data::{AerialCrops, CropAt, DataError, Layout, Raster, Split, airs_pairs, inria_pairs};
use tiff::encoder::{Compression, DeflateLevel, TiffEncoder, colortype};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prunus-data-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test pattern: every pixel's value is a function of its place.
fn rgb_at(x: usize, y: usize) -> [u8; 3] {
    [
        ((x * 7 + y) % 256) as u8,
        ((x + y * 3) % 256) as u8,
        ((x * y) % 256) as u8,
    ]
}

fn building_at(x: usize, y: usize) -> bool {
    x < y
}

fn rgb_pattern(w: usize, h: usize) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| rgb_at(x, y)))
        .collect()
}

fn mask_pattern(w: usize, h: usize, on: u8) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| if building_at(x, y) { on } else { 0 }))
        .collect()
}

fn write_rgb8(path: &Path, w: usize, h: usize, compression: Compression) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut enc = TiffEncoder::new(fs::File::create(path).unwrap())
        .unwrap()
        .with_compression(compression);
    enc.write_image::<colortype::RGB8>(w as u32, h as u32, &rgb_pattern(w, h))
        .unwrap();
}

fn write_rgb16(path: &Path, w: usize, h: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let data: Vec<u16> = rgb_pattern(w, h).iter().map(|&v| v as u16 * 257).collect();
    let mut enc = TiffEncoder::new(fs::File::create(path).unwrap()).unwrap();
    enc.write_image::<colortype::RGB16>(w as u32, h as u32, &data)
        .unwrap();
}

fn write_gray8(path: &Path, w: usize, h: usize, data: &[u8], compression: Compression) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut enc = TiffEncoder::new(fs::File::create(path).unwrap())
        .unwrap()
        .with_compression(compression);
    enc.write_image::<colortype::Gray8>(w as u32, h as u32, data)
        .unwrap();
}

/// A tiled, uncompressed, little-endian TIFF (the encoder writes strips only).
fn write_tiled(path: &Path, w: usize, h: usize, spp: usize, pixels: &[u8], tile: usize) {
    let (across, down) = (w.div_ceil(tile), h.div_ceil(tile));
    let tiles = across * down;
    let mut data = Vec::new();
    let mut counts = Vec::new();
    for ty in 0..down {
        for tx in 0..across {
            let start = data.len();
            for y in ty * tile..(ty + 1) * tile {
                for x in tx * tile..(tx + 1) * tile {
                    for s in 0..spp {
                        data.push(if x < w && y < h {
                            pixels[(y * w + x) * spp + s]
                        } else {
                            0
                        });
                    }
                }
            }
            counts.push((data.len() - start) as u32);
        }
    }
    let entries: u16 = 11;
    let ifd_len = 2 + entries as usize * 12 + 4;
    let extra_at = 8 + ifd_len; // bits per sample, then offsets, then counts
    let offsets_at = extra_at + 2 * spp;
    let counts_at = offsets_at + 4 * tiles;
    let data_at = counts_at + 4 * tiles;
    let mut out = Vec::new();
    out.extend_from_slice(b"II");
    out.extend_from_slice(&42u16.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    let mut entry = |tag: u16, ty: u16, count: u32, value: u32| {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    };
    let (short, long) = (3u16, 4u16);
    entry(256, long, 1, w as u32);
    entry(257, long, 1, h as u32);
    if spp == 1 {
        entry(258, short, 1, 8);
    } else {
        entry(258, short, spp as u32, extra_at as u32);
    }
    entry(259, short, 1, 1);
    entry(262, short, 1, if spp == 1 { 1 } else { 2 });
    entry(277, short, 1, spp as u32);
    entry(284, short, 1, 1);
    entry(322, short, 1, tile as u32);
    entry(323, short, 1, tile as u32);
    entry(
        324,
        long,
        tiles as u32,
        if tiles == 1 {
            data_at as u32
        } else {
            offsets_at as u32
        },
    );
    entry(
        325,
        long,
        tiles as u32,
        if tiles == 1 {
            counts[0]
        } else {
            counts_at as u32
        },
    );
    out.extend_from_slice(&0u32.to_le_bytes());
    for _ in 0..spp {
        out.extend_from_slice(&8u16.to_le_bytes());
    }
    let mut offset = data_at as u32;
    for c in &counts {
        out.extend_from_slice(&offset.to_le_bytes());
        offset += c;
    }
    for c in &counts {
        out.extend_from_slice(&c.to_le_bytes());
    }
    out.extend_from_slice(&data);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, out).unwrap();
}

fn assert_pattern(scene: &prunus_data::Scene, x0: usize, y0: usize, scale: f32) {
    let c = scene.size;
    for y in 0..c {
        for x in 0..c {
            let rgb = rgb_at(x0 + x, y0 + y);
            for (k, &value) in rgb.iter().enumerate() {
                let got = scene.image[k * c * c + y * c + x];
                let expected = value as f32 / scale;
                assert!(
                    (got - expected).abs() < 1e-6,
                    "pixel ({}, {}) band {k}",
                    x0 + x,
                    y0 + y
                );
            }
            assert_eq!(scene.mask[y * c + x] == 1, building_at(x0 + x, y0 + y));
        }
    }
}

/// An Inria folder with four tiles, in three compressions.
fn inria(root: &Path) {
    let base = root.join("AerialImageDataset/train");
    let (w, h) = (40, 36);
    for (name, compression) in [
        ("austin1", Compression::Uncompressed),
        ("austin10", Compression::Lzw),
        ("chicago2", Compression::Deflate(DeflateLevel::Balanced)),
        ("chicago6", Compression::Uncompressed),
        ("tyrol-w8", Compression::Lzw),
        ("vienna30", Compression::Lzw),
    ] {
        write_rgb8(&base.join(format!("images/{name}.tif")), w, h, compression);
        write_gray8(
            &base.join(format!("gt/{name}.tif")),
            w,
            h,
            &mask_pattern(w, h, 255),
            compression,
        );
    }
}

#[test]
fn inria_split_is_the_standard_one() {
    let root = temp_dir("inria-split");
    inria(&root);
    let names = |split| -> Vec<String> {
        inria_pairs(&root, split)
            .unwrap()
            .iter()
            .map(|p| p.image.file_stem().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(Split::Valid), ["austin1", "chicago2"]);
    assert_eq!(names(Split::Test), ["chicago6", "tyrol-w8"]);
    assert_eq!(names(Split::Train), ["austin10", "vienna30"]);
    // The folder holding AerialImageDataset works too.
    assert_eq!(
        inria_pairs(root.join("AerialImageDataset"), Split::Valid)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn inria_crops_read_back_in_every_compression() {
    let root = temp_dir("inria-read");
    inria(&root);
    for split in [Split::Train, Split::Valid, Split::Test] {
        let crops = AerialCrops::new(Layout::Inria, inria_pairs(&root, split).unwrap(), 16);
        for pair in 0..2 {
            let scene = crops.read(CropAt { pair, x: 21, y: 13 }).unwrap();
            assert_pattern(&scene, 21, 13, 255.0);
        }
    }
}

#[test]
fn airs_skips_visualisations_and_reads_16_bit_images() {
    let root = temp_dir("airs");
    let (w, h) = (33, 20);
    write_rgb16(&root.join("train/image/christchurch_1.tif"), w, h);
    write_gray8(
        &root.join("train/label/christchurch_1.tif"),
        w,
        h,
        &mask_pattern(w, h, 1),
        Compression::Lzw,
    );
    write_rgb8(
        &root.join("train/image/christchurch_1_vis.tif"),
        w,
        h,
        Compression::Uncompressed,
    );
    write_rgb8(
        &root.join("val/image/christchurch_9.tif"),
        w,
        h,
        Compression::Deflate(DeflateLevel::Fast),
    );
    write_gray8(
        &root.join("val/label/christchurch_9.tif"),
        w,
        h,
        &mask_pattern(w, h, 1),
        Compression::Uncompressed,
    );
    let train = airs_pairs(&root, Split::Train).unwrap();
    assert_eq!(train.len(), 1);
    let crops = AerialCrops::new(Layout::Airs, train, 12);
    assert_pattern(
        &crops
            .read(CropAt {
                pair: 0,
                x: 20,
                y: 8,
            })
            .unwrap(),
        20,
        8,
        255.0,
    );
    let valid = AerialCrops::new(Layout::Airs, airs_pairs(&root, Split::Valid).unwrap(), 20);
    assert_pattern(
        &valid
            .read(CropAt {
                pair: 0,
                x: 13,
                y: 0,
            })
            .unwrap(),
        13,
        0,
        255.0,
    );
    // test/ is the test split; here it has no tiles yet.
    let missing = airs_pairs(&root, Split::Test).unwrap_err().to_string();
    assert!(missing.contains("test"), "{missing}");
}

#[test]
fn tiled_tiffs_are_read_across_tile_edges() {
    let root = temp_dir("tiled");
    let (w, h) = (40, 36);
    write_tiled(
        &root.join("train/image/t.tif"),
        w,
        h,
        3,
        &rgb_pattern(w, h),
        16,
    );
    write_tiled(
        &root.join("train/label/t.tif"),
        w,
        h,
        1,
        &mask_pattern(w, h, 1),
        16,
    );
    let mut raster = Raster::open(root.join("train/image/t.tif")).unwrap();
    assert_eq!(raster.size(), [36, 40]);
    assert_eq!(raster.channels(), 3);
    let crops = AerialCrops::new(Layout::Airs, airs_pairs(&root, Split::Train).unwrap(), 18);
    // A window over four tiles, including the partial edge tiles.
    assert_pattern(
        &crops
            .read(CropAt {
                pair: 0,
                x: 22,
                y: 18,
            })
            .unwrap(),
        22,
        18,
        255.0,
    );
    assert_pattern(
        &crops
            .read(CropAt {
                pair: 0,
                x: 7,
                y: 3,
            })
            .unwrap(),
        7,
        3,
        255.0,
    );
    let raw = raster.read_window_raw(39, 35, 1, 1).unwrap();
    assert_eq!(raw, rgb_at(39, 35).map(u16::from));
}

#[test]
fn grid_covers_each_tile_flush_with_its_edges() {
    let root = temp_dir("grid");
    inria(&root);
    let crops = AerialCrops::new(Layout::Inria, inria_pairs(&root, Split::Valid).unwrap(), 16);
    let grid = crops.grid().unwrap();
    // 40 wide: 0, 16, 24; 36 high: 0, 16, 20 — per tile, two tiles.
    let first: Vec<(usize, usize)> = grid
        .iter()
        .filter(|c| c.pair == 0)
        .map(|c| (c.x, c.y))
        .collect();
    assert_eq!(
        first,
        [
            (0, 0),
            (16, 0),
            (24, 0),
            (0, 16),
            (16, 16),
            (24, 16),
            (0, 20),
            (16, 20),
            (24, 20)
        ]
    );
    assert_eq!(grid.len(), 18);
}

#[test]
fn random_crops_are_deterministic_and_inside() {
    let root = temp_dir("random");
    inria(&root);
    let crops = AerialCrops::new(Layout::Inria, inria_pairs(&root, Split::Train).unwrap(), 16);
    let a = crops.random_crop(5, 3).unwrap();
    assert_eq!(a, crops.random_crop(5, 3).unwrap());
    for i in 0..20 {
        let s = crops.random_crop(1, i).unwrap();
        assert_eq!(s.mask.len(), 256);
    }
}

// ---- bad input ----

/// The error and its causes on one line, as the CLI prints them.
fn message(err: DataError) -> String {
    let mut message = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        message = format!("{message}: {c}");
        cause = c.source();
    }
    message
}

#[test]
fn missing_folder_is_an_error_naming_it() {
    let root = temp_dir("missing");
    let m = message(inria_pairs(root.join("nowhere"), Split::Train).unwrap_err());
    assert!(m.contains("nowhere") && m.contains("not found"), "{m}");
    let m = message(airs_pairs(&root, Split::Valid).unwrap_err());
    assert!(m.contains("val"), "{m}");
}

#[test]
fn image_without_mask_is_an_error_naming_it() {
    let root = temp_dir("nomask");
    write_rgb8(
        &root.join("train/image/lonely.tif"),
        8,
        8,
        Compression::Uncompressed,
    );
    fs::create_dir_all(root.join("train/label")).unwrap();
    let m = message(airs_pairs(&root, Split::Train).unwrap_err());
    assert!(m.contains("lonely.tif") && m.contains("no mask"), "{m}");
}

#[test]
fn size_mismatch_is_an_error_naming_the_mask() {
    let root = temp_dir("mismatch");
    write_rgb8(
        &root.join("train/image/a.tif"),
        20,
        20,
        Compression::Uncompressed,
    );
    write_gray8(
        &root.join("train/label/a.tif"),
        20,
        18,
        &mask_pattern(20, 18, 1),
        Compression::Uncompressed,
    );
    let crops = AerialCrops::new(Layout::Airs, airs_pairs(&root, Split::Train).unwrap(), 8);
    let m = message(
        crops
            .read(CropAt {
                pair: 0,
                x: 0,
                y: 0,
            })
            .unwrap_err(),
    );
    assert!(m.contains("label/a.tif") && m.contains("[18, 20]"), "{m}");
}

#[test]
fn wrong_mask_values_are_errors_naming_the_file_and_value() {
    let root = temp_dir("values");
    inria(&root);
    // Inria masks are 0/255: an AIRS-style 0/1 mask is wrong.
    let gt = root.join("AerialImageDataset/train/gt/austin10.tif");
    write_gray8(
        &gt,
        40,
        36,
        &mask_pattern(40, 36, 1),
        Compression::Uncompressed,
    );
    let crops = AerialCrops::new(Layout::Inria, inria_pairs(&root, Split::Train).unwrap(), 16);
    let m = message(
        crops
            .read(CropAt {
                pair: 0,
                x: 0,
                y: 16,
            })
            .unwrap_err(),
    );
    assert!(
        m.contains("austin10.tif") && m.contains("mask value 1"),
        "{m}"
    );
    // And AIRS labels are 0/1.
    let airs = temp_dir("values-airs");
    write_rgb8(
        &airs.join("train/image/b.tif"),
        8,
        8,
        Compression::Uncompressed,
    );
    write_gray8(
        &airs.join("train/label/b.tif"),
        8,
        8,
        &mask_pattern(8, 8, 255),
        Compression::Uncompressed,
    );
    let crops = AerialCrops::new(Layout::Airs, airs_pairs(&airs, Split::Train).unwrap(), 8);
    let m = message(
        crops
            .read(CropAt {
                pair: 0,
                x: 0,
                y: 0,
            })
            .unwrap_err(),
    );
    assert!(m.contains("mask value 255"), "{m}");
}

#[test]
fn unreadable_tiff_is_an_error_naming_the_file() {
    let root = temp_dir("corrupt");
    fs::create_dir_all(root.join("train/image")).unwrap();
    fs::create_dir_all(root.join("train/label")).unwrap();
    fs::write(
        root.join("train/image/c.tif"),
        b"II*\0 definitely not a tiff",
    )
    .unwrap();
    fs::write(root.join("train/label/c.tif"), b"nonsense").unwrap();
    let crops = AerialCrops::new(Layout::Airs, airs_pairs(&root, Split::Train).unwrap(), 4);
    let m = message(
        crops
            .read(CropAt {
                pair: 0,
                x: 0,
                y: 0,
            })
            .unwrap_err(),
    );
    assert!(
        m.contains("image/c.tif") && m.contains("cannot decode TIFF"),
        "{m}"
    );
    // A truncated TIFF: a valid header and directory but missing pixel data.
    write_rgb8(&root.join("t.tif"), 32, 32, Compression::Uncompressed);
    let bytes = fs::read(root.join("t.tif")).unwrap();
    fs::write(root.join("t.tif"), &bytes[..bytes.len() / 3]).unwrap();
    let result = Raster::open(root.join("t.tif")).and_then(|mut r| r.read_window_rgb(0, 0, 32, 32));
    assert!(message(result.unwrap_err()).contains("t.tif"));
}

#[test]
fn unsupported_tiff_is_an_error() {
    let root = temp_dir("unsupported");
    let path = root.join("cmyk.tif");
    let mut enc = TiffEncoder::new(fs::File::create(&path).unwrap()).unwrap();
    enc.write_image::<colortype::CMYK8>(4, 4, &[0u8; 64])
        .unwrap();
    let m = message(Raster::open(&path).unwrap_err());
    assert!(m.contains("unsupported colour type"), "{m}");
}

#[test]
fn crop_larger_than_the_image_is_an_error() {
    let root = temp_dir("large");
    inria(&root);
    let crops = AerialCrops::new(Layout::Inria, inria_pairs(&root, Split::Train).unwrap(), 64);
    let m = message(crops.random_crop(0, 0).unwrap_err());
    assert!(m.contains("64×64 window") && m.contains("40×36"), "{m}");
    assert!(crops.grid().is_err());
}
