//! A model's weights as the hub ships them: one `model.safetensors`, or shards that
//! `model.safetensors.index.json` maps tensor by tensor (how larger checkpoints come), so
//! the model families read tensors by name and never ask which.

use crate::weights::tensors::SafeFile;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// The single-file checkpoint and the index of a sharded one, in the order a loader tries them.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "model.safetensors.index.json"];

/// The opened files of a checkpoint. Tensors handed out may borrow a shard's map, so a
/// model keeps its `Arc<Checkpoint>` as long as it lives.
pub struct Checkpoint {
    /// `model.safetensors`, or the index: what errors name.
    path: PathBuf,
    shards: Vec<Arc<SafeFile>>,
    /// Tensor name -> shard, for a sharded checkpoint (empty for one file).
    place: HashMap<String, usize>,
}

/// The part of `model.safetensors.index.json` that places tensors.
#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// Shard file names the index names, in first-seen order, after refusing any that would
/// leave the checkpoint's folder.
fn shard_names(index: &ShardIndex, path: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for file in index.weight_map.values() {
        let p = Path::new(file);
        if p.is_absolute() || p.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            bail!("{} names the shard {file:?}, which is not a file beside it; the index is corrupt: download the model again", path.display());
        }
        if !names.contains(file) {
            names.push(file.clone());
        }
    }
    if names.is_empty() {
        bail!("{} maps no tensors to shards; the index is corrupt: download the model again", path.display());
    }
    Ok(names)
}

/// The shard file names `index` (a `model.safetensors.index.json`) lists, so a downloader
/// can fetch them beside it.
pub fn shard_files(index: &Path) -> Result<Vec<String>> {
    shard_names(&read_index(index)?, index)
}

fn read_index(path: &Path) -> Result<ShardIndex> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| eyre!("{} is not a safetensors index ({e}); it may be truncated: download the model again", path.display()))
}

impl Checkpoint {
    /// Opens `path`: a `.safetensors` file, or an `.index.json` and every shard it names
    /// (which must lie beside it).
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        if !path.to_string_lossy().ends_with(".index.json") {
            return Ok(Arc::new(Self { path: path.to_owned(), shards: vec![SafeFile::open(path)?], place: HashMap::new() }));
        }
        let index = read_index(path)?;
        let names = shard_names(&index, path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let shards = names.iter().map(|n| SafeFile::open(&dir.join(n))).collect::<Result<Vec<_>>>()?;
        let mut place = HashMap::with_capacity(index.weight_map.len());
        for (tensor, file) in &index.weight_map {
            let i = names.iter().position(|n| n == file).unwrap_or_default();
            if shards[i].shape(tensor).is_none() {
                bail!("{} places {tensor} in {file}, which has no such tensor; the shards and the index disagree: download the model again", path.display());
            }
            place.insert(tensor.clone(), i);
        }
        Ok(Arc::new(Self { path: path.to_owned(), shards, place }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shard_of(&self, name: &str) -> Option<&Arc<SafeFile>> {
        match self.shards.as_slice() {
            [one] => one.shape(name).map(|_| one),
            _ => self.place.get(name).map(|&i| &self.shards[i]),
        }
    }

    /// First of `candidates` present; lets callers accept naming variants such as HF's
    /// optional `transformer.` prefix.
    pub fn find(&self, candidates: &[String]) -> Option<String> {
        candidates.iter().find(|c| self.shard_of(c).is_some()).cloned()
    }

    /// The named tensor as f32 on CPU, checked against `shape` and for NaN/Inf
    /// (`SafeFile::tensor`).
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.tensor_as(name, shape, Kind::Float)
    }

    /// The named tensor as `kind` on CPU (`SafeFile::tensor_as`: a view of the map where
    /// the file holds `kind`).
    pub fn tensor_as(&self, name: &str, shape: &[usize], kind: Kind) -> Result<Tensor> {
        let shard = self.shard_of(name).ok_or_else(|| eyre!("{} has no tensor named {name}", self.path.display()))?;
        shard.tensor_as(name, shape, kind)
    }

    /// Bytes the tensors whose names pass `keep` take once loaded as f32.
    pub fn bytes_matching(&self, keep: impl Fn(&str) -> bool) -> u64 {
        match self.shards.as_slice() {
            [one] => one.bytes_matching(keep),
            _ => self.shards.iter().enumerate().map(|(i, s)| s.bytes_matching(|n| self.place.get(n) == Some(&i) && keep(n))).sum(),
        }
    }

    /// Every file of the checkpoint (the index first), for a cache identity.
    pub fn files(&self) -> Vec<PathBuf> {
        let shards = self.shards.iter().map(|s| s.path().to_owned());
        if self.place.is_empty() {
            shards.collect()
        } else {
            std::iter::once(self.path.clone()).chain(shards).collect()
        }
    }

    /// `SafeFile::release_if_copied` for every shard.
    pub fn release_if_copied(&self, device: Device) {
        for s in &self.shards {
            s.release_if_copied(device);
        }
    }
}
