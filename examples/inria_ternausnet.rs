//! TernausNet on the Inria Aerial Image Labeling dataset, as in the paper: train with gates,
//! prune to a 1-point IoU tolerance on the validation tiles, measure on held-out test tiles,
//! report and plot.
//!
//! ```sh
//! cargo run --release --example inria_ternausnet -- --data /data/AerialImageDataset --vgg11 vgg11.pth
//! ```
//!
//! `--data` is the `AerialImageDataset` folder (or the folder holding it); tiles 1–5 of every
//! city are the validation split, tiles 6–8 the test split, the rest training. `--vgg11` loads torchvision's ImageNet VGG11 weights
//! (`vgg11-8a719046.pth`) into the encoder; without it the encoder starts random. Other options:
//! `--filters N` (decoder width, 32), `--size PX` (crop, 256), `--train N` (crops per epoch),
//! `--valid N`, `--test N` (grid crops spread over every tile), `--epochs N`, `--batch N`, `--tolerance POINTS`, `--device NAME`,
//! `--whole-tiles` (validate and test on whole tiles through the seamless tiling, windows of
//! `--window PX`, 512, instead of on grid crops), `--run DIR` (runs/inria; interrupted training and pruning resume).

use std::path::PathBuf;

use clap::Parser;
use prunus::data::Layout;
use prunus::models::TernausNetConfig;
use prunus::surgery::Network;

#[path = "common/aerial.rs"]
mod aerial;
#[path = "common/cli.rs"]
mod cli;

#[derive(Parser, Debug)]
#[command(about = "TernausNet on Inria: train with gates, prune to an IoU tolerance, report, plot")]
struct Args {
    /// The decoder's width (TernausNet's `num_filters`).
    #[arg(long, value_name = "N", default_value_t = 32)]
    filters: usize,
    /// torchvision's ImageNet VGG11 weights (`vgg11-8a719046.pth`) for the encoder; without it
    /// the encoder starts random.
    #[arg(long, value_name = "FILE")]
    vgg11: Option<PathBuf>,
    #[command(flatten)]
    aerial: aerial::AerialArgs,
}

fn main() {
    cli::main_with(run);
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let filters = args.filters;
    let vgg11 = args.vgg11;
    aerial::train_and_prune(&args.aerial, Layout::Inria, |device| {
        let net = TernausNetConfig::standard(1, filters).init(device)?;
        let net = match &vgg11 {
            Some(path) => net.load_vgg11_encoder(path)?,
            None => net,
        };
        Ok(Network::TernausNet(net))
    })
}
