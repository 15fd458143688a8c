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

use prunus::data::Layout;
use prunus::models::UNetConfig;
use prunus::surgery::Network;

#[path = "common/aerial.rs"]
mod aerial;
#[path = "common/args.rs"]
mod args;

fn main() {
    args::main_with(run);
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = args::Args::from_env();
    let base = args.num("--base", 32.0)? as usize;
    let depth = args.num("--depth", 4.0)? as usize;
    aerial::train_and_prune(&args, Layout::Airs, |device| {
        Ok(Network::UNet(
            UNetConfig::standard(3, 1, base, depth).init(device)?,
        ))
    })
}
