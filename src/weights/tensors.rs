//! Memory-mapped safetensors files, turned into libtorch tensors with every name, shape
//! and dtype checked, so a bad file is one clear error instead of a crash mid-forward.

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::{Kind, Tensor};

/// One opened safetensors file. Tensors handed out may borrow the map without a copy, so
/// whoever holds those tensors also holds an `Arc` of this.
pub struct SafeFile {
    path: PathBuf,
    mmap: Mmap,
    header_len: usize,
    metadata: Metadata,
    /// Whether a tensor handed out on CPU is a view of the map (its dtype the file's):
    /// then the pages are the weights and must not be released.
    viewed: AtomicBool,
}

impl SafeFile {
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        if path.extension().is_some_and(|e| e == "pt" || e == "bin" || e == "pth") {
            bail!("{} is a pickle file; saescope only loads .safetensors (pickles can run code)", path.display());
        }
        let file = std::fs::File::open(path).wrap_err_with(|| format!("cannot open {}", path.display()))?;
        // SAFETY: the file is opened read-only; a concurrent writer truncating it is the only
        // hazard, the same one every mmap-based loader (including Python's) accepts.
        let mmap = unsafe { Mmap::map(&file) }.wrap_err_with(|| format!("cannot map {}", path.display()))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&mmap).map_err(|e| {
            eyre!("{} is not a valid safetensors file ({e:?}); it may be truncated: delete it and download or generate it again", path.display())
        })?;
        Ok(Arc::new(Self { path: path.to_owned(), mmap, header_len, metadata, viewed: AtomicBool::new(false) }))
    }

    /// Drops the file's pages from this process's memory once the weights have been
    /// copied (to a GPU, or to `--dtype bf16`): they were read for the conversion and the finiteness
    /// check, and would otherwise count in RSS beside the converted copies. The kernel
    /// reads them again from the file if a lazily loaded tensor (W_dec, ln_f) needs them.
    pub fn release_pages(&self) {
        #[cfg(unix)]
        // SAFETY: a read-only shared file mapping; MADV_DONTNEED only drops resident pages,
        // and later reads see the file's (unchanged) bytes again. No Rust reference into
        // the map is invalidated.
        unsafe {
            let _ = self.mmap.unchecked_advise(memmap2::UncheckedAdvice::DontNeed);
        }
    }

    /// Releases the pages when the tensors placed on `device` are copies, not views of the
    /// map (a bf16 checkpoint read as bf16 on CPU is used in place, as an f32 one as f32).
    pub fn release_if_copied(&self, device: tch::Device) {
        if device != tch::Device::Cpu || !self.viewed.load(Ordering::Relaxed) {
            self.release_pages();
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> Vec<String> {
        self.metadata.tensors().into_keys().collect()
    }

    /// First of `candidates` present in the file; lets callers accept naming variants
    /// such as HF's optional `transformer.` prefix.
    pub fn find(&self, candidates: &[String]) -> Option<String> {
        let tensors = self.metadata.tensors();
        candidates.iter().find(|c| tensors.contains_key(c.as_str())).cloned()
    }

    /// Bytes the tensors whose names pass `keep` take once loaded as f32.
    pub fn bytes_matching(&self, keep: impl Fn(&str) -> bool) -> u64 {
        self.metadata.tensors().iter().filter(|(n, _)| keep(n)).map(|(_, i)| 4 * i.shape.iter().product::<usize>() as u64).sum()
    }

    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.metadata.tensors().get(name).map(|i| i.shape.clone())
    }

    fn info(&self, name: &str) -> Result<TensorInfo> {
        self.metadata.tensors().get(name).map(|i| (*i).clone()).ok_or_else(|| eyre!("{} has no tensor named {name}", self.path.display()))
    }

    /// The named tensor as f32 on CPU, checked against `shape` and for NaN/Inf.
    /// Zero-copy when the data is f32 and 4-byte aligned (the usual case).
    pub fn tensor(self: &Arc<Self>, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.tensor_as(name, shape, Kind::Float)
    }

    /// The named tensor as `kind` on CPU, checked against `shape` and for NaN/Inf: a view
    /// of the map when the file holds `kind` (aligned, as safetensors aligns), else one
    /// conversion from the file's dtype, so a bf16 checkpoint read as bf16 costs no memory
    /// beyond its pages and is never widened to f32 on the way.
    pub fn tensor_as(self: &Arc<Self>, name: &str, shape: &[usize], kind: Kind) -> Result<Tensor> {
        let info = self.info(name)?;
        if info.shape != shape {
            bail!("{}: tensor {name} has shape {:?}, expected {:?} (the config and weights disagree)", self.path.display(), info.shape, shape);
        }
        let (start, end) = info.data_offsets;
        let bytes = &self.mmap[self.header_len + 8 + start..self.header_len + 8 + end];
        let size: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let (stored, width) = match info.dtype {
            Dtype::F32 => (Kind::Float, 4),
            Dtype::F16 => (Kind::Half, 2),
            Dtype::BF16 => (Kind::BFloat16, 2),
            Dtype::F64 => (Kind::Double, 8),
            other => bail!("{}: tensor {name} has dtype {other:?}; expected a float type", self.path.display()),
        };
        let aligned = (bytes.as_ptr() as usize).is_multiple_of(width);
        let raw = if aligned {
            // SAFETY: the bytes lie inside the map, which every holder of this tensor keeps
            // alive through the Arc; the tensor is never resized or written in place.
            unsafe { Tensor::f_from_blob(bytes.as_ptr(), &size, &[], stored, tch::Device::Cpu)? }
        } else {
            Tensor::f_from_data_size(bytes, &size, stored)?
        };
        if aligned && stored == kind {
            self.viewed.store(true, Ordering::Relaxed);
        }
        // The same kind gives back `raw` itself.
        let t = raw.f_to_kind(kind)?;
        if !all_finite(&t)? {
            bail!("{}: tensor {name} contains NaN or Inf; the file is corrupt or from a diverged run", self.path.display());
        }
        Ok(t)
    }
}

impl SafeFile {
    /// Rows `rows` of the named tensor (along its first axis) as f32 on CPU [rows, rest...],
    /// read alone: a cross-layer transcoder's decoders are tens of GB, and a graph touches
    /// only its active features' rows. Checked against `shape` and for NaN/Inf.
    pub fn rows(&self, name: &str, shape: &[usize], rows: &[i64]) -> Result<Tensor> {
        let info = self.info(name)?;
        if info.shape != shape || shape.is_empty() {
            bail!("{}: tensor {name} has shape {:?}, expected {:?} (the files disagree)", self.path.display(), info.shape, shape);
        }
        let (kind, width) = match info.dtype {
            Dtype::F32 => (Kind::Float, 4),
            Dtype::F16 => (Kind::Half, 2),
            Dtype::BF16 => (Kind::BFloat16, 2),
            other => bail!("{}: tensor {name} has dtype {other:?}; expected a float type", self.path.display()),
        };
        let row_len: usize = shape[1..].iter().product();
        let row_bytes = row_len * width;
        let base = self.header_len + 8 + info.data_offsets.0;
        let mut buf = Vec::with_capacity(rows.len() * row_bytes);
        for &r in rows {
            if r < 0 || r as usize >= shape[0] {
                bail!("{}: row {r} of {name} is past its {} rows", self.path.display(), shape[0]);
            }
            let at = base + r as usize * row_bytes;
            buf.extend_from_slice(&self.mmap[at..at + row_bytes]);
        }
        let mut size = vec![rows.len() as i64];
        size.extend(shape[1..].iter().map(|&d| d as i64));
        let t = Tensor::f_from_data_size(&buf, &size, kind)?.f_to_kind(Kind::Float)?;
        if !all_finite(&t)? {
            bail!("{}: tensor {name} contains NaN or Inf; the file is corrupt or from a diverged run", self.path.display());
        }
        Ok(t)
    }
}

impl SafeFile {
    /// Row `row` of the named tensor (along its first axis; a 1-D tensor's element `row`)
    /// as f64, whatever its numeric dtype: Gemma Scope 2's examples.safetensors keeps token
    /// ids, sequence numbers and positions as integers beside its activations
    /// (neuronpedia/scope_examples.rs), a few rows of which a card reads.
    pub fn row_values(&self, name: &str, row: usize) -> Result<Vec<f64>> {
        let info = self.info(name)?;
        let Some(&rows) = info.shape.first() else { bail!("{}: tensor {name} is a scalar, not rows", self.path.display()) };
        if row >= rows {
            bail!("{}: row {row} of {name} is past its {rows} rows", self.path.display());
        }
        let width = match info.dtype {
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
            Dtype::I8 | Dtype::U8 => 1,
            other => bail!("{}: tensor {name} has dtype {other:?}; expected a number type", self.path.display()),
        };
        let row_len: usize = info.shape[1..].iter().product();
        let at = self.header_len + 8 + info.data_offsets.0 + row * row_len * width;
        let bytes = &self.mmap[at..at + row_len * width];
        Ok(bytes
            .chunks_exact(width)
            .map(|b| match info.dtype {
                Dtype::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                Dtype::I64 => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64,
                Dtype::U64 => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64,
                Dtype::F32 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                Dtype::I32 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                Dtype::U32 => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                Dtype::F16 => f64::from(half_to_f32(u16::from_le_bytes([b[0], b[1]]))),
                Dtype::BF16 => f64::from(f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)),
                Dtype::I16 => f64::from(i16::from_le_bytes([b[0], b[1]])),
                Dtype::U16 => f64::from(u16::from_le_bytes([b[0], b[1]])),
                Dtype::I8 => f64::from(b[0] as i8),
                _ => f64::from(b[0]),
            })
            .collect())
    }
}

/// IEEE half precision to f32 (the bits widened; subnormals scaled).
fn half_to_f32(h: u16) -> f32 {
    let (sign, exp, frac) = (u32::from(h >> 15), u32::from((h >> 10) & 0x1f), u32::from(h & 0x3ff));
    let v = match exp {
        0 => frac as f32 * 2f32.powi(-24),
        31 => {
            if frac == 0 {
                f32::INFINITY
            } else {
                f32::NAN
            }
        }
        e => f32::from_bits(((e + 112) << 23) | (frac << 13)),
    };
    if sign == 1 {
        -v
    } else {
        v
    }
}

/// Elements checked at once by `all_finite`: its temporaries (libtorch's isfinite makes an
/// absolute-value copy and two masks) stay at about 6 bytes per element of a chunk, not of
/// the tensor (Gemma's 262k-token embedding would take 1 GB at once).
const FINITE_CHUNK: i64 = 1 << 22;

/// Whether every element of `t` is finite, checked a chunk at a time.
fn all_finite(t: &Tensor) -> Result<bool> {
    let flat = t.f_reshape([-1])?;
    let n = flat.size()[0];
    let mut at = 0;
    while at < n {
        let len = FINITE_CHUNK.min(n - at);
        if flat.f_narrow(0, at, len)?.f_isfinite()?.f_all()?.f_int64_value(&[])? != 1 {
            return Ok(false);
        }
        at += len;
    }
    Ok(true)
}
