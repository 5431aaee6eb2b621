//! The SAE encode for indexing, exact at close to bf16 speed: a bf16 matmul screens every
//! (token, feature) pair, and only the pairs that may fire are recomputed in f32. On CPUs
//! with bf16 matmul (AVX512-BF16, AMX) the screen runs ~4x faster than the f32 matmul
//! (BENCHMARKS.md), and only a few hundred of a token's 24,576 pairs pass it.
//!
//! The bound that makes it miss nothing. With x the encoder's f32 input row, W_j the
//! encoder's column j, u = 2^-8 bf16's unit roundoff, and s^ the bf16 matmul's output (f32
//! accumulation of bf16 products, rounded to bf16):
//!   |s^ - x.W_j| <= (3u + d_in 2^-24 + O(u^2)) sum_i |x_i| |W_ij| <= 2^-6 ||x|| ||W_j||
//! (each product carries two input roundings, the output one more, the f32 sum d_in 2^-24;
//! then Cauchy-Schwarz; 3u + 768 * 2^-24 = 0.0118 < 2^-6 = 0.0156, and stays below it for
//! d_in up to ~60,000). A pair is recomputed when s^ + b_j - cut_j + 2^-6 ||x|| ||W_j|| > 0,
//! so every pair whose exact pre-activation passes its cut (0, or JumpReLU's threshold) is
//! recomputed, and its value is the f32 dot product, the same wherever the token sits in a
//! batch. TopK SAEs, non-f32 runs and CUDA use the plain encode.

use crate::sae::Sae;
use color_eyre::eyre::{bail, Result};
use tch::{Device, Kind, Tensor};

/// The screen's margin factor, 2^-6 (see the module comment).
const MARGIN: f32 = 1.0 / 64.0;

pub struct Prefilter {
    w_bf16: Tensor,
    exact: Exact,
}

/// How the index encodes (build.rs `Job`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encode {
    /// The bf16 screen, then the f32 dots of the pairs that pass it (the default).
    Screened,
    /// The same f32 dots for every pair, nothing screened: what the screen must equal
    /// exactly, value for value (tests/dashboard.rs).
    Unscreened,
    /// libtorch's f32 matmul (`SAESCOPE_EXACT_ENCODE=1`).
    Plain,
}

impl Encode {
    /// The screen where this CPU multiplies bf16 faster than f32, else the plain f32
    /// encode; `SAESCOPE_EXACT_ENCODE=1` asks for the plain encode, `=0` for the screen.
    ///
    /// Without bf16 instructions (AVX-512 BF16, AMX; an AVX2-only EPYC here) libtorch's
    /// bf16 matmul falls back to a single-threaded loop several times slower than its f32
    /// one, and the screen would cost what it is meant to save (measured: 185 against
    /// about 700 tokens/s indexing GPT-2 small's four SAEs).
    pub fn from_env() -> Self {
        match std::env::var("SAESCOPE_EXACT_ENCODE").as_deref() {
            Ok("1") => Self::Plain,
            Ok("0") => Self::Screened,
            _ if bf16_pays() => Self::Screened,
            _ => Self::Plain,
        }
    }
}

/// Whether a bf16 matmul of an SAE encode's shape beats the f32 one by a clear margin on
/// this machine: measured once (a few tens of ms), then remembered.
pub fn bf16_pays() -> bool {
    static PAYS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PAYS.get_or_init(|| {
        let _guard = tch::no_grad_guard();
        let time = |kind: Kind| -> f64 {
            let a = Tensor::ones([256, 768], (kind, tch::Device::Cpu));
            let b = Tensor::ones([768, 2048], (kind, tch::Device::Cpu));
            let _ = a.mm(&b);
            let start = std::time::Instant::now();
            for _ in 0..3 {
                let _ = a.mm(&b);
            }
            start.elapsed().as_secs_f64()
        };
        let (f32_s, bf16_s) = (time(Kind::Float), time(Kind::BFloat16));
        bf16_s * 1.25 < f32_s
    })
}

/// The f32 side, plain data so the row loops can share it across threads.
struct Exact {
    d_in: usize,
    d_sae: usize,
    /// W_enc transposed, [d_sae][d_in] f32: each feature's column contiguous for the dots.
    w_t: Vec<f32>,
    b: Vec<f32>,
    cut: Vec<f32>,
    /// b_j - cut_j: the screen's per-feature offset.
    offset: Vec<f32>,
    col_norm: Vec<f32>,
    /// Recompute every pair, whatever the screen says (`Encode::Unscreened`).
    all: bool,
}

impl Prefilter {
    /// None where the plain encode must be used (see the module comment).
    pub fn new(sae: &Sae) -> Result<Option<Self>> {
        Self::build(sae, false)
    }

    /// Every pair's f32 dot, none screened out: the screen's reference.
    pub fn unscreened(sae: &Sae) -> Result<Option<Self>> {
        Self::build(sae, true)
    }

    fn build(sae: &Sae, all: bool) -> Result<Option<Self>> {
        let Some((w, b, cut)) = sae.linear_parts() else { return Ok(None) };
        if w.device() != Device::Cpu || w.kind() != Kind::Float {
            return Ok(None);
        }
        let (d_in, d_sae) = (sae.cfg.d_in, sae.d_sae);
        let w_t = Vec::<f32>::try_from(w.tr().contiguous().view([-1]))?;
        let b = Vec::<f32>::try_from(b.contiguous())?;
        let cut = Vec::<f32>::try_from(cut.contiguous())?;
        let col_norm = Vec::<f32>::try_from(w.norm_scalaropt_dim(2, [0i64].as_slice(), false).contiguous())?;
        let offset = b.iter().zip(&cut).map(|(b, c)| b - c).collect();
        if w_t.len() != d_in * d_sae {
            bail!("internal: encoder shape");
        }
        Ok(Some(Self { w_bf16: w.to_kind(Kind::BFloat16), exact: Exact { d_in, d_sae, w_t, b, cut, offset, col_norm, all } }))
    }

    /// The firing entries of `x` [rows, d_in] (already `Sae::normalized`): flat indices
    /// `row * d_sae + feature`, ascending, and their values.
    pub fn encode(&self, x: &Tensor, threads: usize) -> Result<(Vec<i64>, Vec<f32>)> {
        let x = x.to_kind(Kind::Float).contiguous();
        let rows = x.size()[0] as usize;
        let s = x.to_kind(Kind::BFloat16).matmul(&self.w_bf16).contiguous();
        let norms = Vec::<f32>::try_from(x.norm_scalaropt_dim(2, [1i64].as_slice(), false).contiguous())?;
        let xs = Vec::<f32>::try_from(x.view([-1]))?;
        let (exact, d_sae) = (&self.exact, self.exact.d_sae);
        if s.size() != [rows as i64, d_sae as i64] || s.kind() != Kind::BFloat16 {
            bail!("internal: screen shape");
        }
        // SAFETY: `s` is a contiguous CPU bf16 tensor of rows * d_sae elements, alive and
        // unaliased until this function returns; bf16 is 16 bits, read as u16.
        let screened: &[u16] = unsafe { std::slice::from_raw_parts(s.data_ptr() as *const u16, rows * d_sae) };
        let threads = threads.clamp(1, rows.max(1));
        let per = rows.div_ceil(threads);
        let parts: Vec<(Vec<i64>, Vec<f32>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (from, to) = (t * per, ((t + 1) * per).min(rows));
                    let (xs, norms) = (&xs, &norms);
                    scope.spawn(move || exact.rows(from..to, screened, xs, norms))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        let mut idx = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
        let mut val = Vec::with_capacity(idx.capacity());
        for (i, v) in parts {
            idx.extend(i);
            val.extend(v);
        }
        Ok((idx, val))
    }
}

impl Exact {
    /// Screens and recomputes `rows`.
    fn rows(&self, rows: std::ops::Range<usize>, screened: &[u16], xs: &[f32], norms: &[f32]) -> (Vec<i64>, Vec<f32>) {
        let (mut idx, mut val) = (Vec::new(), Vec::new());
        let (d, n) = (self.d_in, self.d_sae);
        for r in rows {
            let k = MARGIN * norms[r];
            let x = &xs[r * d..(r + 1) * d];
            let line = &screened[r * n..(r + 1) * n];
            for (j, &h) in line.iter().enumerate() {
                let s = f32::from_bits(u32::from(h) << 16);
                if self.all || s + self.offset[j] + k * self.col_norm[j] > 0.0 {
                    let z = dot(x, &self.w_t[j * d..(j + 1) * d]) + self.b[j];
                    if z > self.cut[j] && z > 0.0 {
                        idx.push((r * n + j) as i64);
                        val.push(z);
                    }
                }
            }
        }
        (idx, val)
    }
}

/// f32 dot product in eight lanes (vectorised by the compiler), lanes summed in a fixed
/// order: the same value for the same inputs every time.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}
