//! NumPy's `.npz` as Gemma Scope (the first, for Gemma 2) ships its SAEs (`params.npz`: a
//! zip of one `.npy` per array, `W_enc`, `W_dec`, `b_enc`, `b_dec`, `threshold`). Each
//! `.npy` is a magic string, a header (a Python dict literal naming the dtype, the order and
//! the shape) and the raw values; the header is parsed as text, never evaluated. The
//! arrays are read into memory once.

use crate::weights::arrays::Arrays;
use crate::weights::zip::{contents, entries, stored_zip};
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The arrays in the `.npz` at `path`.
pub fn open(path: &Path) -> Result<Arrays> {
    open_but(path, &[])
}

/// The arrays in the `.npz` at `path` but those named in `skip`, which are read again from
/// the file if asked for (`Arrays::forget`): a report reads no SAE's decoder, and a mapped
/// file's untouched arrays never come into memory.
pub fn open_but(path: &Path, skip: &[&str]) -> Result<Arrays> {
    let file = std::fs::File::open(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    // SAFETY: read-only, and the map lives only while the arrays are copied out of it.
    let map = unsafe { memmap2::Mmap::map(&file) }.wrap_err_with(|| format!("cannot map {}", path.display()))?;
    let tensors = parse(&map, skip).wrap_err_with(|| format!("{} is not a NumPy .npz of arrays", path.display()))?;
    let mut arrays = Arrays::new(path, tensors).reopenable(open);
    for name in skip {
        arrays.forget(name);
    }
    Ok(arrays)
}

fn parse(b: &[u8], skip: &[&str]) -> Result<BTreeMap<String, Tensor>> {
    let mut out = BTreeMap::new();
    for e in entries(b)? {
        let Some(name) = e.name.strip_suffix(".npy") else { continue };
        if skip.contains(&name) {
            continue;
        }
        let t = npy(&contents(b, &e)?).wrap_err_with(|| format!("array {name}"))?;
        out.insert(name.to_string(), t);
    }
    if out.is_empty() {
        bail!("it holds no .npy arrays");
    }
    Ok(out)
}

/// One `.npy`: little-endian floats of 2, 4 or 8 bytes, in C order.
fn npy(b: &[u8]) -> Result<Tensor> {
    if !b.starts_with(MAGIC) || b.len() < 10 {
        bail!("not a .npy array (no NUMPY magic)");
    }
    let (len, start) = match b[6] {
        1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10),
        2 | 3 => (b.get(8..12).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| eyre!("a cut header"))? as usize, 12),
        v => bail!(".npy format version {v} is not one saescope reads (1 to 3)"),
    };
    let header = std::str::from_utf8(b.get(start..start + len).ok_or_else(|| eyre!("a cut header"))?).map_err(|_| eyre!("a header that is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let at = header.find(&format!("'{key}':")).ok_or_else(|| eyre!("a header without {key}: {header}"))?;
        Ok(header[at + key.len() + 3..].trim_start())
    };
    let descr = field("descr")?;
    let (kind, size) = match descr.get(..5) {
        Some("'<f4'") => (Kind::Float, 4),
        Some("'<f2'") => (Kind::Half, 2),
        Some("'<f8'") => (Kind::Double, 8),
        _ => bail!("dtype {} is not a little-endian float", descr.split(',').next().unwrap_or(descr)),
    };
    if field("fortran_order")?.starts_with("True") {
        bail!("a Fortran-ordered array; save it in C order");
    }
    let shape_text = field("shape")?;
    let inner = shape_text.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or_else(|| eyre!("a shape that is not a tuple: {shape_text}"))?;
    let shape: Vec<i64> =
        inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse::<i64>().map_err(|_| eyre!("a shape of {inner}"))).collect::<Result<_>>()?;
    let n: i64 = shape.iter().product();
    let data = b.get(start + len..).unwrap_or_default();
    if data.len() as i64 != n * size as i64 {
        bail!("{} bytes of values for shape {shape:?} ({} expected; truncated?)", data.len(), n * size as i64);
    }
    Ok(Tensor::f_from_data_size(data, &shape, kind)?)
}

/// Writes `arrays` (f32, C order, `(name, shape, values)`) as `np.savez` does: a stored zip
/// of `NAME.npy` (format 1.0). What `saescope synth --family gemma2` writes Gemma Scope's
/// SAEs in.
pub fn write(path: &Path, arrays: &[(&str, Vec<usize>, Vec<f32>)]) -> Result<()> {
    let files: Vec<(String, Vec<u8>)> = arrays
        .iter()
        .map(|(name, shape, values)| {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
            let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
            // Magic, version and length take 10 bytes; the header ends in \n at a 64-byte boundary.
            while (10 + header.len() + 1) % 64 != 0 {
                header.push(' ');
            }
            header.push('\n');
            let mut b = MAGIC.to_vec();
            b.extend([1, 0]);
            b.extend((header.len() as u16).to_le_bytes());
            b.extend(header.as_bytes());
            b.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            (format!("{name}.npy"), b)
        })
        .collect();
    crate::runtime::fsio::write_atomic(path, &stored_zip(&files))
}

#[cfg(test)]
mod tests {
    /// What `write` writes, this reader reads back (and NumPy: scripts/reference_formats.py).
    #[test]
    fn written_arrays_read_back_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("params.npz");
        let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
        super::write(&path, &[("W_enc", vec![2, 3], a.clone()), ("b_enc", vec![3], vec![1.0, -2.0, 3.5])]).expect("write");
        let f = super::open(&path).expect("read");
        assert_eq!(f.names(), ["W_enc", "b_enc"]);
        assert_eq!(Vec::<f32>::try_from(f.tensor("W_enc", &[2, 3]).expect("W_enc").view([-1])).expect("v"), a);
        assert_eq!(Vec::<f32>::try_from(f.tensor("b_enc", &[3]).expect("b")).expect("v"), [1.0, -2.0, 3.5]);
        assert!(f.tensor("W_enc", &[3, 2]).is_err());
        let bytes = std::fs::read(&path).expect("bytes");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("cut");
        assert!(super::open(&path).is_err(), "a truncated file is refused");
    }
}
