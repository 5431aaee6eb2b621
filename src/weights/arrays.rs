//! Named tensors read whole into memory, as the formats that are not memory-mapped give
//! them (torch_pt.rs's `.pt`, npz.rs's `.npz`): what an SAE loader asks of either.

use color_eyre::eyre::{bail, eyre, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub struct Arrays {
    path: PathBuf,
    tensors: BTreeMap<String, Tensor>,
    /// Reads the file again, for the tensors `forget` marks.
    reopen: Option<fn(&Path) -> Result<Arrays>>,
    forgotten: Vec<String>,
}

impl Arrays {
    pub fn new(path: &Path, tensors: BTreeMap<String, Tensor>) -> Self {
        Self { path: path.to_owned(), tensors, reopen: None, forgotten: Vec::new() }
    }

    /// Arrays that `reopen(path)` reads again: what `forget` marks comes back from the
    /// file when asked for.
    pub fn reopenable(mut self, reopen: fn(&Path) -> Result<Arrays>) -> Self {
        self.reopen = Some(reopen);
        self
    }

    /// Marks tensor `name` as left in the file, read from it when asked for (npz.rs's
    /// `open_but`: a report never reads an SAE's decoder, and Gemma 2's four W_dec are 0.6 GB).
    pub fn forget(&mut self, name: &str) {
        if self.reopen.is_some() && !self.tensors.contains_key(name) {
            self.forgotten.push(name.to_string());
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        match self.tensors.get(name) {
            Some(t) => Some(t.size().iter().map(|&d| d as usize).collect()),
            None if self.forgotten.iter().any(|f| f == name) => self.reopen.and_then(|r| r(&self.path).ok()).and_then(|a| a.shape(name)),
            None => None,
        }
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if let (Some(reopen), true) = (self.reopen, self.forgotten.iter().any(|f| f == name)) {
            return reopen(&self.path)?.tensor(name, shape);
        }
        let t = self.tensors.get(name).ok_or_else(|| eyre!("{} has no tensor {name} (it has {})", self.path.display(), self.names().join(", ")))?;
        let got = self.shape(name).unwrap_or_default();
        if got != shape {
            bail!("{}: {name} has shape {got:?}, {shape:?} expected", self.path.display());
        }
        Ok(t.shallow_clone())
    }

    pub fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
}
