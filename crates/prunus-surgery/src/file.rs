//! Self-describing model files: architecture, weights and provenance in one file.
//!
//! Layout (little-endian):
//!
//! | bytes | content |
//! | --- | --- |
//! | 8 | magic `PRUNUSMF` |
//! | 4 | format version (2; version 1 files, with an FNV-1a checksum, are still read) |
//! | 8 | length of the header (JSON) |
//! | 8 | length of the weights (Burnpack) |
//! | 8 | XXH3-64 checksum of header and weights |
//! | … | header: [`ModelHeader`] as JSON |
//! | … | weights: the network's parameters in Burn's Burnpack format |

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::store::BurnpackStore;
use burn::tensor::{Bytes, Device};
use prunus_models::{CostReport, Costed};
use serde::{Deserialize, Serialize};

use crate::error::{ModelFileError, SurgeryError, WriteError};
use crate::identity::first_non_finite;
use crate::network::{Architecture, Network};
use crate::plan::PruningPlan;
use crate::prunable::{fold_batch_norms, fold_gates};
use crate::rebuild::Rebuild;
use prunus_layers::{LayerMut, Prunable};

const MAGIC: &[u8; 8] = b"PRUNUSMF";
const VERSION: u32 = 2;
const PREAMBLE: usize = 8 + 4 + 8 + 8 + 8;

/// Where a network came from: the original it was pruned from and what it kept. `A` is the
/// architecture type of the network ([`Rebuild::Architecture`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance<A = Architecture> {
    /// The unpruned network's architecture.
    pub original: A,
    /// The unpruned network's cost at [`Provenance::input_size`].
    pub original_cost: CostSummary,
    /// The input size costs are counted at, `[height, width]`.
    pub input_size: [usize; 2],
    /// Kept channel indices per group, relative to the original network. A group absent here
    /// kept all its channels.
    pub kept: BTreeMap<String, Vec<usize>>,
}

impl Provenance {
    /// The provenance of an unpruned bundled network: itself, everything kept, its cost counted
    /// at `input_size`.
    ///
    /// # Errors
    /// When the network cannot take `input_size`.
    pub fn original(network: &Network, input_size: [usize; 2]) -> Result<Self, SurgeryError> {
        let original = network.architecture();
        Ok(Self::new(original.clone(), &original.cost(input_size)?))
    }
}

impl<A> Provenance<A> {
    /// The provenance of an unpruned network of architecture `original` whose cost (counted or
    /// measured, e.g. with [`measure_cost`](prunus_models::measure_cost)) is `cost`: itself,
    /// everything kept.
    pub fn new(original: A, cost: &CostReport) -> Self {
        Self {
            original,
            original_cost: CostSummary::from(cost),
            input_size: cost.input_size,
            kept: BTreeMap::new(),
        }
    }

    /// Records a pruning step whose `plan` is relative to the current network: the kept
    /// indices become relative to the original.
    pub fn record(&mut self, plan: &PruningPlan) {
        for (group, kept_now) in plan.iter() {
            let previous = self.kept.get(group);
            let composed = kept_now
                .iter()
                .map(|&i| previous.map_or(i, |p| p[i]))
                .collect();
            self.kept.insert(group.to_string(), composed);
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over `path`. A reader sees the old file or the new one, never a partial one.
///
/// # Errors
/// [`SurgeryError::Write`] naming `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SurgeryError> {
    let name = path
        .file_name()
        .ok_or_else(|| write_error(path, WriteError::NoFileName))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        write_error(path, WriteError::Io(e))
    })
}

/// Parameters, gates and multiply-adds of a network at one input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostSummary {
    /// Parameters, gates excluded.
    pub params: u64,
    /// Gates.
    pub gates: u64,
    /// Multiply-adds per image (FLOPs = 2 × this).
    pub macs: u64,
}

impl From<&CostReport> for CostSummary {
    fn from(cost: &CostReport) -> Self {
        Self {
            params: cost.params(),
            gates: cost.gates(),
            macs: cost.macs(),
        }
    }
}

/// The JSON header of a model file; `A` is the network's [`Rebuild::Architecture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader<A = Architecture> {
    /// The network's architecture now (pruned widths).
    pub architecture: A,
    /// Whether the gates are folded into the weights (the layers then have no gates).
    pub folded: bool,
    /// Whether the BatchNorms are folded into the convolutions (an inference-only network).
    #[serde(default)]
    pub norms_folded: bool,
    /// Where the network came from.
    pub provenance: Provenance<A>,
    /// The prunus version that wrote the file.
    pub writer: String,
}

/// A network with its header, as stored in a model file: a bundled [`Network`] by default, or
/// any network that implements [`Rebuild`].
#[derive(Debug)]
pub struct ModelFile<N: Rebuild = Network> {
    /// The network.
    pub network: N,
    /// Its architecture, gate state and provenance.
    pub header: ModelHeader<N::Architecture>,
}

/// XXH3-64 of `parts` taken one after another: the model file's checksum.
pub fn checksum(parts: &[&[u8]]) -> u64 {
    let mut hash = xxhash_rust::xxh3::Xxh3::new();
    for part in parts {
        hash.update(part);
    }
    hash.digest()
}

/// FNV-1a 64 of `parts`: the checksum of format-1 files, which are still read.
fn fnv1a_v1(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for &byte in parts.iter().flat_map(|p| p.iter()) {
        hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Whether no gated producer or member of `network` carries a BatchNorm (they were folded, or
/// there were none — folding a fresh network on load is then a no-op): [`Rebuild::norms_folded`]
/// by default.
pub(crate) fn no_gated_norms<N: Prunable + Clone>(network: &N) -> bool {
    let mut network = network.clone();
    let paths: Vec<String> = network
        .channel_groups()
        .into_iter()
        .flat_map(|g| g.producers.into_iter().chain(g.members))
        .collect();
    !paths.iter().any(|path| match network.layer_mut(path) {
        Some(LayerMut::Gated(l)) => l.norm.is_some(),
        Some(LayerMut::GatedTranspose(l)) => l.norm.is_some(),
        _ => false,
    })
}

impl ModelFile {
    /// A model file for an unpruned bundled `network`: [`ModelFile::new`] with
    /// [`Provenance::original`] at `input_size`, the size its cost is reported for.
    ///
    /// # Errors
    /// When the network cannot take `input_size`.
    pub fn original(network: Network, input_size: [usize; 2]) -> Result<Self, SurgeryError> {
        let provenance = Provenance::original(&network, input_size)?;
        Ok(Self::new(network, provenance))
    }

    /// The network's cost at its provenance's input size.
    ///
    /// # Errors
    /// When the network cannot take that size.
    pub fn cost(&self) -> Result<CostReport, SurgeryError> {
        Ok(self.network.cost(self.header.provenance.input_size)?)
    }
}

impl<N: Rebuild> ModelFile<N> {
    /// A model file for `network`, with its provenance.
    pub fn new(network: N, provenance: Provenance<N::Architecture>) -> Self {
        let header = ModelHeader {
            architecture: network.architecture(),
            folded: prunus_layers::gates(&network).is_empty(),
            norms_folded: network.norms_folded(),
            provenance,
            writer: format!("prunus {}", env!("CARGO_PKG_VERSION")),
        };
        Self { network, header }
    }

    /// A model file for `network`, pruned from `original` (whose cost is `original_cost`) by
    /// `plan`, a plan relative to `original`.
    pub fn pruned(
        network: N,
        original: &N,
        original_cost: &CostReport,
        plan: &PruningPlan,
    ) -> Self {
        let mut provenance = Provenance::new(original.architecture(), original_cost);
        provenance.record(plan);
        Self::new(network, provenance)
    }

    /// A model file for an unpruned `network` whose cost is `cost` (counted, or measured with
    /// [`measure_cost`](prunus_models::measure_cost)): [`ModelFile::new`] with
    /// [`Provenance::new`].
    pub fn unpruned(network: N, cost: &CostReport) -> Self {
        let provenance = Provenance::new(network.architecture(), cost);
        Self::new(network, provenance)
    }

    /// The file's bytes.
    ///
    /// # Errors
    /// When the weights cannot be serialised.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
        let header = serde_json::to_vec(&self.header)
            .map_err(|e| WriteError::Serialise(format!("header: {e}")))?;
        let mut store = BurnpackStore::from_bytes(None);
        self.network
            .valid()
            .save_weights(&mut store)
            .map_err(|e| WriteError::Serialise(e.to_string()))?;
        let weights = store
            .get_bytes()
            .map_err(|e| WriteError::Serialise(e.to_string()))?;
        let mut bytes = Vec::with_capacity(PREAMBLE + header.len() + weights.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(weights.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&checksum(&[&header, &weights]).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&weights);
        Ok(bytes)
    }

    /// Writes the file to `path` atomically (a temporary file in the same folder, then a
    /// rename). An existing file is never replaced: see [`ModelFile::save_replacing`].
    ///
    /// # Errors
    /// When `path` exists or cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SurgeryError> {
        let path = path.as_ref();
        if path.exists() {
            return Err(write_error(path, WriteError::Exists));
        }
        self.write(path)
    }

    /// Writes the file to `path` atomically, replacing a file already there (e.g. a run's own
    /// checkpoint).
    ///
    /// # Errors
    /// When `path` cannot be written.
    pub fn save_replacing(&self, path: impl AsRef<Path>) -> Result<(), SurgeryError> {
        self.write(path.as_ref())
    }

    fn write(&self, path: &Path) -> Result<(), SurgeryError> {
        let bytes = self.to_bytes().map_err(|e| write_error(path, e))?;
        write_atomic(path, &bytes)
    }

    /// Reads a model file and rebuilds its network on `device`, with nothing else needed.
    ///
    /// # Errors
    /// When the file is missing, truncated, corrupt, of another kind or version, or its weights
    /// do not fit its architecture; the error names the file.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self, SurgeryError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| read_error(path, e.into()))?;
        Self::from_bytes(&bytes, device).map_err(|source| read_error(path, source))
    }

    /// Rebuilds a model file's network from its bytes.
    ///
    /// # Errors
    /// A description of what is wrong with the bytes.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, ModelFileError> {
        use ModelFileError as E;
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(E::NotAModelFile);
        }
        if bytes.len() < PREAMBLE {
            return Err(E::Truncated {
                got: bytes.len() as u64,
                expected: PREAMBLE as u64,
            });
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION && version != 1 {
            return Err(E::Version {
                found: version,
                expected: VERSION,
            });
        }
        let (header_len, weights_len, sum) = (u64_at(12), u64_at(20), u64_at(28));
        let got = bytes.len() as u64;
        let expected = (PREAMBLE as u64)
            .checked_add(header_len)
            .and_then(|n| n.checked_add(weights_len))
            .ok_or(E::Length {
                got,
                expected: u64::MAX,
            })?;
        if got < expected {
            return Err(E::Truncated { got, expected });
        }
        if got > expected {
            return Err(E::Length { got, expected });
        }
        let header_end = PREAMBLE + header_len as usize;
        let (header, weights) = (&bytes[PREAMBLE..header_end], &bytes[header_end..]);
        let computed = match version {
            1 => fnv1a_v1(&[header, weights]),
            _ => checksum(&[header, weights]),
        };
        if computed != sum {
            return Err(E::Checksum);
        }
        let header: ModelHeader<N::Architecture> =
            serde_json::from_slice(header).map_err(E::Header)?;
        check_header::<N>(&header, weights.len() as u64).map_err(E::Describes)?;
        let network = Self::rebuild(&header, device)?;
        Self::load_weights(network, weights).map(|network| Self { network, header })
    }

    /// The header's network, with its gates and BatchNorms folded as the file says.
    fn rebuild(
        header: &ModelHeader<N::Architecture>,
        device: &Device,
    ) -> Result<N, ModelFileError> {
        let mut network =
            N::rebuild(&header.architecture, device).map_err(ModelFileError::Rebuild)?;
        let fold = |e: SurgeryError| ModelFileError::Rebuild(e.to_string());
        if header.folded {
            network = fold_gates(network).map_err(fold)?;
        }
        if header.norms_folded {
            network = fold_batch_norms(network).map_err(fold)?;
        }
        Ok(network)
    }

    /// `network` with the file's `weights`, each of them present, fitting and finite.
    fn load_weights(mut network: N, weights: &[u8]) -> Result<N, ModelFileError> {
        let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(weights.to_vec())));
        let result = network
            .load_weights(&mut store)
            .map_err(|e| ModelFileError::Weights(e.to_string()))?;
        if !result.errors.is_empty() || !result.missing.is_empty() {
            let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
            problems.extend(result.missing.iter().map(|(p, _)| format!("missing {p}")));
            return Err(ModelFileError::Mismatch(problems.join("; ")));
        }
        match first_non_finite(&network).map_err(ModelFileError::Weights)? {
            Some((tensor, index)) => Err(ModelFileError::NonFinite { tensor, index }),
            None => Ok(network),
        }
    }

    /// The groups of the network now.
    pub fn channel_groups(&self) -> Vec<crate::ChannelGroup> {
        self.network.channel_groups()
    }
}

/// The largest input side a model file may declare (2^16 pixels).
pub const MAX_INPUT_SIDE: usize = 1 << 16;

/// Checks a header before anything is allocated for it: an input size in range, then what the
/// network type checks of it ([`Rebuild::check`]).
fn check_header<N: Rebuild>(
    header: &ModelHeader<N::Architecture>,
    weights_len: u64,
) -> Result<(), String> {
    let size = header.provenance.input_size;
    if size.iter().any(|&s| s == 0 || s > MAX_INPUT_SIDE) {
        return Err(format!(
            "header: input size {}×{} is outside 1…{MAX_INPUT_SIDE}",
            size[0], size[1]
        ));
    }
    N::check(header, weights_len)
}

/// Widths within the models' limits that take the header's input size, and at least one `f32`
/// in the file for every convolution weight the architecture declares.
pub(crate) fn check_bundled(header: &ModelHeader, weights_len: u64) -> Result<(), String> {
    let size = header.provenance.input_size;
    let cost = header
        .architecture
        .cost(size)
        .map_err(|e| format!("header: {e}"))?;
    header
        .provenance
        .original
        .cost(size)
        .map_err(|e| format!("header (original network): {e}"))?;
    // Convolution weights are stored whatever is folded; everything else comes on top.
    let weights: u64 = cost
        .layers
        .iter()
        .map(|l| (l.in_channels * l.out_channels * l.kernel_size * l.kernel_size) as u64)
        .sum();
    if weights.saturating_mul(4) > weights_len {
        return Err(format!(
            "header describes {weights} convolution weights ({} bytes as f32), but the file \
             holds only {weights_len} bytes of weights",
            weights.saturating_mul(4)
        ));
    }
    Ok(())
}

fn write_error(path: &Path, source: WriteError) -> SurgeryError {
    SurgeryError::Write {
        path: PathBuf::from(path),
        source,
    }
}

fn read_error(path: &Path, source: ModelFileError) -> SurgeryError {
    SurgeryError::Read {
        path: PathBuf::from(path),
        source,
    }
}
