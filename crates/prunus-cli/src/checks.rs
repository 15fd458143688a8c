//! What the CLI checks before it starts any work: option values, output paths, the input size a
//! network takes, and the memory a command will need.

use std::path::Path;

use prunus::models::Costed;
use prunus::surgery::Architecture;

use crate::Result;
use crate::usage;

/// A count that must be at least 1 (`--batch`, `--runs`, `--tile`).
pub fn positive(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Windows of `tile` pixels overlapping by `overlap` (`--tile`/`--overlap` of `infer`,
/// `--window`/`--window-overlap` of `--whole-tiles`): the overlap at most half a window, so
/// that neighbouring windows advance.
pub fn tiling(
    [tile_flag, overlap_flag]: [&str; 2],
    tile: usize,
    overlap: usize,
) -> Result<prunus::data::Tiling> {
    if 2 * overlap > tile {
        return Err(usage(format!(
            "{overlap_flag} {overlap} must be at most half of {tile_flag} {tile}: neighbouring \
             windows would advance by {} pixels",
            tile.saturating_sub(overlap).max(1)
        )));
    }
    Ok(prunus::data::Tiling::new(tile, overlap))
}

/// `METRIC=POINTS` of `--also`: a metric the CLI knows and a finite tolerance ≥ 0.
pub fn also(text: &str) -> std::result::Result<(crate::MetricArg, f64), String> {
    use clap::ValueEnum;
    let (name, points) = text
        .split_once('=')
        .ok_or_else(|| format!("expected METRIC=POINTS (e.g. accuracy=0.5), got {text:?}"))?;
    let metric = crate::MetricArg::from_str(name.trim(), true)?;
    match points.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok((metric, p)),
        Ok(p) => Err(format!("the tolerance must be finite and ≥ 0, got {p}")),
        Err(e) => Err(format!("{points:?}: {e}")),
    }
}

/// A probability strictly between 0 and 1 (`--threshold`): 0 or 1 would make every pixel one
/// class whatever the network says.
pub fn probability(text: &str) -> std::result::Result<f32, String> {
    match text.parse::<f32>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        Ok(p) => Err(format!("must be strictly between 0 and 1, got {p}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Refuses to write `out` before any work is done: it exists (a file, a folder or a symlink,
/// even a dangling one) and `force` is not set, or it is a folder, or its folder is missing or
/// cannot be written.
pub fn output(out: &Path, force: bool, flag: &str) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(out) {
        if out.is_dir() {
            return Err(usage(format!(
                "{flag} {} is a folder, not a file",
                out.display()
            )));
        }
        if !force {
            let what = if meta.file_type().is_symlink() {
                "exists (a symbolic link)"
            } else {
                "exists"
            };
            return Err(usage(format!(
                "{} {what}; pass --force to replace it",
                out.display()
            )));
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(prunus::Error::Io {
            path: out.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the folder {} does not exist", parent.display()),
            ),
        }
        .into());
    }
    // The same check a write will make: can a file be created there?
    let probe = parent.join(format!(".prunus-write-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(prunus::Error::Io {
            path: out.to_path_buf(),
            source,
        }
        .into()),
    }
}

/// Refuses an image path whose extension prunus cannot write.
pub fn mask_extension(path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png" | "tif" | "tiff") => Ok(()),
        _ => Err(usage(format!(
            "{}: the mask's extension must be .png, .tif or .tiff",
            path.display()
        ))),
    }
}

/// The network's total down-sampling: inputs are padded to a multiple of it.
pub fn alignment(architecture: &Architecture) -> usize {
    match architecture {
        Architecture::UNet(c) => 1 << c.depth(),
        Architecture::TernausNet(_) => 32,
    }
}

/// Refuses an input side the network cannot take (not a multiple of its down-sampling) and
/// work that would need more memory than the machine has; `training` counts what a backward
/// pass and Adam keep. Returns the network's cost at that size.
pub fn fits(
    what: &str,
    architecture: &Architecture,
    size: usize,
    batch: usize,
    training: bool,
) -> Result<prunus::models::CostReport> {
    if size == 0 {
        return Err(usage("--size must be at least 1"));
    }
    match architecture {
        Architecture::UNet(c) => c.validate()?,
        Architecture::TernausNet(c) => c.validate()?,
    }
    let align = alignment(architecture);
    if !size.is_multiple_of(align) {
        return Err(usage(format!(
            "--size {size} does not fit this {}: it must be a multiple of {align}",
            architecture.family()
        )));
    }
    let cost = architecture.cost([size, size])?;
    prunus::check_memory(what, &cost, batch, training)?;
    Ok(cost)
}
