//! The model and SAEs over a corpus, window by window in corpus order, folding each
//! batch's nonzero activations into `LayerStats`. Memory is one batch plus the statistics,
//! whatever the corpus's size. Every `SAVE_EVERY`, and when a signal arrives, the
//! statistics so far are saved, so the next run of the same command resumes there.

pub use super::screen::Encode;
use super::screen::Prefilter;
use super::shard::{self, Slice};
use super::stats::{LayerStats, Scratch};
use super::store::{Found, Resume, Store};
use super::Index;
use crate::activations::cache::{HashKey, IdentityBuilder};
use crate::corpus::{Corpus, Window, Windows};
use crate::pipeline::{pack_to, Engine, Resolved, Run, RunOptions};
use crate::runtime::progress::{Progress, ProgressSink};
use color_eyre::eyre::{bail, eyre, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tch::{Device, Kind};

/// How often an unfinished index is saved for resuming.
const SAVE_EVERY: Duration = Duration::from_secs(30);
/// Bumped when what an index holds changes, so old files are rebuilt, not misread.
const FORMAT: &str = "saescope index 4";
/// Window size when the SAE's cfg.json names none (gpt2-small-res-jb's).
pub const DEFAULT_CONTEXT: usize = 128;

/// What to index and how.
pub struct IndexRequest<'a> {
    pub run: &'a Run,
    pub corpus: &'a Corpus,
    /// Tokens per window with BOS; None: the SAE's `context_size`.
    pub context: Option<usize>,
    pub max_tokens: Option<u64>,
    pub store: &'a Store,
}

/// Where the seconds went, for `saescope index` and the benchmark.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    pub load: f64,
    /// Model forward to the last hook.
    pub forward: f64,
    /// SAE encodes, and reading back their nonzero entries.
    pub encode: f64,
    /// Folding entries into the statistics (plain Rust).
    pub stats: f64,
    pub batches: usize,
    /// Tokens run through the model, BOS and padding included.
    pub padded_tokens: u64,
}

pub struct Outcome {
    pub index: Index,
    pub path: PathBuf,
    /// None when the index was already stored.
    pub timings: Option<Timings>,
    /// Tokens computed by an earlier, interrupted run.
    pub resumed_tokens: u64,
    /// What the result guarantees where that is less than usual (a merge of shards made
    /// on different kinds of machine: `shard::mixed`).
    pub note: Option<String>,
}

/// `context_size` from an SAE's cfg.json (top level or SAELens 6's metadata); for a Gemma
/// Scope config.json, which names none, the 1024 SAELens's gemma_3 loader gives them.
pub fn context_size(cfg: &std::path::Path) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cfg).ok()?).ok()?;
    let get = |v: &serde_json::Value| v.get("context_size").and_then(serde_json::Value::as_u64);
    let gemma_scope = v.get("hf_hook_point_in").is_some().then_some(1024);
    get(&v).or_else(|| v.get("metadata").and_then(get)).or(gemma_scope).map(|n| n as usize)
}

/// Names an index: weights, corpus files, window size, token cap, dtype.
pub fn identity(resolved: &Resolved, corpus: &Corpus, context: usize, max_tokens: Option<u64>, opts: &RunOptions) -> Result<HashKey> {
    identity_with(IdentityBuilder::default(), resolved, corpus, context, max_tokens, opts)
}

/// `identity` with files named as `id` names them (`IdentityBuilder::by_content` for the
/// shards' check).
fn identity_with(id: IdentityBuilder, resolved: &Resolved, corpus: &Corpus, context: usize, max_tokens: Option<u64>, opts: &RunOptions) -> Result<HashKey> {
    let id = resolved.weights(id.part(FORMAT))?;
    let id = corpus.identity(id)?;
    Ok(id.part(context.to_le_bytes()).part(max_tokens.unwrap_or(0).to_le_bytes()).part([opts.dtype as u8]).finish())
}

/// The identity shards and their merge compare: `identity` with every file named by its
/// bytes, the same on every machine.
fn portable(req: &IndexRequest, at: &Located, progress: &ProgressSink) -> Result<HashKey> {
    progress.stage("hashing the weights and the corpus, which every shard of one index must share");
    identity_with(IdentityBuilder::by_content(), &at.resolved, req.corpus, at.context, req.max_tokens, &req.run.opts)
}

/// The files a request needs, its window size and its key: enough to find a stored index.
pub struct Located {
    pub resolved: Resolved,
    pub context: usize,
    pub id: HashKey,
}

pub fn locate(req: &IndexRequest, progress: &ProgressSink) -> Result<Located> {
    let resolved = Resolved::new(&req.run.model, &req.run.saes, progress)?;
    let cfg_context = resolved.saes.first().and_then(|f| context_size(&f.files.cfg));
    // The SAE's own context, within what the model takes; what the user asks is checked.
    let context = req.context.unwrap_or_else(|| cfg_context.unwrap_or(DEFAULT_CONTEXT).min(resolved.cfg.n_ctx()));
    if context < 2 || context > resolved.cfg.n_ctx() {
        bail!("--context {context}: windows must hold 2 to {} tokens (the model's n_ctx)", resolved.cfg.n_ctx());
    }
    let id = identity(&resolved, req.corpus, context, req.max_tokens, &req.run.opts)?;
    Ok(Located { resolved, context, id })
}

/// The stored index, if there is a usable one (a damaged one is reported, not trusted).
pub fn stored(req: &IndexRequest, at: &Located, progress: &ProgressSink) -> Option<Index> {
    match req.store.read(&at.id) {
        Found::Ok(index) => Some(index),
        Found::Damaged(why) => {
            progress.stage(format!("warning: the stored index {} is unusable ({why}); it will be rebuilt", req.store.path(&at.id).display()));
            None
        }
        Found::Missing => None,
    }
}

/// The stored index for this request, or a new one built (resuming an interrupted
/// build), stored and returned. `engine`: one already loaded with these layers, to use
/// instead of loading another.
pub fn open_or_build(req: &IndexRequest, engine: Option<&Engine>, progress: &ProgressSink) -> Result<Outcome> {
    let at = locate(req, progress)?;
    if let Some(index) = stored(req, &at, progress) {
        return Ok(Outcome { index, path: req.store.path(&at.id), timings: None, resumed_tokens: 0, note: None });
    }
    let id = at.id;
    let (index, timings, resumed_tokens) = compute(req, at, id, None, engine, progress)?;
    let path = req.store.write(&id, &index)?;
    Ok(Outcome { index, path, timings: Some(timings), resumed_tokens, note: None })
}

/// `index --shard K/N -o FILE`: the statistics of the slice's windows into `output`,
/// resuming from an interrupted run of the same shard.
pub fn build_shard(req: &IndexRequest, slice: Slice, output: &std::path::Path, progress: &ProgressSink) -> Result<Outcome> {
    let at = locate(req, progress)?;
    let id = portable(req, &at, progress)?;
    let key = shard::resume_key(&at.id, slice);
    let (index, timings, resumed_tokens) = compute(req, at, key, Some(slice), None, progress)?;
    let machine = if req.run.device.is_cuda() { format!("{:?}", req.run.device) } else { crate::runtime::cpu::kind() };
    let made_by = shard::MadeBy { encode: format!("{:?}", Encode::from_env()).to_lowercase(), machine };
    let file = shard::ShardFile { id, slice, seconds: index.seconds, index, made_by };
    shard::write(output, &file)?;
    let _ = std::fs::remove_file(req.store.resume_path(&key));
    Ok(Outcome { index: file.index, path: output.to_owned(), timings: Some(timings), resumed_tokens, note: None })
}

/// `index merge FILE...`: the shards' statistics added into the index this request names,
/// stored where `open_or_build` stores it.
pub fn merge_shards(req: &IndexRequest, files: &[PathBuf], progress: &ProgressSink) -> Result<Outcome> {
    let at = locate(req, progress)?;
    req.store.check_writable()?;
    progress.stage(format!("merging {} shards", files.len()));
    let read = files.iter().map(|p| Ok((p.clone(), shard::read(p)?))).collect::<Result<Vec<_>>>()?;
    let names = shard::Names { corpus: req.corpus.label(), model: at.resolved.model_label.clone(), sae: at.resolved.sae_label.clone() };
    let note = shard::mixed(&read);
    let index = shard::merge(&portable(req, &at, progress)?, read, &names)?;
    let path = req.store.write(&at.id, &index)?;
    Ok(Outcome { index, path, timings: None, resumed_tokens: 0, note })
}

/// Builds the statistics of `slice`'s windows (all of them for None), resuming from the
/// state saved under `resume_key`; the index it returns holds those windows' statistics and
/// the whole corpus's totals.
fn compute(
    req: &IndexRequest,
    at: Located,
    resume_key: HashKey,
    slice: Option<Slice>,
    engine: Option<&Engine>,
    progress: &ProgressSink,
) -> Result<(Index, Timings, u64)> {
    let Located { resolved, context, .. } = at;
    let id = resume_key;
    let resume = match req.store.read_resume(&id) {
        Found::Ok(r) => Some(r),
        Found::Damaged(why) => {
            progress.stage(format!("warning: the resume file {} is unusable ({why}); starting over", req.store.resume_path(&id).display()));
            None
        }
        Found::Missing => None,
    };
    req.store.check_writable()?;
    let resumed_tokens = resume.as_ref().map_or(0, |r| r.tokens_done);
    let (model_label, sae_label) = (resolved.model_label.clone(), resolved.sae_label.clone());
    let t0 = Instant::now();
    let owned;
    let engine = match engine.filter(|e| e.keys() == resolved.keys() && e.model.kind() == req.run.opts.dtype.kind()) {
        Some(e) => e,
        None => {
            owned = resolved.load(req.run.device, false, &req.run.opts, progress)?;
            &owned
        }
    };
    let load = t0.elapsed().as_secs_f64();
    let encode = Encode::from_env();
    let job = Job { engine, corpus: req.corpus, context, max_tokens: req.max_tokens, batch_tokens: req.run.opts.batch_tokens, encode, slice };
    let mut save = |r: &Resume| req.store.write_resume(&id, r).map(|_| ());
    let (mut index, mut timings) = job.run(resume, &mut save, progress).map_err(|e| match crate::runtime::interrupt::stopping() {
        true if req.store.resume_path(&id).exists() => {
            eyre!("interrupted; the tokens indexed so far are kept in {}: run the same command again to resume", req.store.resume_path(&id).display())
        }
        true => eyre!(crate::runtime::interrupt::MESSAGE),
        false => e,
    })?;
    timings.load = load;
    index.model = model_label;
    index.sae = sae_label;
    Ok((index, timings, resumed_tokens))
}

pub struct Job<'a> {
    pub engine: &'a Engine,
    pub corpus: &'a Corpus,
    pub context: usize,
    pub max_tokens: Option<u64>,
    pub batch_tokens: usize,
    /// The bf16 screen, or an encode to measure it against (src/dashboard/screen.rs).
    pub encode: Encode,
    /// Only this slice's windows (`index --shard`); None: all.
    pub slice: Option<Slice>,
}

impl Job<'_> {
    /// Windows per batch.
    fn per_batch(&self) -> usize {
        (self.batch_tokens / self.context).max(1)
    }

    fn windows(&self) -> Windows<'_> {
        Windows { corpus: self.corpus, tokenizer: &self.engine.tokenizer, context: self.context, max_tokens: self.max_tokens }
    }

    /// Builds the index from `resume` (or from nothing), calling `save` with the state
    /// every `SAVE_EVERY` and, on a signal, before failing.
    pub fn run(&self, resume: Option<Resume>, save: &mut dyn FnMut(&Resume) -> Result<()>, progress: &ProgressSink) -> Result<(Index, Timings)> {
        let _guard = tch::no_grad_guard();
        progress.stage(format!("counting the tokens of {}", self.corpus.label()));
        let windows = self.windows();
        let owns = |n: u32| self.slice.is_none_or(|s| s.owns(n));
        let mut mine = 0u64;
        windows.count_each(|n, w| {
            if owns(n) {
                mine += w.n_counted() as u64;
            }
        })?;
        let keys = self.engine.keys();
        let fresh = || Resume { windows_done: 0, tokens_done: 0, seconds: 0.0, layers: keys.iter().map(|&k| LayerStats::new(k)).collect() };
        let mut state = resume.filter(|r| r.layers.iter().map(LayerStats::key).eq(keys.iter().map(|&k| Some(k)))).unwrap_or_else(fresh);
        if state.windows_done > 0 {
            progress.stage(format!("resuming: {} of {mine} tokens were indexed by an earlier run", state.tokens_done));
        }
        let per_batch = self.per_batch();
        let mut scratch: Vec<Scratch> = state.layers.iter().map(|_| Scratch::default()).collect();
        let screens = match self.encode {
            Encode::Plain => self.engine.saes.iter().map(|_| None).collect(),
            Encode::Screened => self.engine.saes.iter().map(|(_, sae)| Prefilter::new(sae)).collect::<Result<Vec<_>>>()?,
            Encode::Unscreened => self.engine.saes.iter().map(|(_, sae)| Prefilter::unscreened(sae)).collect::<Result<Vec<_>>>()?,
        };
        let mut timings = Timings::default();
        let mut batch: Vec<(u32, Window)> = Vec::with_capacity(per_batch);
        let (mut saved_at, mut started, mut trimmed_at) = (Instant::now(), Instant::now(), Instant::now());
        let label = match self.slice {
            Some(s) => format!("indexing tokens (shard {s})"),
            None => "indexing tokens".to_string(),
        };
        progress.send(Progress::Fraction { label: label.clone(), done: state.tokens_done, total: mine });
        let mut flush = |batch: &mut Vec<(u32, Window)>, state: &mut Resume, timings: &mut Timings| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            self.batch(batch, &mut state.layers, &mut scratch, &screens, timings)?;
            // At most once a second: a trim walks the heap, and small models run batches in ms.
            if trimmed_at.elapsed() >= Duration::from_secs(1) {
                crate::runtime::memory::trim();
                trimmed_at = Instant::now();
            }
            // Windows are numbered in corpus order: those before this are done (or not this shard's).
            state.windows_done = batch.last().map_or(state.windows_done, |(n, _)| u64::from(*n) + 1);
            state.tokens_done += batch.iter().map(|(_, w)| w.n_counted() as u64).sum::<u64>();
            batch.clear();
            progress.send(Progress::Fraction { label: label.clone(), done: state.tokens_done, total: mine });
            Ok(())
        };
        let walked = windows.each(|n, w| {
            if u64::from(n) < state.windows_done || !owns(n) {
                return Ok(true);
            }
            crate::runtime::interrupt::check()?;
            batch.push((n, w));
            if batch.len() == per_batch {
                flush(&mut batch, &mut state, &mut timings)?;
                if saved_at.elapsed() >= SAVE_EVERY {
                    state.seconds += started.elapsed().as_secs_f64();
                    started = Instant::now();
                    // A failed save (disk full) costs the resume point, not the run.
                    if let Err(e) = save(&state) {
                        progress.stage(format!("warning: cannot save progress for resuming: {e}"));
                    }
                    saved_at = Instant::now();
                }
            }
            Ok(true)
        });
        let walked = walked.and_then(|t| flush(&mut batch, &mut state, &mut timings).map(|_| t));
        state.seconds += started.elapsed().as_secs_f64();
        let totals = match walked {
            Ok(t) => t,
            Err(e) => {
                if crate::runtime::interrupt::stopping() && state.windows_done > 0 {
                    save(&state)?;
                }
                return Err(e);
            }
        };
        crate::runtime::memory::trim();
        progress.stage("collecting the top contexts' tokens");
        let mut wanted = BTreeSet::new();
        for l in &mut state.layers {
            l.finish();
            l.windows_referenced(&mut wanted);
        }
        let last = wanted.last().copied().unwrap_or(0);
        let mut contexts = BTreeMap::new();
        windows.each(|n, w| {
            if wanted.contains(&n) {
                contexts.insert(n, w);
            }
            Ok(n < last)
        })?;
        let ids: BTreeSet<u32> = contexts.values().flat_map(|w: &Window| w.tokens.iter().copied()).collect();
        let vocab = ids.into_iter().map(|id| (id, self.engine.tokenizer.token_strings(&[id]).concat())).collect();
        let index = Index {
            corpus: self.corpus.label(),
            model: self.engine.model_label.clone(),
            sae: self.engine.sae_label.clone(),
            context: self.context,
            documents: totals.documents,
            windows: totals.windows,
            tokens: totals.tokens,
            skipped_binary: totals.skipped.binary,
            rows_without_text: totals.skipped.rows_without_text,
            seconds: state.seconds,
            layers: state.layers,
            contexts,
            vocab,
        };
        Ok((index, timings))
    }

    /// One batch of windows through the model and every SAE, into the statistics.
    fn batch(&self, rows: &[(u32, Window)], layers: &mut [LayerStats], scratch: &mut [Scratch], screens: &[Option<Prefilter>], t: &mut Timings) -> Result<()> {
        self.encoded(rows, screens, t, &mut |si, number, n_counted, entries| layers[si].add_window(number, n_counted, entries, &mut scratch[si]))
    }

    /// One batch of windows through the model and every SAE: `visit(sae, window, tokens
    /// counted, its positive activations (position, feature, value))` for each window
    /// and SAE, BOS left out.
    fn encoded(&self, rows: &[(u32, Window)], screens: &[Option<Prefilter>], t: &mut Timings, visit: &mut Visit) -> Result<()> {
        // Every batch has the same shape (rows padded to `context`, missing rows filled
        // with BOS), so the kernels and their summation order are the same for every
        // window: a token's activation is then bit for bit the same wherever its window
        // falls, and equal values stay equal for the tie-break.
        let bos = self.engine.tokenizer.bos;
        let filler = vec![bos; self.context];
        let mut refs: Vec<&[u32]> = rows.iter().map(|(_, w)| w.tokens.as_slice()).collect();
        refs.resize(self.per_batch().max(rows.len()), &filler);
        let packed = pack_to(refs.into_iter(), self.context, crate::pipeline::Frame::default(), bos);
        let (b, len) = packed.ids.size2()?;
        t.batches += 1;
        t.padded_tokens += (b * len) as u64;
        let clock = Instant::now();
        let resid = self.engine.inputs(&packed)?;
        t.forward += clock.elapsed().as_secs_f64();
        let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1);
        for (si, ((r, (_, sae)), screen)) in resid.iter().zip(&self.engine.saes).zip(screens).enumerate() {
            let d = sae.d_sae;
            let per_row = len as usize * d;
            let clock = Instant::now();
            let (idx, vals) = match screen {
                Some(screen) => screen.encode(&sae.normalized(r).view([b * len, -1]), threads)?,
                None => {
                    let z = sae.encode(r);
                    let flat = z.view([-1]);
                    let idx = flat.nonzero().view([-1]);
                    let vals = flat.index_select(0, &idx).to_device(Device::Cpu).to_kind(Kind::Float);
                    (Vec::<i64>::try_from(idx.to_device(Device::Cpu))?, Vec::<f32>::try_from(vals)?)
                }
            };
            t.encode += clock.elapsed().as_secs_f64();
            let clock = Instant::now();
            let mut start = 0;
            for (row, (number, w)) in rows.iter().enumerate() {
                let base = row * per_row;
                let end = start + idx[start..].partition_point(|&i| (i as usize) < base + per_row);
                let n = w.tokens.len();
                let mut entries = idx[start..end].iter().zip(&vals[start..end]).filter_map(|(&i, &v)| {
                    let i = i as usize - base;
                    let pos = i / d;
                    (pos >= 1 && pos < n && v > 0.0).then_some((pos as u16, (i % d) as u32, v))
                });
                visit(si, *number, w.n_counted(), &mut entries);
                start = end;
            }
            t.stats += clock.elapsed().as_secs_f64();
        }
        Ok(())
    }

    /// Every positive activation of every SAE over the whole corpus, as `run` computes
    /// them with the plain encode: `visit(sae, feature, value)`. For what the index does
    /// not keep (the export's linear histograms, neuronpedia/export.rs).
    /// `total` is the tokens the progress counts toward (the index's).
    pub fn scan(&self, label: &str, total: u64, progress: &ProgressSink, visit: &mut dyn FnMut(usize, u32, f32)) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let screens: Vec<Option<Prefilter>> = self.engine.saes.iter().map(|_| None).collect();
        let mut timings = Timings::default();
        let per_batch = self.per_batch();
        let mut batch: Vec<(u32, Window)> = Vec::with_capacity(per_batch);
        let mut done = 0u64;
        let mut flush = |batch: &mut Vec<(u32, Window)>| -> Result<()> {
            self.encoded(batch, &screens, &mut timings, &mut |si, _, _, entries| entries.for_each(|(_, f, v)| visit(si, f, v)))?;
            done += batch.iter().map(|(_, w)| w.n_counted() as u64).sum::<u64>();
            progress.send(Progress::Fraction { label: label.to_string(), done, total });
            batch.clear();
            Ok(())
        };
        self.windows().each(|n, w| {
            crate::runtime::interrupt::check()?;
            batch.push((n, w));
            if batch.len() == per_batch {
                flush(&mut batch)?;
            }
            Ok(true)
        })?;
        flush(&mut batch)
    }
}

/// What `Job::encoded` hands each window's activations to.
type Visit<'v> = dyn FnMut(usize, u32, usize, &mut dyn Iterator<Item = (u16, u32, f32)>) + 'v;
