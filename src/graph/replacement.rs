//! The replacement model of one prompt, as circuit-tracer builds it: every MLP replaced by
//! its layer's transcoder plus an error term (what the transcoder misses, a constant), every
//! attention pattern and norm scale frozen at the prompt's values. That model computes the
//! same numbers as the original on this prompt, and is linear in what is added to the
//! residual stream, so the effect of one node on another is a vector-Jacobian product:
//! inject a target's reading direction, run backward once, and dot each source's vector
//! with the gradient where the source writes.
//!
//! Rows are computed for many targets at once: the prompt is repeated as a batch, each copy
//! carrying one target's injection, and the frozen forward is built once and kept for every
//! backward pass.

use super::transcoders::Transcoders;
use crate::model::hooks::{HookPoint, Site};
use crate::model::{Family, Freeze, HookEdit};
use crate::sae::Sae;
use color_eyre::eyre::{bail, eyre, Result};
use std::cell::RefCell;
use tch::{Device, Kind, Tensor};

/// One active transcoder feature: its layer, position, index and activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Active {
    pub layer: usize,
    pub pos: usize,
    pub feature: u32,
    pub activation: f32,
}

/// What a row reads: a feature's pre-activation (its encoder column at its layer's
/// transcoder input) or a logit's demeaned unembedding row at the last position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Feature(usize),
    Logit(u32),
}

/// The prompt through the model and its transcoders, and everything a row needs.
pub struct Replacement<'a> {
    model: &'a dyn Family,
    /// One transcoder per layer, in layer order (or a cross-layer transcoder's layers).
    transcoders: &'a Transcoders,
    tokens: Vec<i64>,
    /// Every active feature at every position but the skipped first ones, ordered by
    /// layer, position, feature (circuit-tracer's sparse order).
    pub active: Vec<Active>,
    /// Per layer: the positions of its active features, and what they write (activation x
    /// decoder row) to each layer they write to: their own only, or with a cross-layer
    /// transcoder every layer from theirs on.
    by_layer: Vec<(Tensor, Vec<(usize, Tensor)>)>,
    /// Per layer [t, d]: the MLP's output minus the transcoder's reconstruction.
    errors: Vec<Tensor>,
    /// Per layer [t, d]: the MLP's output minus the skip term, what the replacement model
    /// adds besides the skip (features' writes, `b_dec` and the error).
    constants: Vec<Tensor>,
    /// [t, d]: what each token puts into the residual stream.
    embeddings: Tensor,
    /// The model's logits at the last position before any soft-cap, f32 [vocab]: what the
    /// logit nodes are made of.
    pub last_logits: Tensor,
    /// [vocab, d], the unembedding, and its mean row [d].
    unembedding: Tensor,
    unembedding_mean: Tensor,
    /// The frozen forward over a batch of copies of the prompt's first positions, built by
    /// `rows` and kept while the next targets need the same: its copies, its length and
    /// itself.
    batched: RefCell<Option<(usize, usize, Frozen)>>,
    /// Positions a pass's prompt is cut to a multiple of (`rows`).
    bucket: usize,
    /// The clean run's attention patterns and norm scales.
    freeze: Freeze,
}

impl<'a> Replacement<'a> {
    /// Runs the prompt once: the transcoders' activations at each layer's MLP input
    /// (positions before `skip` left out: BOS, as circuit-tracer does), the error terms and
    /// the logits. `transcoders[l]` must read layer l's `hook_mlp_in`, `ln2.hook_normalized`
    /// or `hook_resid_mid` (the MLP's input, its norm's, or the residual it normalises) and
    /// write its `hook_mlp_out`.
    pub fn new(model: &'a dyn Family, transcoders: &'a Transcoders, tokens: &[u32], skip: usize) -> Result<Self> {
        let n_layers = model.n_layers();
        if transcoders.len() != n_layers {
            bail!("an attribution graph needs a transcoder at every one of the model's {n_layers} layers; {} were given", transcoders.len());
        }
        for (l, tc) in transcoders.layers.iter().enumerate() {
            let reads = tc.cfg.hook_name.as_deref().and_then(HookPoint::parse);
            let ok_in = matches!(reads, Some(h) if h.layer == l && matches!(h.site, Site::MlpIn | Site::Ln2Normalized | Site::ResidMid));
            if !ok_in || tc.writes() != Some(HookPoint::new(l, Site::MlpOut)) {
                bail!(
                    "transcoder {l} reads {} and writes {}: a graph needs each layer's transcoder to read that layer's MLP input and write its MLP output",
                    tc.cfg.hook_name.as_deref().unwrap_or("?"),
                    tc.cfg.hook_name_out.as_deref().unwrap_or("nothing")
                );
            }
        }
        if tokens.is_empty() {
            bail!("the prompt has no tokens");
        }
        let _guard = tch::no_grad_guard();
        let device = model.device();
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let t = ids.len() as i64;
        let input = Tensor::from_slice(&ids).view([1, t]).to_device(device);
        let points: Vec<HookPoint> = (0..n_layers).flat_map(|l| [reads_at(&transcoders.layers[l], l), HookPoint::new(l, Site::MlpOut)]).collect();
        let seen: RefCell<Vec<Option<Tensor>>> = RefCell::new((0..points.len()).map(|_| None).collect());
        let freeze = Freeze::new();
        let last = {
            let mut take = HookEdit::observe(points.clone(), |p, v| {
                if let Some(i) = points.iter().position(|q| *q == p) {
                    seen.borrow_mut()[i] = Some(v.squeeze_dim(0));
                }
                Ok(())
            });
            model.frozen_forward(&input, &freeze, &mut take)?
        };
        let unembedding = model.unembedding()?.to_kind(Kind::Float);
        let seen: Vec<Tensor> = seen.into_inner().into_iter().map(|v| v.ok_or_else(|| eyre!("internal: a hook was not reached"))).collect::<Result<_>>()?;
        let mut active = Vec::new();
        let mut by_layer = Vec::with_capacity(n_layers);
        let f32_zeros = |like: &Tensor| Tensor::zeros(like.size(), (Kind::Float, like.device()));
        // Each layer's reconstruction: its b_dec and skip term, then every feature's write.
        let mut recon: Vec<Tensor> = Vec::with_capacity(n_layers);
        for (l, tc) in transcoders.layers.iter().enumerate() {
            let x = &seen[2 * l];
            let mut r = f32_zeros(&seen[2 * l + 1]) + tc.b_dec().to_kind(Kind::Float);
            if let Some(s) = tc.skip(x) {
                r += s.to_kind(Kind::Float);
            }
            recon.push(r);
        }
        for (l, tc) in transcoders.layers.iter().enumerate() {
            let acts = tc.encode(&seen[2 * l]);
            if skip > 0 {
                let _ = acts.narrow(0, 0, (skip as i64).min(t)).zero_();
            }
            // Nonzero entries in row-major order: by position, then feature.
            let nz = acts.nonzero();
            let n = nz.size()[0];
            let pos = nz.select(1, 0).contiguous();
            let feat = nz.select(1, 1).contiguous();
            let values = acts.index(&[Some(&pos), Some(&feat)]).to_kind(Kind::Float);
            let (pv, fv, av) = (vec_i64(&pos)?, vec_i64(&feat)?, Vec::<f32>::try_from(values.to_device(Device::Cpu))?);
            for i in 0..n as usize {
                active.push(Active { layer: l, pos: pv[i] as usize, feature: fv[i] as u32, activation: av[i] });
            }
            let writes = transcoders.writes(l, &feat, &values)?;
            for (j, v) in &writes {
                let _ = recon[*j].index_add_(0, &pos, v);
            }
            by_layer.push((pos, writes));
        }
        let mut errors = Vec::with_capacity(n_layers);
        let mut constants = Vec::with_capacity(n_layers);
        for (l, tc) in transcoders.layers.iter().enumerate() {
            let (x, y) = (&seen[2 * l], &seen[2 * l + 1]);
            // Positions without feature nodes have no error node either (circuit-tracer
            // zeroes both there); what the MLP writes there stays in the forward.
            let error = y.to_kind(Kind::Float) - &recon[l];
            if skip > 0 {
                let _ = error.narrow(0, 0, (skip as i64).min(t)).zero_();
            }
            errors.push(error);
            constants.push(match tc.skip(x) {
                Some(k) => y - k,
                None => y.shallow_clone(),
            });
        }
        let embeddings = model.token_embedding(&Tensor::from_slice(&ids))?.to_kind(Kind::Float);
        let last_logits = last.get(0).get(t - 1).to_kind(Kind::Float).matmul(&unembedding.tr()).to_device(Device::Cpu);
        let unembedding_mean = unembedding.mean_dim(0, false, Kind::Float);
        Ok(Self {
            model,
            transcoders,
            tokens: ids,
            active,
            by_layer,
            errors,
            constants,
            embeddings,
            last_logits,
            unembedding,
            unembedding_mean,
            batched: RefCell::new(None),
            bucket: PREFIX_BUCKET,
            freeze,
        })
    }

    /// The prompt's tokens.
    pub fn tokens(&self) -> Vec<u32> {
        self.tokens.iter().map(|&t| t as u32).collect()
    }

    pub fn n_layers(&self) -> usize {
        self.transcoders.len()
    }

    pub fn n_pos(&self) -> usize {
        self.tokens.len()
    }

    /// Sources a row spans: every active feature, then errors (layer-major), then tokens.
    pub fn n_sources(&self) -> usize {
        self.active.len() + self.n_layers() * self.n_pos() + self.n_pos()
    }

    /// The demeaned unembedding row of `token`: what a logit node's row injects (the
    /// logit minus the mean logit, before any soft-cap).
    fn logit_direction(&self, token: u32) -> Tensor {
        self.unembedding.get(i64::from(token)) - &self.unembedding_mean
    }

    /// Each target's row over every source (`n_sources` entries: the direct effect of each
    /// source on the target's pre-activation or logit in the frozen model), at most `batch`
    /// targets per backward pass, in the order given.
    ///
    /// A target at position p depends on positions up to p alone (attention is causal), so a
    /// pass runs over the prompt's first positions only: those its targets need, rounded up
    /// to a multiple of `PREFIX_BUCKET` (a logit needs them all). On a long prompt that
    /// halves a feature row's cost on average. Each length's frozen forward is built when
    /// first needed and kept until targets need another, so callers give targets grouped
    /// by `prefix_len` (`attribute` does).
    pub fn rows(&self, targets: &[Target], batch: usize) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = (0..targets.len()).map(|_| None).collect();
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by_key(|&i| self.prefix_len(targets[i]));
        let mut slot = self.batched.borrow_mut();
        for group in order.chunk_by(|&a, &b| self.prefix_len(targets[a]) == self.prefix_len(targets[b])) {
            let len = self.prefix_len(targets[group[0]]);
            // Prompt copies times tokens a pass takes at most (ROW_TOKENS).
            let copies = batch.max(1).min((ROW_TOKENS / len).max(1));
            if slot.as_ref().is_none_or(|(c, l, _)| (*c, *l) != (copies, len)) {
                // The old one first: two at once are twice the memory.
                *slot = None;
                *slot = Some((copies, len, Frozen::build(self, copies, len)?));
            }
            let (_, _, frozen) = slot.as_ref().ok_or_else(|| eyre!("internal: no batched forward"))?;
            for chunk in group.chunks(copies) {
                crate::runtime::interrupt::check()?;
                let chosen: Vec<Target> = chunk.iter().map(|&i| targets[i]).collect();
                for (row, &i) in frozen.rows(self, &chosen)?.into_iter().zip(chunk) {
                    out[i] = Some(row);
                }
            }
        }
        out.into_iter().map(|r| r.ok_or_else(|| eyre!("internal: a target got no row"))).collect()
    }

    /// The prompt positions `target`'s row needs, rounded up to a multiple of the bucket:
    /// the length of the pass it goes in.
    pub fn prefix_len(&self, target: Target) -> usize {
        let t = self.n_pos();
        let need = match target {
            Target::Feature(i) => self.active.get(i).map_or(t, |a| a.pos + 1),
            Target::Logit(_) => t,
        };
        need.div_ceil(self.bucket.max(1)).saturating_mul(self.bucket.max(1)).min(t)
    }

    /// Cuts passes to multiples of `positions` instead of `PREFIX_BUCKET`: lets a test on a
    /// short prompt run rows through several prefix lengths.
    pub fn set_prefix_bucket(&mut self, positions: usize) {
        self.bucket = positions.max(1);
        self.batched.borrow_mut().take();
    }
}

/// Positions a pass's prompt is cut to a multiple of. Each length costs a frozen forward
/// (with the MLPs, which the replacement then overrides), so on a long prompt a handful of
/// lengths (9 at 1,025 tokens: 128, 256, ..., 1,024 and the whole), one below 128.
const PREFIX_BUCKET: usize = 128;

/// Prompt copies times tokens one backward pass takes at most. The batched frozen forward
/// holds every copy's activations for the backward; past about this many, passes get slower
/// as well as larger (BENCHMARKS.md, "Attribution graphs": at 251 tokens, 64 rows a pass
/// took 101 s and 7.1 GB where 4 took 26 s and 3.8 GB; 600 copy-tokens were the fastest
/// measured at 17 and 251 tokens).
const ROW_TOKENS: usize = 600;

/// A node that writes to the residual stream, as a graph's columns name them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// An index into `Replacement::active`.
    Feature(usize),
    Error {
        layer: usize,
        pos: usize,
    },
    Token(usize),
}

impl Replacement<'_> {
    /// The model's next-token probabilities at the last position, of its logits as it
    /// outputs them (soft-capped where the family caps them).
    pub fn probabilities(&self) -> Result<Vec<f32>> {
        let logits = match self.model.final_softcap() {
            Some(c) => (&self.last_logits / c).tanh() * c,
            None => self.last_logits.shallow_clone(),
        };
        Ok(Vec::<f32>::try_from(logits.softmax(-1, Kind::Double).to_kind(Kind::Float))?)
    }

    /// The column of `source` in `rows`.
    pub fn column(&self, source: Source) -> usize {
        match source {
            Source::Feature(i) => i,
            Source::Error { layer, pos } => self.active.len() + layer * self.n_pos() + pos,
            Source::Token(pos) => self.active.len() + self.n_layers() * self.n_pos() + pos,
        }
    }

    /// What `source` writes and where: each layer's MLP output it writes to (or the
    /// embedding, for a token: layer None), its position, its vector [d].
    fn written(&self, source: Source) -> Result<Vec<(Option<usize>, usize, Tensor)>> {
        Ok(match source {
            Source::Feature(i) => {
                let a = self.active.get(i).ok_or_else(|| eyre!("no active feature {i}"))?;
                let rows = self.transcoders.directions(a.layer, a.feature)?;
                rows.into_iter().map(|(j, v)| (Some(j), a.pos, v.to_kind(Kind::Float) * f64::from(a.activation))).collect()
            }
            Source::Error { layer, pos } => vec![(Some(layer), pos, self.errors[layer].get(pos as i64))],
            Source::Token(pos) => vec![(None, pos, self.embeddings.get(pos as i64))],
        })
    }

    /// The targets' values in the frozen replacement model (the clean run's patterns and
    /// scales, features held at their activations) with `scale` times `source`'s vector
    /// added where it writes: pre-activations less the encoder bias, and demeaned logits.
    /// The replacement model is linear there, so each value moves by `scale` times the
    /// target's row entry for the source: the check circuit-tracer's own tests make.
    pub fn perturbed(&self, source: Option<(Source, f64)>, targets: &[Target]) -> Result<Vec<f64>> {
        let _guard = tch::no_grad_guard();
        let device = self.model.device();
        let t = self.tokens.len() as i64;
        let input = Tensor::from_slice(&self.tokens).view([1, t]).to_device(device);
        let add: Vec<(Option<usize>, i64, Tensor)> = match source {
            Some((s, scale)) => self.written(s)?.into_iter().map(|(layer, pos, v)| (layer, pos as i64, v * scale)).collect(),
            None => Vec::new(),
        };
        let n = self.n_layers();
        let mut points = vec![HookPoint::new(0, Site::ResidPre)];
        for l in 0..n {
            points.push(reads_at(&self.transcoders.layers[l], l));
            points.push(HookPoint::new(l, Site::MlpOut));
        }
        let inputs: RefCell<Vec<Tensor>> = RefCell::new(Vec::new());
        let last = {
            let mut edit = HookEdit::new(points, |p: HookPoint, v: Tensor| -> Result<Tensor> {
                let plus = |v: Tensor, at: Option<usize>| {
                    let mut here = add.iter().filter(|(layer, ..)| *layer == at).peekable();
                    if here.peek().is_none() {
                        return v;
                    }
                    let v = v.copy();
                    for (_, pos, d) in here {
                        let mut row = v.get(0).get(*pos);
                        row += d.to_kind(row.kind());
                    }
                    v
                };
                Ok(match p.site {
                    Site::ResidPre => plus(v, None),
                    Site::MlpOut => {
                        let x = inputs.borrow().last().map(Tensor::shallow_clone).ok_or_else(|| eyre!("internal: MLP output before its input"))?;
                        let out = match self.transcoders.layers[p.layer].skip(&x) {
                            Some(k) => k + self.constants[p.layer].unsqueeze(0),
                            None => self.constants[p.layer].unsqueeze(0),
                        };
                        plus(out, Some(p.layer))
                    }
                    _ => {
                        inputs.borrow_mut().push(v.shallow_clone());
                        v
                    }
                })
            });
            self.model.frozen_forward(&input, &self.freeze, &mut edit)?
        };
        let inputs = inputs.into_inner();
        targets
            .iter()
            .map(|target| {
                let v = match *target {
                    Target::Feature(i) => {
                        let a = self.active.get(i).ok_or_else(|| eyre!("no active feature {i}"))?;
                        let x = inputs[a.layer].get(0).get(a.pos as i64).to_kind(Kind::Float);
                        x.dot(&self.transcoders.layers[a.layer].encoder_column(a.feature)?.to_kind(Kind::Float))
                    }
                    Target::Logit(token) => last.get(0).get(t - 1).to_kind(Kind::Float).dot(&self.logit_direction(token)),
                };
                Ok(v.double_value(&[]))
            })
            .collect()
    }
}

/// The hook a transcoder reads at layer `l`.
pub(crate) fn reads_at(tc: &Sae, l: usize) -> HookPoint {
    tc.cfg.hook_name.as_deref().and_then(HookPoint::parse).unwrap_or(HookPoint::new(l, Site::MlpIn))
}

fn vec_i64(t: &Tensor) -> Result<Vec<i64>> {
    Ok(Vec::<i64>::try_from(t.to_device(Device::Cpu).contiguous().view([-1]))?)
}

/// Each feature's entry `g[b, pos_i] . v_i` for gradients `g` [b, t, d] at its layer's
/// writes, its positions `pos` [n] (ascending) and source vectors `v` [n, d]: as matmuls of
/// a block of positions against the features there, then the diagonal picked out, instead
/// of gathering a [b, n, d] copy of the gradients.
fn feature_entries(g: &Tensor, pos: &Tensor, v: &Tensor) -> Result<Tensor> {
    /// Positions per block. The product computes every feature in the block against every
    /// position there, `BLOCK` times the entries wanted, so small blocks; too small and the
    /// matmuls are too many. At 1,024 tokens, 1,000 rows: 64 took 148 s, 16 126 s, 8 119 s.
    const BLOCK: i64 = 8;
    let positions = vec_i64(pos)?;
    let mut out = Vec::new();
    let mut start = 0usize;
    while start < positions.len() {
        let first = positions[start];
        let end = start + positions[start..].partition_point(|&p| p < first + BLOCK);
        let last = positions[end - 1];
        let block = g.narrow(1, first, last - first + 1);
        let seg = v.narrow(0, start as i64, (end - start) as i64);
        let m = block.matmul(&seg.tr()); // [b, positions, features]
        let at = (pos.narrow(0, start as i64, (end - start) as i64) - first).view([1, 1, -1]).expand([m.size()[0], 1, -1], false);
        out.push(m.gather(1, &at, false).squeeze_dim(1));
        start = end;
    }
    Ok(Tensor::cat(&out, 1))
}

/// The frozen forward over `batch` copies of the prompt's first `len` positions, with leaves
/// where sources write: the embedding (the residual entering block 0) and, per layer, the
/// constant part of the MLP's output (its output minus the skip term), whose gradients give
/// every row.
struct Frozen {
    batch: i64,
    len: i64,
    embed: Tensor,
    writes: Vec<Tensor>,
    /// Per layer, the transcoder's input [batch, t, d_in] (where feature targets read).
    inputs: Vec<Tensor>,
    /// The final norm's output [batch, t, d] (where logit targets read).
    last: Tensor,
}

impl Frozen {
    fn build(r: &Replacement, batch: usize, len: usize) -> Result<Self> {
        let device = r.model.device();
        let b = batch as i64;
        let t = len.min(r.tokens.len()) as i64;
        let input = Tensor::from_slice(&r.tokens[..t as usize]).view([1, t]).repeat([b, 1]).to_device(device);
        let cut;
        let freeze = if t < r.tokens.len() as i64 {
            cut = r.freeze.prefix(t);
            &cut
        } else {
            &r.freeze
        };
        let n = r.n_layers();
        let mut points = vec![HookPoint::new(0, Site::ResidPre)];
        for l in 0..n {
            points.push(reads_at(&r.transcoders.layers[l], l));
            points.push(HookPoint::new(l, Site::MlpOut));
        }
        let state = RefCell::new((None::<Tensor>, Vec::<Tensor>::new(), Vec::<Tensor>::new()));
        let last = {
            let mut edit = HookEdit::new(points, |p: HookPoint, v: Tensor| -> Result<Tensor> {
                let mut s = state.borrow_mut();
                Ok(match p.site {
                    Site::ResidPre => {
                        let leaf = v.detach().set_requires_grad(true);
                        s.0 = Some(leaf.shallow_clone());
                        leaf
                    }
                    Site::MlpOut => {
                        let x = s.1.last().ok_or_else(|| eyre!("internal: MLP output before its input"))?.shallow_clone();
                        let skip = r.transcoders.layers[p.layer].skip(&x);
                        let constant = match &skip {
                            Some(k) => (&v - k).detach(),
                            None => v.detach(),
                        };
                        let leaf = constant.set_requires_grad(true);
                        s.2.push(leaf.shallow_clone());
                        match skip {
                            Some(k) => k + leaf,
                            None => leaf,
                        }
                    }
                    _ => {
                        s.1.push(v.shallow_clone());
                        v
                    }
                })
            });
            tch::with_grad(|| r.model.frozen_forward(&input, freeze, &mut edit))?
        };
        let (embed, inputs, writes) = state.into_inner();
        let embed = embed.ok_or_else(|| eyre!("internal: the embedding was not reached"))?;
        Ok(Self { batch: b, len: t, embed, writes, inputs, last })
    }

    /// Rows of up to `batch` targets, each within the first `len` positions, from one
    /// backward pass; entries at later positions are zero.
    fn rows(&self, r: &Replacement, targets: &[Target]) -> Result<Vec<Vec<f32>>> {
        let kind = self.last.kind();
        let device = self.last.device();
        let t = self.len;
        let full = r.tokens.len() as i64;
        // One injection per copy of the prompt; copies past the targets inject nothing.
        let mut inject_in: Vec<Option<Tensor>> = (0..r.n_layers()).map(|_| None).collect();
        let inject_last = Tensor::zeros(self.last.size(), (kind, device));
        for (b, target) in targets.iter().enumerate() {
            let b = b as i64;
            match *target {
                Target::Feature(i) => {
                    let a = r.active.get(i).ok_or_else(|| eyre!("internal: no active feature {i}"))?;
                    if a.pos as i64 >= t {
                        bail!("internal: a target at position {} in a pass of {t} positions", a.pos);
                    }
                    let x = &self.inputs[a.layer];
                    let g = inject_in[a.layer].get_or_insert_with(|| Tensor::zeros(x.size(), (x.kind(), device)));
                    let column = r.transcoders.layers[a.layer].encoder_column(a.feature)?;
                    g.get(b).get(a.pos as i64).copy_(&column.to_kind(x.kind()));
                }
                Target::Logit(token) => {
                    if t < full {
                        bail!("internal: a logit target in a pass of {t} of the prompt's {full} positions");
                    }
                    inject_last.get(b).get(t - 1).copy_(&r.logit_direction(token).to_kind(kind));
                }
            }
        }
        // Only the reads a target injects at join the objective: a batch of features below
        // layer L then runs backward through layers below L alone.
        let mut terms: Vec<Tensor> = Vec::new();
        if targets.iter().any(|t| matches!(t, Target::Logit(_))) {
            terms.push((&self.last * &inject_last).sum(Kind::Float));
        }
        for (x, g) in self.inputs.iter().zip(&inject_in) {
            if let Some(g) = g {
                terms.push((x * g).sum(Kind::Float));
            }
        }
        let objective = terms.into_iter().reduce(|a, b| a + b).ok_or_else(|| eyre!("internal: no target in a batch"))?;
        let mut leaves = vec![self.embed.shallow_clone()];
        leaves.extend(self.writes.iter().map(Tensor::shallow_clone));
        let grads = Tensor::run_backward(&[objective], &leaves, true, false);
        let _guard = tch::no_grad_guard();
        let n = targets.len() as i64;
        // A leaf the batch's targets do not reach (a layer above all of them) has no
        // gradient: its entries are zero.
        let grad = |i: usize, like: &Tensor| -> Tensor {
            match grads.get(i).filter(|g| g.defined() && g.numel() > 0) {
                Some(g) => g.narrow(0, 0, n).to_kind(Kind::Float),
                None => Tensor::zeros([n, t, like.size()[1]], (Kind::Float, like.device())),
            }
        };
        // Sources past the pass's positions: zero entries, to keep every row's columns.
        let zeros = |width: i64| Tensor::zeros([n, width], (Kind::Float, device));
        let per_position = |g: Tensor, v: &Tensor| -> Tensor {
            let e = (g * v.narrow(0, 0, t).unsqueeze(0)).sum_dim_intlist([-1i64].as_slice(), false, Kind::Float);
            if t < full {
                Tensor::cat(&[e, zeros(full - t)], 1)
            } else {
                e
            }
        };
        let mut parts: Vec<Tensor> = Vec::new();
        for (pos, writes) in &r.by_layer {
            let all = pos.size()[0];
            if all == 0 {
                continue;
            }
            // Features are by position: the first `inside` are within the pass.
            let inside = vec_i64(pos)?.partition_point(|&p| p < t) as i64;
            if inside > 0 {
                // A feature's entry sums what it writes to every layer it writes to.
                let mut sum: Option<Tensor> = None;
                for (j, vectors) in writes {
                    let e = feature_entries(&grad(j + 1, &r.errors[*j]), &pos.narrow(0, 0, inside), &vectors.narrow(0, 0, inside))?;
                    sum = Some(match sum {
                        Some(s) => s + e,
                        None => e,
                    });
                }
                parts.extend(sum);
            }
            if inside < all {
                parts.push(zeros(all - inside));
            }
        }
        for (l, err) in r.errors.iter().enumerate() {
            parts.push(per_position(grad(l + 1, err), err));
        }
        parts.push(per_position(grad(0, &r.embeddings), &r.embeddings));
        let rows = Tensor::cat(&parts, 1).to_device(Device::Cpu).contiguous();
        let width = rows.size()[1] as usize;
        let flat = Vec::<f32>::try_from(rows.view([-1]))?;
        debug_assert!(self.batch >= n);
        Ok(flat.chunks(width.max(1)).map(<[f32]>::to_vec).collect())
    }
}
