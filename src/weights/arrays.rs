//! Named tensors read whole into memory, as the formats that are not memory-mapped give
//! them (torch_pt.rs's `.pt`, npz.rs's `.npz`): what an SAE loader asks of either.

use color_eyre::eyre::{bail, eyre, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub struct Arrays {
    path: PathBuf,
    tensors: BTreeMap<String, Tensor>,
}

impl Arrays {
    pub fn new(path: &Path, tensors: BTreeMap<String, Tensor>) -> Self {
        Self { path: path.to_owned(), tensors }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.size().iter().map(|&d| d as usize).collect())
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
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
