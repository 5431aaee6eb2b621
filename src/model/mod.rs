//! The seam between a model family and everything else. A family (gpt2.rs, gemma.rs, llama.rs, neox.rs) is
//! one file holding its config, its weight loading and its forward; the engine holds one as
//! `Box<dyn Family>`, and SAEs, analysis and views see only hook points (hooks.rs) and
//! tensors in the shapes below, never which family ran.
//!
//! Values cross the seam in the model's own terms (the Hugging Face checkpoint's numbers);
//! `view` turns one into what TransformerLens's hook holds under a release's processing,
//! which is what an SAE was trained to read. Edits made while generating (`HookEdit`) act on
//! the model's own values: a change to a hook's value is the same change under either view.
//!
//! config.rs is the one file that names every family; the rest of the crate asks it, never
//! a family, what a checkpoint is.

pub mod chat;
pub mod config;
pub mod gemma;
pub mod gpt2;
pub mod hooks;
pub mod layer_norm;
pub mod llama;
pub mod neox;
pub mod rope;
pub mod tokenizer;

use crate::model::hooks::{HookPoint, Processing};
use color_eyre::eyre::Result;
use tch::{Device, Kind, Tensor};

/// What happens at hook points while the model runs: at each point of `at`, given its
/// value [.., d] (`attn.hook_z`: heads concatenated), either the value to carry on with
/// (`new`: steering, ablation, gradients) or nothing (`observe`: reading hooks). A family
/// calls it block by block in depth order, and computes nothing apart for other points;
/// where the value is only read, it runs its usual fused kernels (GPT-2's LayerNorm keeps
/// `ln2.hook_normalized` inside it), so reading a hook never changes a number.
pub struct HookEdit<'a> {
    at: Vec<HookPoint>,
    action: HookAction<'a>,
}

type Read<'a> = dyn FnMut(HookPoint, &Tensor) -> Result<()> + 'a;
type Change<'a> = dyn FnMut(HookPoint, Tensor) -> Result<Tensor> + 'a;

enum HookAction<'a> {
    Observe(Box<Read<'a>>),
    Edit(Box<Change<'a>>),
}

impl<'a> HookEdit<'a> {
    pub fn new(at: Vec<HookPoint>, edit: impl FnMut(HookPoint, Tensor) -> Result<Tensor> + 'a) -> Self {
        Self { at, action: HookAction::Edit(Box::new(edit)) }
    }

    pub fn observe(at: Vec<HookPoint>, read: impl FnMut(HookPoint, &Tensor) -> Result<()> + 'a) -> Self {
        Self { at, action: HookAction::Observe(Box::new(read)) }
    }

    pub fn wants(&self, point: HookPoint) -> bool {
        self.at.contains(&point)
    }

    /// Whether the value at `point` may come back changed.
    pub fn changes(&self, point: HookPoint) -> bool {
        self.wants(point) && matches!(self.action, HookAction::Edit(_))
    }

    /// `value` through the edit at `point`, or as it is where none is asked for.
    pub fn apply(&mut self, point: HookPoint, value: Tensor) -> Result<Tensor> {
        if !self.wants(point) {
            return Ok(value);
        }
        match &mut self.action {
            HookAction::Observe(read) => read(point, &value).map(|()| value),
            HookAction::Edit(edit) => edit(point, value),
        }
    }
}

/// A model family's forward passes, as the engine uses them.
pub trait Family: Send {
    /// The family's name in messages (`GPT-2`, `Gemma 3`).
    fn name(&self) -> &'static str;
    /// Blocks the model has.
    fn n_layers(&self) -> usize;
    /// Blocks loaded (a run that reads early hooks never loads the rest).
    fn n_blocks(&self) -> usize;
    /// The longest sequence, in tokens, the model takes.
    fn n_ctx(&self) -> usize;
    /// Width of the residual stream.
    fn d_model(&self) -> usize;
    /// Rows of the embedding: token ids at or past it do not exist.
    fn vocab_size(&self) -> usize;
    fn device(&self) -> Device;
    /// The compute dtype every weight is held in.
    fn kind(&self) -> Kind;
    /// FLOPs one block spends on one token of a `t`-token sequence: 2 per weight of the
    /// projections and the MLP, 4 t per query dimension for attention's scores and mix.
    /// What `saescope bench` divides its compute time into.
    fn block_flops(&self, t: usize) -> f64;

    /// The values at `requested` hook points, in the order given, each [batch, seq, d] as
    /// TransformerLens holds it under that point's processing, in one pass that stops in
    /// the last block any point needs. `tokens` [batch, seq] i64, right-padded; `mask`
    /// [batch, seq] bool, true on real tokens.
    fn hooks_each(&self, tokens: &Tensor, mask: &Tensor, requested: &[(HookPoint, Processing)]) -> Result<Vec<Tensor>>;

    /// Next-token logits [batch, seq, vocab] (f32) of a right-padded batch (as
    /// `hooks_each` takes it), every hook point passing through `edit`: many texts'
    /// spliced forwards in one pass (eval.rs). Needs every block loaded.
    fn logits_each(&self, tokens: &Tensor, mask: &Tensor, edit: &mut HookEdit) -> Result<Tensor>;

    /// A value at `hook` in the model's own terms, as TransformerLens holds it under
    /// `processing` (what `hooks_each` returns, for a value met while generating).
    fn view(&self, hook: HookPoint, value: &Tensor, processing: Processing) -> Result<Tensor>;

    /// The model's own value at `hook` whose `view` is `new`, nearest the `value` it
    /// replaces: what a splice writes back. Computed from `new` directly, not as
    /// `value + (new - view(value))`: for a centred residual that sum leaves the mean plus
    /// the rounding of subtracting two large vectors, and the next LayerNorm scales that
    /// rounding up (eval's zero ablation then read as far from uniform logits).
    fn unview(&self, hook: HookPoint, value: &Tensor, new: &Tensor, processing: Processing) -> Result<Tensor>;

    /// Next-token logits [new positions, vocab] (f32) for `tokens`, which continue the
    /// positions in `cache` (a fresh cache: a whole prompt), every hook point passing
    /// through `edit` on the way. Needs every block loaded.
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, edit: &mut HookEdit) -> Result<Tensor>;

    /// The replacement model's forward, for attribution graphs (graph/): every block over
    /// `tokens` [b, t] (one prompt, no padding), every norm's scale and every attention
    /// pattern detached from autograd, so what reaches the unembedding is linear in what
    /// is added to the residual; every hook point passes through `edit` (where a graph
    /// puts its transcoders in place of the MLPs). Returns the final norm's output
    /// [b, t, d_model], what `unembedding` reads.
    /// `freeze` holds those scales and patterns: the first run through it records them,
    /// later runs (a perturbed source, an intervention) replay them.
    fn frozen_forward(&self, tokens: &Tensor, freeze: &Freeze, edit: &mut HookEdit) -> Result<Tensor>;

    /// The unembedding [vocab, d_model]: logits are the final norm's output times its
    /// transpose, before any soft-cap.
    fn unembedding(&self) -> Result<Tensor>;

    /// The soft-cap `tanh(l / c) * c` on the output logits, where the family has one (Gemma
    /// 2's 30): the model's probabilities are of capped logits, while a graph's logit nodes
    /// read them before it.
    fn final_softcap(&self) -> Option<f64> {
        None
    }

    /// What tokens `ids` [t] themselves put into the residual stream, [t, d_model]: a
    /// graph's token nodes.
    fn token_embedding(&self, ids: &Tensor) -> Result<Tensor>;

    /// Logits that residual directions `dirs` [n, d_model] write directly, through the
    /// final norm's scale and the unembedding, as TransformerLens's `W_dec @ W_U` reads a
    /// feature (a card's top logits). [n, vocab].
    fn logit_lens(&self, dirs: &Tensor) -> Result<Tensor>;

    /// Directions in `hook`'s space [n, d] as what they add to the residual stream (a
    /// head-concatenated z through the block's output projection; the residual and what
    /// attention and the MLP write as they are).
    fn to_residual(&self, hook: HookPoint, dirs: &Tensor) -> Result<Tensor>;
}

/// What a `Freeze` holds still.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Frozen {
    /// Attention patterns and every norm's scale: the replacement model of a graph.
    #[default]
    PatternsAndScales,
    /// Attention patterns alone: circuit-tracer's interventions with frozen attention.
    Patterns,
    /// Nothing: the model as it runs.
    Nothing,
}

/// The attention patterns and norm scales of one run, kept so that later runs use them
/// instead of their own: in the replacement model they are constants of the prompt, so a
/// perturbed run must see the clean run's (graph/). The first run through a `Freeze`
/// records each frozen value (detached) in the order the forward meets them; every later
/// run replays them in that order, broadcasting over its batch. What is not frozen is
/// computed each run, with its gradient.
#[derive(Default)]
pub struct Freeze {
    what: Frozen,
    /// Each recorded value, and whether it is a pattern ([.., query, key]) rather than a
    /// scale ([.., position, 1]).
    values: std::cell::RefCell<Vec<(Tensor, bool)>>,
    cursor: std::cell::Cell<usize>,
    recorded: std::cell::Cell<bool>,
}

impl Freeze {
    /// Patterns and scales frozen.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn of(what: Frozen) -> Self {
        Self { what, ..Self::default() }
    }

    /// Starts a run; `frozen_forward` calls it.
    pub(crate) fn begin(&self) {
        if self.cursor.get() > 0 || !self.values.borrow().is_empty() {
            self.recorded.set(true);
        }
        self.cursor.set(0);
    }

    /// What a run of the recorded run's first `len` positions replays: its values cut to
    /// those positions (views, no copies). Attention is causal, so they are the patterns and
    /// scales that shorter run has: a graph's row for a target at position p needs only
    /// positions up to p (graph/replacement.rs).
    pub fn prefix(&self, len: i64) -> Self {
        let values = self
            .values
            .borrow()
            .iter()
            .map(|(v, pattern)| {
                let cut = v.narrow(-2, 0, len.min(v.size()[v.dim() - 2]));
                (if *pattern { cut.narrow(-1, 0, len.min(v.size()[v.dim() - 1])) } else { cut }, *pattern)
            })
            .collect();
        Self { what: self.what, values: std::cell::RefCell::new(values), cursor: std::cell::Cell::new(0), recorded: std::cell::Cell::new(true) }
    }

    /// A norm's scale: `computed()`, or the recorded one where scales are frozen.
    pub(crate) fn scale(&self, computed: impl FnOnce() -> Tensor) -> Result<Tensor> {
        self.take(self.what == Frozen::PatternsAndScales, false, computed)
    }

    /// An attention pattern: `computed()`, or the recorded one where patterns are frozen.
    pub(crate) fn pattern(&self, computed: impl FnOnce() -> Tensor) -> Result<Tensor> {
        self.take(self.what != Frozen::Nothing, true, computed)
    }

    fn take(&self, frozen: bool, pattern: bool, computed: impl FnOnce() -> Tensor) -> Result<Tensor> {
        if !frozen {
            return Ok(computed());
        }
        let i = self.cursor.get();
        self.cursor.set(i + 1);
        if self.recorded.get() {
            return self
                .values
                .borrow()
                .get(i)
                .map(|(v, _)| v.shallow_clone())
                .ok_or_else(|| color_eyre::eyre::eyre!("internal: the frozen run met more norms and patterns than the recorded one"));
        }
        let v = computed().detach();
        self.values.borrow_mut().push((v.shallow_clone(), pattern));
        Ok(v)
    }
}

/// `x @ w.T` in f32, for f32 rows `x` [n, d] and an unembedding `w` [vocab, d] in any dtype:
/// a bf16 `w` is widened a block of rows at a time, so a card's logit lens on Gemma 3 12B
/// (a 262k x 3840 embedding) holds 0.25 GB of f32 at once, not 4 GB beside the weights.
pub(crate) fn unembed_f32(x: &Tensor, w: &Tensor) -> Tensor {
    const ROWS: i64 = 16_384;
    if w.kind() == Kind::Float {
        return x.matmul(&w.tr());
    }
    let vocab = w.size()[0];
    let blocks: Vec<Tensor> = (0..vocab).step_by(ROWS as usize).map(|s| x.matmul(&w.narrow(0, s, ROWS.min(vocab - s)).to_kind(Kind::Float).tr())).collect();
    Tensor::cat(&blocks, -1)
}

/// What every family's `hooks_each` checks first: that the blocks `requested` needs are
/// among the `loaded` and a sequence of `t` tokens fits `n_ctx`. Returns the blocks to run.
pub(crate) fn blocks_for(requested: &[(HookPoint, Processing)], loaded: usize, t: usize, n_ctx: usize) -> Result<usize> {
    let needed = requested.iter().map(|(p, _)| p.blocks_needed()).max().unwrap_or(0);
    if needed > loaded {
        let deepest = requested.iter().map(|(p, _)| *p).max().map(|p| p.to_string()).unwrap_or_default();
        color_eyre::eyre::bail!("{deepest} needs {needed} blocks but only {loaded} are loaded");
    }
    if t > n_ctx {
        color_eyre::eyre::bail!("sequence of {t} tokens exceeds n_ctx {n_ctx}");
    }
    Ok(needed)
}

/// What every family's `forward_cached` checks first: every block loaded, and `positions`
/// (the cache's and the new tokens') within `n_ctx`.
pub(crate) fn check_generation(family: &dyn Family, positions: usize) -> Result<()> {
    if family.n_blocks() < family.n_layers() {
        color_eyre::eyre::bail!("generation needs all {} blocks but {} are loaded", family.n_layers(), family.n_blocks());
    }
    if positions > family.n_ctx() {
        color_eyre::eyre::bail!("{positions} positions exceed n_ctx {}: ask for fewer tokens or shorten the prompt", family.n_ctx());
    }
    Ok(())
}

/// The values at `requested`, in their order, each as `family.view` holds it, from one
/// forward that `run` drives with an observer of those points.
pub(crate) fn collect_hooks(family: &dyn Family, requested: &[(HookPoint, Processing)], run: impl FnOnce(&mut HookEdit) -> Result<()>) -> Result<Vec<Tensor>> {
    let mut out: Vec<Option<Tensor>> = (0..requested.len()).map(|_| None).collect();
    {
        let points = requested.iter().map(|(p, _)| *p).collect();
        let mut take = HookEdit::observe(points, |point: HookPoint, value: &Tensor| -> Result<()> {
            for (slot, (p, processing)) in requested.iter().enumerate() {
                if *p == point {
                    out[slot] = Some(family.view(point, value, *processing)?);
                }
            }
            Ok(())
        });
        run(&mut take)?;
    }
    out.into_iter().map(|o| o.ok_or_else(|| color_eyre::eyre::eyre!("internal: hook not filled"))).collect()
}

/// Keys and values of every position seen so far, per block, so generation feeds one new
/// token at a time instead of the whole sequence. Each family lays out its own tensors.
#[derive(Default)]
pub struct KvCache {
    /// Per block: keys and values, [1, heads, positions, head dim] in both families today.
    pub(crate) kv: Vec<(Tensor, Tensor)>,
    pub(crate) len: i64,
}

impl KvCache {
    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Block `i`'s keys and values so far; None for a fresh cache.
    pub(crate) fn past(&self, i: usize) -> Option<(&Tensor, &Tensor)> {
        self.kv.get(i).map(|(k, v)| (k, v))
    }

    /// Stores block `i`'s keys and values of every position so far.
    pub(crate) fn store(&mut self, i: usize, k: Tensor, v: Tensor) {
        if i < self.kv.len() {
            self.kv[i] = (k, v);
        } else {
            self.kv.push((k, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    /// Widening a bf16 unembedding block by block gives what widening it whole gives, across
    /// block edges and the short last block.
    #[test]
    fn a_bf16_unembedding_widened_in_blocks_reads_as_widened_whole() {
        tch::manual_seed(0);
        let w = Tensor::randn([40_000, 8], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        let x = Tensor::randn([3, 8], (Kind::Float, Device::Cpu));
        let whole = x.matmul(&w.to_kind(Kind::Float).tr());
        let blocks = super::unembed_f32(&x, &w);
        assert_eq!(blocks.size(), [3, 40_000]);
        assert_eq!(blocks.kind(), Kind::Float);
        let err = (&blocks - &whole).abs().max().double_value(&[]);
        assert!(err <= 1e-5 * whole.abs().max().double_value(&[]), "max difference {err}");
        // A vector, as the intervention's last position is.
        assert_eq!(super::unembed_f32(&x.get(0), &w).size(), [40_000]);
    }
}
