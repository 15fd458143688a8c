//! Writes a synthetic aerial GeoTIFF of any size — the generator's scenes side by side, RGB,
//! georeferenced in UTM zone 18N (EPSG:32618) with 0.3 m pixels as GDAL writes an Inria tile —
//! and beside it its building mask. Never holds the image whole: it is written one band of scenes
//! at a time. Made for trying `prunus infer` on a tile the size of Inria's, and for
//! `benches/infer.sh`.
//!
//! ```sh
//! cargo run --release --example synthetic_geotiff -- --out tile.tif --size 5000
//! prunus infer --model unet.prunus --input tile.tif --output mask.tif
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use clap::Parser;
use prunus::data::{MaskWriter, Scene, SyntheticConfig, generate};
use tiff::encoder::{TiffEncoder, colortype};
use tiff::tags::Tag;

#[path = "common/cli.rs"]
mod cli;

#[derive(Parser, Debug)]
#[command(about = "Write a synthetic aerial GeoTIFF of any size and its building mask")]
struct Args {
    /// The GeoTIFF to write; the mask goes beside it as `<name>.mask.tif`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Side of the image in pixels.
    #[arg(long, value_name = "PX", default_value_t = 5000)]
    size: usize,
    /// Side of each generated scene in pixels.
    #[arg(long, value_name = "PX", default_value_t = 250)]
    scene: usize,
    /// Seed of the scenes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
}

fn main() {
    cli::main_with(run);
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (size, side) = (args.size, args.scene);
    if size == 0 || side == 0 || u32::try_from(size).is_err() {
        return Err(format!("cannot write a {size}×{size} image of {side}-pixel scenes").into());
    }
    let config = SyntheticConfig::new().with_size(side).with_seed(args.seed);
    let across = size.div_ceil(side);
    let file = BufWriter::new(File::create(&args.out)?);
    let mut encoder = TiffEncoder::new(file)?;
    let mut image = encoder.new_image::<colortype::RGB8>(size as u32, size as u32)?;
    let tags = image.encoder();
    tags.write_tag(Tag::ModelPixelScaleTag, &[0.3, 0.3, 0.0][..])?;
    let tiepoint = [0.0, 0.0, 0.0, 583_000.5, 4_507_400.25, 0.0];
    tags.write_tag(Tag::ModelTiepointTag, &tiepoint[..])?;
    let keys: [u16; 20] = [
        1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32618, 1026, 34737, 22, 0,
    ];
    tags.write_tag(Tag::GeoKeyDirectoryTag, &keys[..])?;
    tags.write_tag(Tag::GeoDoubleParamsTag, &[298.257_223_563, 6_378_137.0][..])?;
    tags.write_tag(Tag::GeoAsciiParamsTag, "WGS 84 / UTM zone 18N|")?;
    image.rows_per_strip(side as u32)?;
    let mask_path = args.out.with_extension("mask.tif");
    let mut mask = MaskWriter::create(&mask_path, size, size, None)?;
    let mut buildings = 0u64;
    for band in 0..size.div_ceil(side) {
        let scenes: Vec<Scene> = (0..across)
            .map(|col| generate(&config, (band * across + col) as u64))
            .collect();
        let rows = side.min(size - band * side);
        let mut strip = Vec::with_capacity(rows * size * 3);
        let mut truth = Vec::with_capacity(rows * size);
        for r in 0..rows {
            for x in 0..size {
                let scene = &scenes[x / side];
                let p = r * side + x % side;
                for k in 0..3 {
                    strip.push((scene.image[k * side * side + p] * 255.0).round() as u8);
                }
                truth.push(scene.mask[p] == 1);
            }
        }
        image.write_strip(&strip)?;
        buildings += truth.iter().filter(|&&m| m).count() as u64;
        mask.write_rows(&truth)?;
    }
    image.finish()?;
    mask.finish()?;
    let share = buildings as f64 / (size * size) as f64;
    println!(
        "{}: {size}×{size} RGB GeoTIFF (UTM 18N, 0.3 m), {:.1}% building → mask {}",
        args.out.display(),
        100.0 * share,
        mask_path.display()
    );
    Ok(())
}
