//! `prunus infer`: one image, a folder of images or a glob pattern segmented band by band into
//! masks, GeoTIFF georeferencing kept, restartable over a folder.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::tensor::Device;
use clap::Args;
use prunus::data::{Georeferencing, ImageReader, MaskWriter, Tiling, is_tiff};
use prunus::surgery::{ModelFile, Network};

use crate::{Result, checks, same_file, usage};

#[derive(Args)]
pub struct InferArgs {
    /// The model file.
    #[arg(long, short)]
    model: PathBuf,
    /// What to segment: an image (.png, .tif or .tiff, any size), a folder of them, or a pattern
    /// in quotes whose folder and file names may hold * and ? ("tiles/*.tif",
    /// "inria/*/images/austin*.tif").
    #[arg(long, short)]
    input: PathBuf,
    /// The mask of one image (.png, .tif or .tiff; must not exist yet unless --force), or, for a
    /// folder or pattern, the folder of masks (created if missing; each mask has its image's file
    /// name; masks already there are kept and their images skipped, so an interrupted run
    /// resumes). 255 building, 0 not; a TIFF mask is tiled, Deflate-compressed and keeps a
    /// GeoTIFF's georeferencing.
    #[arg(long, short)]
    output: PathBuf,
    /// Side of a tile in pixels (at least the network's down-sampling: 16 for a depth-4 U-Net,
    /// 32 for TernausNet).
    #[arg(long, default_value_t = 512, value_parser = checks::positive)]
    tile: usize,
    /// Least overlap between neighbouring tiles in pixels; at most half of --tile.
    #[arg(long, default_value_t = 64)]
    overlap: usize,
    /// Probability above which a pixel is a building, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.5, value_parser = checks::probability)]
    threshold: f32,
    /// Tiles per forward pass.
    #[arg(long, default_value_t = 4, value_parser = checks::positive)]
    batch: usize,
    /// Replace --output if it exists; for a folder, segment every image again.
    #[arg(long)]
    force: bool,
}

/// The network (a copy on each device) and how its windows are cut.
struct Segmenter<'a> {
    networks: Vec<(Network, Device)>,
    tiling: Tiling,
    align: usize,
    args: &'a InferArgs,
}

/// What segmenting one image gave.
struct Segmented {
    width: usize,
    height: usize,
    buildings: u64,
    seconds: f64,
}

pub fn infer_cmd(a: &InferArgs, devices: &[Device]) -> Result<()> {
    let device = &devices[0];
    let tiling = checks::tiling(["--tile", "--overlap"], a.tile, a.overlap)?;
    let images = inputs(&a.input)?;
    let many = images.is_none();
    if !many {
        if same_file(&a.input, &a.output) {
            return Err(usage(
                "--output is the input image; prunus never overwrites it",
            ));
        }
        checks::mask_extension(&a.output)?;
        checks::output(&a.output, a.force, "--output")?;
    } else if a.output.exists() && !a.output.is_dir() {
        return Err(usage(format!(
            "--output {} is a file; for a folder or a pattern of images it must be a folder",
            a.output.display()
        )));
    }
    let file = ModelFile::<Network>::load(&a.model, device)?;
    let align = checks::alignment(&file.header.architecture);
    if a.tile < align {
        return Err(usage(format!(
            "--tile {} is smaller than this network's down-sampling ({align} pixels)",
            a.tile
        )));
    }
    checks::fits(
        "inference",
        &file.header.architecture,
        a.tile.div_ceil(align) * align,
        a.batch,
        false,
    )?;
    let mut networks = vec![(file.network, device.clone())];
    for other in &devices[1..] {
        networks.push((
            ModelFile::<Network>::load(&a.model, other)?.network,
            other.clone(),
        ));
    }
    let segmenter = Segmenter {
        networks,
        tiling,
        align,
        args: a,
    };
    match images {
        Some(image) => {
            if devices.len() > 1 {
                eprintln!("note: one image is segmented on the first device only");
            }
            let done = segmenter.segment(0, &image, &a.output)?;
            out!(
                "{}: {}×{} pixels in {} tiles, {:.2}% building, {:.1} s → {}",
                image.display(),
                done.width,
                done.height,
                tiling.tiles(done.width, done.height).len(),
                100.0 * done.buildings as f64 / (done.width * done.height) as f64,
                done.seconds,
                a.output.display()
            );
            Ok(())
        }
        None => segmenter.folder(&list(&a.input)?),
    }
}

/// `None` when `input` names several images (a folder or a pattern), else the image itself.
fn inputs(input: &Path) -> Result<Option<PathBuf>> {
    if input.is_dir() || (!input.exists() && is_pattern(input)) {
        Ok(None)
    } else {
        Ok(Some(input.to_path_buf()))
    }
}

fn is_pattern(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?'])
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters and `?` for one.
fn matches(pattern: &[char], name: &[char]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, _) => name.is_empty(),
        (Some(('*', rest)), _) => (0..=name.len()).any(|skip| matches(rest, &name[skip..])),
        (Some((p, rest)), Some((n, name))) => (*p == '?' || p == n) && matches(rest, name),
        (Some(_), None) => false,
    }
}

/// The paths matching a pattern whose components may hold `*` and `?` (`data/*/images/*.tif`),
/// component by component; hidden entries match only a pattern that starts with a dot.
fn expand(pattern: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = vec![PathBuf::new()];
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        if !text.contains(['*', '?']) {
            paths.iter_mut().for_each(|p| p.push(component));
            continue;
        }
        let wanted: Vec<char> = text.chars().collect();
        let mut next = Vec::new();
        for dir in &paths {
            let listed = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let Ok(entries) = std::fs::read_dir(listed) else {
                continue;
            };
            for entry in entries {
                let name = entry?.file_name();
                let name: Vec<char> = name.to_string_lossy().chars().collect();
                if matches(&wanted, &name) && (name[0] != '.' || wanted[0] == '.') {
                    next.push(dir.join(name.iter().collect::<String>()));
                }
            }
        }
        paths = next;
    }
    Ok(paths)
}

fn is_image(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str());
    let ext = ext.map(str::to_ascii_lowercase);
    path.is_file() && matches!(ext.as_deref(), Some("png" | "tif" | "tiff"))
}

/// The images of a folder (not its subfolders) or of a glob pattern, sorted by path.
fn list(input: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| prunus::Error::Io {
        path: input.to_path_buf(),
        source,
    };
    let mut images: Vec<PathBuf> = if input.is_dir() {
        let entries = std::fs::read_dir(input).map_err(io)?;
        let paths: std::io::Result<Vec<PathBuf>> = entries.map(|e| e.map(|e| e.path())).collect();
        paths.map_err(io)?
    } else {
        expand(input).map_err(io)?
    };
    images.retain(|p| is_image(p));
    images.sort();
    if images.is_empty() {
        return Err(prunus::Error::Io {
            path: input.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no .png, .tif or .tiff images there",
            ),
        }
        .into());
    }
    Ok(images)
}

/// Holds the lock of a folder of masks: one `prunus infer` writes into it at a time.
fn lock(dir: &Path) -> Result<prunus::FolderLock> {
    prunus::lock_folder_with(dir, ".prunus-infer.lock").map_err(|e| match e {
        prunus::Error::Busy { .. } => usage(format!(
            "another prunus infer is writing masks into {}",
            dir.display()
        )),
        e => e.into(),
    })
}

/// Removes what a killed run left of `mask`: its hidden temporary files (`.NAME.PID.tmp`).
fn remove_leftovers(mask: &Path) {
    let (Some(dir), Some(name)) = (mask.parent(), mask.file_name()) else {
        return;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Segmenter<'_> {
    /// Segments `image` into the mask `output` on the `device`-th device, a band of windows at a
    /// time.
    fn segment(
        &self,
        device: usize,
        image: &Path,
        output: &Path,
    ) -> std::result::Result<Segmented, prunus::Error> {
        let start = Instant::now();
        let mut reader = ImageReader::open(image)?;
        let [height, width] = reader.size();
        // A GeoTIFF's mask keeps its georeferencing (when the mask is a TIFF too).
        let geo = if is_tiff(image) {
            Georeferencing::read(image)?
        } else {
            None
        };
        if geo.is_some() && !is_tiff(output) {
            eprintln!(
                "note: {} is georeferenced; a PNG mask cannot carry it (write a .tif to keep it)",
                image.display()
            );
        }
        let geo = geo.filter(|_| is_tiff(output));
        let mut mask = MaskWriter::create(output, width, height, geo.as_ref())?;
        let threshold = self.args.threshold;
        let mut buildings = 0u64;
        let terminal = std::io::stderr().is_terminal();
        let (network, device) = &self.networks[device];
        prunus::predict_rows(
            network,
            &mut reader,
            self.tiling,
            self.align,
            self.args.batch,
            device,
            |y, probs| {
                let rows: Vec<bool> = probs.iter().map(|&p| p > threshold).collect();
                buildings += rows.iter().filter(|&&b| b).count() as u64;
                mask.write_rows(&rows)?;
                if terminal {
                    let done = y + rows.len() / width;
                    eprint!("\r{}: {done}/{height} rows", image.display());
                }
                Ok(())
            },
        )?;
        if terminal {
            eprint!("\r\x1b[K");
        }
        mask.finish()?;
        Ok(Segmented {
            width,
            height,
            buildings,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Segments every image into the folder of masks, skipping those whose mask is there; with
    /// several devices, each takes the next image in turn.
    fn folder(&self, images: &[PathBuf]) -> Result<()> {
        let a = self.args;
        let dir = &a.output;
        std::fs::create_dir_all(dir).map_err(|source| prunus::Error::Io {
            path: dir.clone(),
            source,
        })?;
        let _lock = lock(dir)?;
        let masks = mask_paths(images, dir)?;
        let progress = Mutex::new(Progress::new(images.len()));
        let next = AtomicUsize::new(0);
        // Each device takes the next image until none is left.
        let work = |device: usize| {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(image), Some(mask)) = (images.get(i), masks.get(i)) else {
                    return;
                };
                self.folder_image(device, i, image, mask, &progress);
            }
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..self.networks.len())
                .map(|device| scope.spawn(move || work(device)))
                .collect();
            work(0);
            for worker in workers {
                worker.join().expect("a worker panicked");
            }
        });
        let p = progress.into_inner().unwrap();
        let (n, seconds) = (p.images, p.start.elapsed().as_secs_f64());
        out!(
            "done: {} segmented, {} skipped (mask already there); {:.1} Mpixels in {seconds:.1} \
             s, {:.2} Mpixel/s → {}",
            p.segmented,
            p.skipped,
            p.pixels as f64 / 1e6,
            p.pixels as f64 / seconds.max(1e-9) / 1e6,
            dir.display()
        );
        if p.failed > 0 {
            return Err(prunus::Error::Io {
                path: a.input.clone(),
                source: std::io::Error::other(format!(
                    "{} of {n} images could not be segmented (each error is above); run again to \
                     retry them",
                    p.failed
                )),
            }
            .into());
        }
        Ok(())
    }
}

impl Segmenter<'_> {
    /// The `i`-th image of a folder: skipped when its mask is there, else segmented; a line on
    /// stdout either way, or the error and its causes on stderr (the other images go on).
    fn folder_image(
        &self,
        device: usize,
        i: usize,
        image: &Path,
        mask: &Path,
        progress: &Mutex<Progress>,
    ) {
        let n = progress.lock().unwrap().images;
        let name = image.file_name().unwrap_or_default().to_string_lossy();
        if mask.exists() && !self.args.force {
            progress.lock().unwrap().skipped += 1;
            say(format!("[{}/{n}] {name}: mask exists, skipped", i + 1));
            return;
        }
        remove_leftovers(mask);
        let done = match self.segment(device, image, mask) {
            Ok(done) => done,
            Err(e) => {
                let messages = prunus::error_messages(&e);
                let mut lines = format!("error: [{}/{n}] {}", i + 1, messages[0]);
                for cause in &messages[1..] {
                    lines.push_str(&format!("\ncaused by: {cause}"));
                }
                eprintln!("{lines}");
                progress.lock().unwrap().failed += 1;
                return;
            }
        };
        let size = (done.width * done.height) as u64;
        let mut p = progress.lock().unwrap();
        p.pixels += size;
        p.segmented += 1;
        let rate = p.pixels as f64 / p.start.elapsed().as_secs_f64() / 1e6;
        say(format!(
            "[{}/{n}] {name}: {}×{}, {:.2}% building, {:.1} s ({:.2} Mpixel/s; {rate:.2} over the \
             run)",
            i + 1,
            done.width,
            done.height,
            100.0 * done.buildings as f64 / size as f64,
            done.seconds,
            size as f64 / done.seconds / 1e6,
        ));
    }
}

/// What a folder's run has done so far.
struct Progress {
    start: Instant,
    images: usize,
    pixels: u64,
    segmented: usize,
    skipped: usize,
    /// Images that could not be segmented.
    failed: usize,
}

impl Progress {
    fn new(images: usize) -> Self {
        Self {
            start: Instant::now(),
            images,
            pixels: 0,
            segmented: 0,
            skipped: 0,
            failed: 0,
        }
    }
}

/// A line on stdout from any thread; a closed stdout only loses the line.
fn say(line: String) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Each image's mask in `dir`: its file name. Refuses two images of one name and a mask that
/// would be an image.
fn mask_paths(images: &[PathBuf], dir: &Path) -> Result<Vec<PathBuf>> {
    let masks: Vec<PathBuf> = images
        .iter()
        .map(|image| dir.join(image.file_name().unwrap_or_default()))
        .collect();
    let mut names: Vec<_> = masks.iter().collect();
    names.sort();
    if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
        return Err(usage(format!(
            "two images are named {}: their masks would collide in {}",
            pair[0].file_name().unwrap_or_default().to_string_lossy(),
            dir.display()
        )));
    }
    for (image, mask) in images.iter().zip(&masks) {
        if same_file(image, mask) {
            return Err(usage(format!(
                "--output {} holds the images themselves; prunus never overwrites them",
                dir.display()
            )));
        }
    }
    Ok(masks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matching(pattern: &str, name: &str) -> bool {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        matches(&chars(pattern), &chars(name))
    }

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        assert!(matching("*.tif", "austin1.tif"));
        assert!(matching("*.tif", ".tif"));
        assert!(!matching("*.tif", "austin1.tiff"));
        assert!(matching("austin?.t*", "austin7.tiff"));
        assert!(!matching("austin?.tif", "austin12.tif"));
        assert!(matching("*", ""));
        assert!(matching("a*b*c", "axxbyyc"));
        assert!(!matching("a*b*c", "axxbyy"));
        assert!(matching("é?", "éa"));
    }
}
