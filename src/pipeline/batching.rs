//! Batches: which texts go together (longest first, bounded padded tokens), and the padded
//! tensors with the mask and averaging weights the model and the mean need.

pub use crate::model::tokenizer::Frame;
use tch::Tensor;

/// Groups text indices into batches of at most `batch_tokens` padded tokens, longest
/// texts first so each batch's padding stays small.
pub fn plan<T: AsRef<[u32]>>(tokens: &[T], batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].as_ref().len()));
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let max_len = tokens[order[start]].as_ref().len().max(1);
        let n = (batch_tokens / max_len).max(1).min(order.len() - start);
        out.push(order[start..start + n].to_vec());
        start += n;
    }
    out
}

/// A right-padded batch ready for the model.
pub struct Packed {
    /// [b, t] i64 token ids; padding repeats `pad`.
    pub ids: Tensor,
    /// [b, t] bool, true on real tokens.
    pub mask: Tensor,
    /// [b, 1, t] f32: 1/n on the tokens each text's mean counts, 0 elsewhere.
    pub weights: Tensor,
    /// Tokens each text's mean counts.
    pub n_tokens: Vec<usize>,
    /// Real (unpadded) tokens in the batch, BOS included.
    pub n_real: usize,
}

pub fn pack<'a>(rows: impl Iterator<Item = &'a [u32]>, include_bos: bool, pad: u32) -> Packed {
    pack_to(rows, 1, Frame::bos(include_bos), pad)
}

/// `pack`, averaging over each text's own tokens (`Tokenizer::frame`: without BOS, or a
/// chat template's tokens).
pub fn pack_framed<'a>(rows: impl Iterator<Item = &'a [u32]>, frame: Frame, pad: u32) -> Packed {
    pack_to(rows, 1, frame, pad)
}

/// `pack`, padded to at least `min_len` tokens per row.
pub fn pack_to<'a>(rows: impl Iterator<Item = &'a [u32]>, min_len: usize, frame: Frame, pad: u32) -> Packed {
    let rows: Vec<&[u32]> = rows.collect();
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(min_len).max(1);
    let b = rows.len();
    let mut ids = vec![pad as i64; b * t];
    let mut real = vec![false; b * t];
    let mut weights = vec![0f32; b * t];
    let mut n_tokens = Vec::with_capacity(b);
    for (r, row) in rows.iter().enumerate() {
        let own = frame.counted(row.len());
        let n = own.len();
        n_tokens.push(n);
        for (p, &id) in row.iter().enumerate() {
            ids[r * t + p] = id as i64;
            real[r * t + p] = true;
            if own.contains(&p) {
                weights[r * t + p] = 1.0 / n as f32;
            }
        }
    }
    let (bi, ti) = (b as i64, t as i64);
    Packed {
        ids: Tensor::from_slice(&ids).view([bi, ti]),
        mask: Tensor::from_slice(&real).view([bi, ti]),
        weights: Tensor::from_slice(&weights).view([bi, 1, ti]),
        n_tokens,
        n_real: rows.iter().map(|r| r.len()).sum(),
    }
}
