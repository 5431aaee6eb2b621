//! Checkpoints too large to build in memory, written as the hub ships them: bf16 or f32
//! tensors in shards of at most 5 GB (transformers' `save_pretrained` default) with
//! `model.safetensors.index.json`, one tensor at a time. Gemma 3 4B's 7.8 GB of bf16 would
//! need 23 GB as the f32 map plus bytes that synth/gpt2.rs's `write_safetensors` builds.

use color_eyre::eyre::{eyre, Result, WrapErr};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One tensor to write: N(0, std) entries in bf16.
pub struct Planned {
    pub name: String,
    pub shape: Vec<usize>,
    pub std: f32,
}

const SHARD_BYTES: usize = 5_000_000_000;
/// Entries drawn and converted at a time (16 MB of f32).
const CHUNK: usize = 1 << 22;

/// f32 to bf16 with round-to-nearest-even, as torch's `.to(torch.bfloat16)` rounds.
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// Writes `tensors` into DIR/model-0000K-of-0000N.safetensors and the index beside them,
/// in the order given (shard boundaries fall between tensors).
/// The dtype the tensors are stored in: Gemma 3 ships bf16, Gemma 2 f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Bf16,
    F32,
}

impl Stored {
    fn width(self) -> usize {
        match self {
            Stored::Bf16 => 2,
            Stored::F32 => 4,
        }
    }
}

pub fn write(dir: &Path, tensors: &[Planned], stored: Stored, rng: &mut ChaCha8Rng) -> Result<()> {
    write_in(dir, tensors, stored, SHARD_BYTES, rng)
}

fn write_in(dir: &Path, tensors: &[Planned], stored: Stored, shard_bytes: usize, rng: &mut ChaCha8Rng) -> Result<()> {
    let bytes = |p: &Planned| p.shape.iter().product::<usize>() * stored.width();
    let dtype = if stored == Stored::Bf16 { "BF16" } else { "F32" };
    let mut shards: Vec<Vec<&Planned>> = vec![Vec::new()];
    let mut filled = 0;
    for p in tensors {
        if filled > 0 && filled + bytes(p) > shard_bytes {
            shards.push(Vec::new());
            filled = 0;
        }
        filled += bytes(p);
        shards.last_mut().map(|s| s.push(p)).ok_or_else(|| eyre!("internal: no shard"))?;
    }
    let n = shards.len();
    let mut weight_map = BTreeMap::new();
    let mut total = 0usize;
    for (k, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{n:05}.safetensors", k + 1);
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let mut at = 0usize;
        for p in shard {
            header.insert(p.name.clone(), serde_json::json!({"dtype": dtype, "shape": p.shape, "data_offsets": [at, at + bytes(p)]}));
            at += bytes(p);
            weight_map.insert(p.name.clone(), file.clone());
        }
        total += at;
        let mut json = serde_json::to_string(&header)?;
        // The data starts 8-byte aligned, as safetensors pads its header.
        json.push_str(&" ".repeat((8 - json.len() % 8) % 8));
        let path = dir.join(&file);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).wrap_err_with(|| format!("cannot create {}", path.display()))?);
        out.write_all(&(json.len() as u64).to_le_bytes())?;
        out.write_all(json.as_bytes())?;
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * stored.width());
        for p in shard {
            let dist = Normal::new(0.0f32, p.std).map_err(|e| eyre!("std {} of {}: {e}", p.std, p.name))?;
            let mut left = bytes(p) / stored.width();
            while left > 0 {
                let now = left.min(CHUNK);
                buf.clear();
                match stored {
                    Stored::Bf16 => buf.extend((0..now).flat_map(|_| bf16_bits(dist.sample(rng)).to_le_bytes())),
                    Stored::F32 => buf.extend((0..now).flat_map(|_| dist.sample(rng).to_le_bytes())),
                }
                out.write_all(&buf).wrap_err_with(|| format!("cannot write {}", path.display()))?;
                left -= now;
            }
        }
        out.flush().wrap_err_with(|| format!("cannot write {}", path.display()))?;
    }
    let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    super::gpt2::write_json(&dir.join("model.safetensors.index.json"), &index)
}

#[cfg(test)]
mod tests {
    use super::Planned;
    use rand::SeedableRng;

    /// What the writer makes opens as a sharded checkpoint: every tensor in its shard, bf16
    /// views of the draws at their scale.
    #[test]
    fn shards_open_as_the_hubs_checkpoints_do() {
        let tmp = tempfile::tempdir().expect("tmp");
        let plan = |name: &str, shape: Vec<usize>, std: f32| Planned { name: name.into(), shape, std };
        let tensors = [plan("a.weight", vec![64, 32], 1.0), plan("b.weight", vec![32], 0.1), plan("c.weight", vec![16, 64], 2.0)];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        // 4 KB shards: a's 4,096 bytes fill the first; b and c share the second.
        super::write_in(tmp.path(), &tensors, super::Stored::Bf16, 4096, &mut rng).expect("write");
        assert!(tmp.path().join("model-00002-of-00002.safetensors").is_file());
        let ck = crate::weights::checkpoint::Checkpoint::open(&tmp.path().join("model.safetensors.index.json")).expect("open");
        for p in &tensors {
            let t = ck.tensor_as(&p.name, &p.shape, tch::Kind::BFloat16).expect("tensor");
            assert_eq!(t.kind(), tch::Kind::BFloat16);
            let std = t.to_kind(tch::Kind::Float).std(true).double_value(&[]) as f32;
            assert!((std / p.std - 1.0).abs() < 0.25, "{}: std {std}, drawn at {}", p.name, p.std);
        }
        let f32s = tempfile::tempdir().expect("tmp");
        super::write_in(f32s.path(), &tensors, super::Stored::F32, 1 << 20, &mut rng).expect("write");
        let ck = crate::weights::checkpoint::Checkpoint::open(&f32s.path().join("model.safetensors.index.json")).expect("open");
        assert_eq!(ck.tensor("c.weight", &[16, 64]).expect("f32").kind(), tch::Kind::Float);
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(super::bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even 1.
        assert_eq!(super::bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(super::bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(super::bf16_bits(-2.5), 0xc020);
    }
}
