//! Indexing past one machine: `index --shard K/N` computes the statistics of every N-th
//! window (those numbered K mod N) into a file of its own, and `index merge` adds the N
//! files into the index one run over the whole corpus stores. Slicing by window keeps the
//! shards even and every window in exactly one; the statistics merge exactly because they
//! are order-independent (src/dashboard/stats.rs). Whatever runs the shards (a Slurm array,
//! a Kubernetes Indexed Job, scripts/index-shards) is the user's scheduler, not ours.

use super::stats::LayerStats;
use super::Index;
use crate::activations::cache::{hex, HashKey, IdentityBuilder};
use color_eyre::eyre::{bail, eyre, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The K-th of N slices of a corpus's windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub k: u32,
    pub n: u32,
}

impl Slice {
    /// `K/N` with 0 <= K < N, as `--shard` takes it (K counts from 0, as array task ids do).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{s:?}: expected K/N with 0 <= K < N (e.g. 0/4 .. 3/4; K counts from 0 as $SLURM_ARRAY_TASK_ID does)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u32, u32) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(Self { k, n })
    }

    pub fn owns(&self, window: u32) -> bool {
        window % self.n == self.k
    }
}

impl std::fmt::Display for Slice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// What `index --shard` writes: its slice's statistics, the windows they refer to, and the
/// whole index's identity (weights, corpus, options, the files named by their bytes so that
/// machines with their own copies agree), which the merge checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    pub id: HashKey,
    pub slice: Slice,
    pub index: Index,
    /// The shard's compute time (the index keeps its own outside its bytes).
    pub seconds: f64,
    pub made_by: MadeBy,
}

/// What can change a shard's last float bits: the SAE encode it ran (the bf16 screen or
/// the plain f32 one, chosen per machine unless `SAESCOPE_EXACT_ENCODE` says) and the
/// device and kind of CPU that ran it. Shards that agree on both merge into the single
/// run's index byte for byte; others into one whose values agree to float rounding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MadeBy {
    pub encode: String,
    pub machine: String,
}

impl std::fmt::Display for MadeBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} encode on {}", self.encode, self.machine)
    }
}

/// Version 2 records `made_by`.
const SHARD_MAGIC: &[u8; 8] = b"SAESSHD2";

/// The key a shard's unfinished state is kept under beside the stored indexes, so a killed
/// shard resumes when the same command runs again.
pub fn resume_key(id: &HashKey, slice: Slice) -> HashKey {
    IdentityBuilder::default().part("saescope index shard").part(id).part(slice.k.to_le_bytes()).part(slice.n.to_le_bytes()).finish()
}

pub fn write(path: &Path, shard: &ShardFile) -> Result<()> {
    super::store::write(path, SHARD_MAGIC, shard).map_err(|e| e.wrap_err(format!("cannot write the shard {}; pass another -o FILE", path.display())))
}

pub fn read(path: &Path) -> Result<ShardFile> {
    match super::store::read(path, SHARD_MAGIC) {
        super::store::Found::Ok(s) => Ok(s),
        super::store::Found::Missing => bail!("{}: no such shard file; run `saescope index --shard K/N -o {}` first", path.display(), path.display()),
        super::store::Found::Damaged(why) => bail!("{}: not a usable shard ({why}); run its `index --shard` again", path.display()),
    }
}

/// How the merging machine names the corpus, model and SAEs (a shard's machine may hold
/// them at other paths).
pub struct Names {
    pub corpus: String,
    pub model: String,
    pub sae: String,
}

/// The shard's index as if run where `names` are: its labels, and its windows' sources under
/// the merging machine's corpus path.
fn rename(index: &mut Index, names: &Names) {
    for w in index.contexts.values_mut() {
        if let Some(rest) = w.source.strip_prefix(&index.corpus) {
            w.source = format!("{}{rest}", names.corpus);
        }
    }
    (index.corpus, index.model, index.sae) = (names.corpus.clone(), names.model.clone(), names.sae.clone());
}

/// Where the shards were made in more than one way (`MadeBy`), what the merged index then
/// guarantees; None when they agree (the merge then equals one run byte for byte).
pub fn mixed(files: &[(PathBuf, ShardFile)]) -> Option<String> {
    let kinds: BTreeSet<&MadeBy> = files.iter().map(|(_, s)| &s.made_by).collect();
    if kinds.len() < 2 {
        return None;
    }
    let list: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    Some(format!(
        "the shards were indexed in {} ways ({}): counts, firing rates and top contexts equal one run's except where two values tie exactly, histograms and interval samples up to a value on an edge, and activations agree to float rounding (within 1e-5 of the largest), not byte for byte; set SAESCOPE_EXACT_ENCODE=1 on every machine of one kind for byte-equal merges",
        kinds.len(),
        list.join("; ")
    ))
}

/// The index of the whole corpus from its shards (`files`, each path with its content),
/// after checking that they are every slice of one split, each once, all of the index
/// named `id`.
pub fn merge(id: &HashKey, files: Vec<(PathBuf, ShardFile)>, names: &Names) -> Result<Index> {
    let Some(n) = files.first().map(|(_, s)| s.slice.n) else { bail!("index merge needs the shard files") };
    let mut by_k: Vec<Option<PathBuf>> = vec![None; n as usize];
    for (path, s) in &files {
        if s.id != *id {
            bail!(
                "{} was indexed with other weights, corpus or index options than this merge names (its index {}, this {}); merge with the options the shards ran with",
                path.display(),
                &hex(&s.id)[..12],
                &hex(id)[..12]
            );
        }
        if s.slice.n != n {
            bail!("{} is shard {} but {} is of {n} shards; merge the shards of one split", path.display(), s.slice, files[0].0.display());
        }
        if let Some(other) = &by_k[s.slice.k as usize] {
            bail!("shard {} is given twice: {} and {}", s.slice, other.display(), path.display());
        }
        by_k[s.slice.k as usize] = Some(path.clone());
    }
    let missing: Vec<String> = by_k.iter().enumerate().filter(|(_, p)| p.is_none()).map(|(k, _)| format!("{k}/{n}")).collect();
    if !missing.is_empty() {
        bail!(
            "shard {} missing: run `saescope index --shard K/N -o FILE` for {} and merge every one",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "each" }
        );
    }
    let mut shards: Vec<ShardFile> = files.into_iter().map(|(_, s)| s).collect();
    shards.sort_by_key(|s| s.slice.k);
    let mut it = shards.into_iter();
    let first = it.next().ok_or_else(|| eyre!("internal: no shard"))?;
    let mut whole = first.index;
    whole.seconds = first.seconds;
    rename(&mut whole, names);
    for s in it {
        let mut i = s.index;
        rename(&mut i, names);
        let totals = |x: &Index| (x.documents, x.windows, x.tokens, x.skipped_binary, x.rows_without_text, x.context);
        if totals(&i) != totals(&whole) || i.layers.len() != whole.layers.len() {
            bail!("shard {} saw another corpus than shard 0 did (its files changed between the runs?); index every shard again", s.slice);
        }
        for (mine, theirs) in whole.layers.iter_mut().zip(&i.layers) {
            mine.merge(theirs)?;
        }
        whole.seconds += s.seconds;
        whole.contexts.extend(i.contexts);
        whole.vocab.extend(i.vocab);
    }
    keep_referenced(&mut whole);
    Ok(whole)
}

/// Orders the samples and keeps only the windows (and their tokens' text) that the final
/// lists refer to, as one run's index holds them.
pub fn keep_referenced(index: &mut Index) {
    let mut wanted = BTreeSet::new();
    index.layers.iter_mut().for_each(LayerStats::finish);
    index.layers.iter().for_each(|l| l.windows_referenced(&mut wanted));
    index.contexts.retain(|n, _| wanted.contains(n));
    let ids: BTreeSet<u32> = index.contexts.values().flat_map(|w| w.tokens.iter().copied()).collect();
    index.vocab.retain(|id, _| ids.contains(id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_parse_and_own_every_window_once() {
        assert_eq!(Slice::parse("2/4"), Ok(Slice { k: 2, n: 4 }));
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(Slice::parse(bad).is_err(), "{bad}");
        }
        let slices: Vec<Slice> = (0..4).map(|k| Slice { k, n: 4 }).collect();
        assert!((0..100).all(|w| slices.iter().filter(|s| s.owns(w)).count() == 1));
    }
}
