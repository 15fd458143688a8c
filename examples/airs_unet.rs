//! U-Net on AIRS (Aerial Imagery for Roof Segmentation): train with gates, prune to a 1-point
//! IoU tolerance on the validation tiles, measure on the test tiles, report and plot.
//!
//! ```sh
//! cargo run --release --example airs_unet -- --data /data/AIRS
//! ```
//!
//! `--data` holds `train/{image,label}`, `val/{image,label}` and `test/{image,label}`. Other options: `--base N`
//! (first-level filters, 32), `--depth N` (4), `--size PX` (crop, 256), `--train N` (crops per
//! epoch), `--valid N`, `--test N` (grid crops spread over every tile), `--epochs N`, `--batch N`, `--tolerance POINTS`,
//! `--device NAME`, `--whole-tiles` (validate and test on whole tiles through the seamless tiling, windows of
//! `--window PX`, 512, instead of on grid crops), `--run DIR` (runs/airs; interrupted training and pruning resume).

use clap::Parser;
use prunus::data::Layout;
use prunus::models::UNetConfig;
use prunus::surgery::Network;

#[path = "common/aerial.rs"]
mod aerial;
#[path = "common/cli.rs"]
mod cli;

#[derive(Parser, Debug)]
#[command(about = "U-Net on AIRS: train with gates, prune to an IoU tolerance, report, plot")]
struct Args {
    /// First-level filters of the U-Net (doubled at every level down).
    #[arg(long, value_name = "N", default_value_t = 32)]
    base: usize,
    /// Levels of the U-Net.
    #[arg(long, value_name = "N", default_value_t = 4)]
    depth: usize,
    #[command(flatten)]
    aerial: aerial::AerialArgs,
}

fn main() {
    cli::main_with(run);
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (base, depth) = (args.base, args.depth);
    aerial::train_and_prune(&args.aerial, Layout::Airs, |device| {
        Ok(Network::UNet(
            UNetConfig::standard(3, 1, base, depth).init(device)?,
        ))
    })
}
