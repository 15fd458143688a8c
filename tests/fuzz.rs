//! Mutation fuzzing of everything prunus reads from a user's disk: images (TIFF strips,
//! LZW/Deflate, 8/16-bit, 1/3/4 bands; PNG), model files, and a run folder's saved search
//! state. Every mutant of a valid file — bit flips, truncation, overwritten length, size and
//! count fields (0, 1, the maximum, any value) — must end in `Ok` or a typed error, never a
//! panic or an abort, and no single allocation may exceed the target's stated ceiling.
//!
//! Short run (the test suite): 1,500 random mutants of every seed file plus its truncations.
//! Long run (docs/reliability.md): `PRUNUS_FUZZ_CASES=100000 cargo test --workspace fuzz`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::Device;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prunus::data::{Raster, RgbImage, write_png};
use prunus::models::UNetConfig;
use prunus::plan::{RunFolder, SearchConfig, SearchState};
use prunus::surgery::{ModelFile, Network, Prunable, checksum};
use tiff::encoder::{Compression, DeflateLevel, TiffEncoder, colortype};

/// Counts the largest single allocation, to hold the readers to their ceiling.
struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Held by every fuzzing run (see [`fuzz`]).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The image readers' pixel limit in this test: a window of at most 2^16 pixels.
const MAX_PIXELS: usize = 1 << 16;
/// The stated ceiling of any one allocation while reading such a file: the TIFF decoder's
/// chunk buffer, which prunus bounds by `max(256 MiB, 8 B × the pixel limit)` (the `tiff`
/// crate's default, never lowered so that ordinary files with large strips still open) — not the
/// gigabytes a mutated header can claim. PNG is bounded by the same pixel limit.
const IMAGE_CEILING: usize = 256 << 20;
/// A model file's preamble: magic (8 bytes), version (4), header and weights lengths (8 + 8),
/// checksum (8).
const PREAMBLE: usize = 36;
/// Model files and run folders of a few kilobytes: nothing they claim may make prunus allocate
/// more than 64 MiB at once.
const FILE_CEILING: usize = 64 << 20;

fn encoder(bytes: &mut Vec<u8>, c: Compression) -> TiffEncoder<std::io::Cursor<&mut Vec<u8>>> {
    TiffEncoder::new(std::io::Cursor::new(bytes))
        .unwrap()
        .with_compression(c)
}

fn cases() -> u32 {
    std::env::var("PRUNUS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

/// A value that changes irregularly with the place.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 11) as u8
}

/// The valid files every mutant starts from, as bytes.
fn seeds(dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let (w, h) = (23u32, 17u32);
    let n = (w * h) as usize;
    let rgb: Vec<u8> = (0..3 * n).map(pattern).collect();
    let rgba: Vec<u8> = (0..4 * n).map(pattern).collect();
    let grey16: Vec<u16> = (0..n).map(|i| u16::from(pattern(i)) * 257).collect();
    let mut files = Vec::new();
    let mut tiff = |name: &'static str, write: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = Vec::new();
        write(&mut bytes);
        files.push((name, bytes));
    };
    tiff("rgb8-lzw.tif", &|b| {
        let mut e = encoder(b, Compression::Lzw);
        e.write_image::<colortype::RGB8>(w, h, &rgb).unwrap();
    });
    tiff("grey16-deflate.tif", &|b| {
        let mut e = encoder(b, Compression::Deflate(DeflateLevel::Balanced));
        e.write_image::<colortype::Gray16>(w, h, &grey16).unwrap();
    });
    tiff("rgba8.tif", &|b| {
        let mut e = encoder(b, Compression::Uncompressed);
        e.write_image::<colortype::RGBA8>(w, h, &rgba).unwrap();
    });
    let png = dir.join("seed.png");
    write_png(&png, w as usize, h as usize, 3, &rgb).unwrap();
    files.push(("rgb8.png", fs::read(&png).unwrap()));
    files
}

/// Reads image `path` every way prunus does.
fn read_image(path: &Path) {
    if path.extension().is_some_and(|e| e == "tif")
        && let Ok(mut r) = Raster::open_with_limit(path, MAX_PIXELS)
    {
        let [h, w] = r.size();
        let _ = r.read_window_rgb(0, 0, w, h);
        let _ = r.read_window_raw(w / 3, h / 3, w - w / 3, h - h / 3);
    }
    let _ = RgbImage::open_with_limit(path, MAX_PIXELS);
}

/// Runs `read`, catching a panic: `Err` with its message.
fn no_panic(read: impl FnOnce()) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// One change to a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip bit `bit` of the byte at `at` (modulo the length).
    Flip { at: usize, bit: u8 },
    /// Write a 16- or 32-bit little- or big-endian field at `at`: 0, 1, the maximum, or a
    /// value of the generator's choosing (lengths, offsets, dimensions, counts).
    Field { at: usize, wide: bool, value: u32 },
    /// Keep the first `len` bytes (modulo the length).
    Truncate { len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(0x7fff_ffff),
        Just(65_535),
        any::<u32>()
    ];
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        3 => (any::<usize>(), any::<bool>(), value).prop_map(|(at, wide, value)| Mutation::Field { at, wide, value }),
        1 => any::<usize>().prop_map(|len| Mutation::Truncate { len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match *m {
        Mutation::Flip { at, bit } => {
            if let Some(b) = bytes.get_mut(at % n) {
                *b ^= 1 << bit;
            }
        }
        Mutation::Field { at, wide, value } => {
            let field: Vec<u8> = if wide {
                value.to_le_bytes().to_vec()
            } else {
                (value as u16).to_le_bytes().to_vec()
            };
            let at = at % n;
            for (i, v) in field.into_iter().enumerate() {
                if let Some(b) = bytes.get_mut(at + i) {
                    *b = v;
                }
            }
        }
        Mutation::Truncate { len } => bytes.truncate(len % n),
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prunus-fuzz-{name}-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Feeds every truncation of `seed` (at most 2,000, evenly spread) and [`cases`] random
/// mutants to `read`, which writes them where its reader expects them; fails on a panic or an
/// allocation above `ceiling`. Returns the mutants read and the largest allocation seen.
fn fuzz(name: &str, seed: &[u8], ceiling: usize, read: &dyn Fn(&[u8])) -> (usize, usize) {
    // The allocation counter is global: one target at a time, or the tests' threads would
    // count each other's allocations.
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut total = 0;
    let mut seen = 0;
    let mut check = |bytes: &[u8], what: &dyn Fn() -> String| -> Result<(), String> {
        LARGEST.store(0, Ordering::Relaxed);
        no_panic(|| read(bytes)).map_err(|e| format!("{name}: {} panicked: {e}", what()))?;
        let largest = LARGEST.load(Ordering::Relaxed);
        seen = seen.max(largest);
        total += 1;
        if largest > ceiling {
            return Err(format!(
                "{name}: {} allocated {largest} bytes at once",
                what()
            ));
        }
        Ok(())
    };
    let step = seed.len().div_ceil(2000).max(1);
    for len in (0..seed.len()).step_by(step) {
        check(&seed[..len], &|| format!("cut to {len} bytes")).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(mutation(), 1..=4);
    let check = std::cell::RefCell::new(check);
    let result = runner.run(&strategy, |mutations| {
        let mut bytes = seed.to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let outcome = (check.borrow_mut())(&bytes, &|| format!("{mutations:?}"));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    (total, seen)
}

#[test]
fn fuzz_images_are_read_or_refused_never_panic_and_stay_under_the_ceiling() {
    let dir = scratch_dir("images");
    for (name, seed) in seeds(&dir) {
        let path = dir.join(format!("mutant-{name}"));
        let read = |bytes: &[u8]| {
            fs::write(&path, bytes).unwrap();
            read_image(&path);
        };
        let (n, largest) = fuzz(name, &seed, IMAGE_CEILING, &read);
        eprintln!("{name}: {n} mutants, largest single allocation {largest} bytes");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn fuzz_model_files_load_or_are_refused_never_panic() {
    let device = Device::flex();
    let unet = UNetConfig::standard(3, 1, 2, 1).init(&device).unwrap();
    let seed = ModelFile::original(Network::UNet(unet), [16, 16])
        .unwrap()
        .to_bytes()
        .unwrap();
    let read = |bytes: &[u8]| {
        let _ = ModelFile::<Network>::from_bytes(bytes, &device);
    };
    let (n, largest) = fuzz("model file", &seed, FILE_CEILING, &read);
    eprintln!(
        "model file of {} bytes: {n} mutants, largest single allocation {largest} bytes",
        seed.len()
    );
    // Most mutants above fail the checksum. A crafted file carries a valid one: reseal every
    // mutant (checksum of header and weights recomputed, preamble kept) so that the header's
    // parser, the architecture's rebuild and the weights' loader see the mutations.
    let resealed = |bytes: &[u8]| {
        let mut bytes = bytes.to_vec();
        if bytes.len() >= PREAMBLE {
            let header_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
            let split = (PREAMBLE as u64)
                .saturating_add(header_len)
                .min(bytes.len() as u64);
            let (head, weights) = bytes[PREAMBLE..].split_at(split as usize - PREAMBLE);
            let sum = checksum(&[head, weights]);
            bytes[28..36].copy_from_slice(&sum.to_le_bytes());
        }
        let _ = ModelFile::<Network>::from_bytes(&bytes, &device);
    };
    let (n, largest) = fuzz("model file, resealed", &seed, FILE_CEILING, &resealed);
    eprintln!("resealed model file: {n} mutants, largest single allocation {largest} bytes");
}

#[test]
fn fuzz_run_states_resume_or_are_refused_never_panic() {
    let device = Device::flex();
    let unet = UNetConfig::standard(3, 1, 2, 1).init(&device).unwrap();
    let dir = scratch_dir("run");
    let run = RunFolder::new(&dir, "settings", 7);
    let groups = unet.channel_groups();
    let mut state =
        SearchState::start(&groups, &90.0.into(), 1000, &SearchConfig::default()).unwrap();
    // A plan that keeps some channels of the first group, as an accepted step leaves it.
    let first = &groups[0].name;
    state.kept.insert(first.clone(), vec![0]);
    run.save_state(&state).unwrap();
    let file = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("the run folder holds its state as JSON");
    let seed = fs::read(&file).unwrap();
    let read = |bytes: &[u8]| {
        fs::write(&file, bytes).unwrap();
        let _ = run.resume(&unet);
    };
    let (n, largest) = fuzz("run state", &seed, FILE_CEILING, &read);
    eprintln!(
        "run state of {} bytes: {n} mutants, largest single allocation {largest} bytes",
        seed.len()
    );
    let _ = fs::remove_dir_all(&dir);
}
