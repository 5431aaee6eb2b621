//! `torch.save` checkpoints (`.pt`) as some SAE releases ship them (the kk attention SAEs):
//! a zip archive of `NAME/data.pkl` (the pickled state dict, read by the restricted reader
//! in pickle.rs: no code from the file ever runs) and `NAME/data/KEY` (each storage's raw
//! little-endian bytes, stored uncompressed). The tensors are read into memory once.

use crate::weights::pickle::{Object, PickleValue};
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

pub struct PtFile {
    path: PathBuf,
    tensors: BTreeMap<String, Tensor>,
}

/// One entry of the zip's central directory.
struct ZipEntry {
    name: String,
    method: u16,
    size: u64,
    local_offset: u64,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(|| eyre!("the zip directory is cut short"))
}
fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| eyre!("the zip directory is cut short"))
}
fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    let s = b.get(at..at + 8).ok_or_else(|| eyre!("the zip directory is cut short"))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// The central directory of a zip (zip64 too, which torch writes for large files).
fn entries(b: &[u8]) -> Result<Vec<ZipEntry>> {
    const EOCD: u32 = 0x0605_4b50;
    let from = b.len().saturating_sub(22 + 65_535);
    let eocd = (from..b.len().saturating_sub(21)).rev().find(|&i| u32_at(b, i).ok() == Some(EOCD)).ok_or_else(|| {
        if b.starts_with(&[0x80]) {
            eyre!("a legacy (pre-zip) torch checkpoint; re-save it with a torch from 1.6 on")
        } else {
            eyre!("not a zip archive, so not a torch checkpoint")
        }
    })?;
    let (mut count, mut cd_size, mut cd_offset) = (u64::from(u16_at(b, eocd + 10)?), u64::from(u32_at(b, eocd + 12)?), u64::from(u32_at(b, eocd + 16)?));
    // Zip64: the end record's locator sits just before it.
    if eocd >= 20 && u32_at(b, eocd - 20)? == 0x0706_4b50 {
        let at = usize::try_from(u64_at(b, eocd - 20 + 8)?)?;
        if u32_at(b, at)? != 0x0606_4b50 {
            bail!("a damaged zip64 end record");
        }
        (count, cd_size, cd_offset) = (u64_at(b, at + 32)?, u64_at(b, at + 40)?, u64_at(b, at + 48)?);
    }
    let start = usize::try_from(cd_offset)?;
    let end = start
        .checked_add(usize::try_from(cd_size)?)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| eyre!("the zip directory points past the file's end (truncated?)"))?;
    let mut out = Vec::new();
    let mut at = start;
    while out.len() < count as usize && at < end {
        if u32_at(b, at)? != 0x0201_4b50 {
            bail!("a damaged zip directory entry");
        }
        let method = u16_at(b, at + 10)?;
        let (mut size, name_len, extra_len, comment_len) =
            (u64::from(u32_at(b, at + 24)?), usize::from(u16_at(b, at + 28)?), usize::from(u16_at(b, at + 30)?), usize::from(u16_at(b, at + 32)?));
        let mut local_offset = u64::from(u32_at(b, at + 42)?);
        let compressed32 = u32_at(b, at + 20)?;
        let name = String::from_utf8_lossy(b.get(at + 46..at + 46 + name_len).ok_or_else(|| eyre!("the zip directory is cut short"))?).into_owned();
        // Zip64 extra field: the 64-bit values of the fields that are 0xFFFFFFFF, in order.
        let mut x = at + 46 + name_len;
        let extra_end = x + extra_len;
        while x + 4 <= extra_end {
            let (id, len) = (u16_at(b, x)?, usize::from(u16_at(b, x + 2)?));
            if id == 1 {
                let mut f = x + 4;
                if size == 0xFFFF_FFFF {
                    size = u64_at(b, f)?;
                    f += 8;
                }
                if compressed32 == 0xFFFF_FFFF {
                    f += 8;
                }
                if local_offset == 0xFFFF_FFFF {
                    local_offset = u64_at(b, f)?;
                }
            }
            x += 4 + len;
        }
        out.push(ZipEntry { name, method, size, local_offset });
        at = extra_end + comment_len;
    }
    Ok(out)
}

/// An entry's bytes, found through its local header.
fn contents<'a>(b: &'a [u8], e: &ZipEntry) -> Result<&'a [u8]> {
    if e.method != 0 {
        bail!("{} is compressed (method {}); torch stores checkpoint entries uncompressed", e.name, e.method);
    }
    let at = usize::try_from(e.local_offset)?;
    if u32_at(b, at)? != 0x0403_4b50 {
        bail!("a damaged zip entry header for {}", e.name);
    }
    let data = at + 30 + usize::from(u16_at(b, at + 26)?) + usize::from(u16_at(b, at + 28)?);
    b.get(data..data + usize::try_from(e.size)?).ok_or_else(|| eyre!("{} runs past the end of the file (truncated?)", e.name))
}

/// The element kind and size of a torch storage type (`torch.FloatStorage`...).
fn storage_kind(v: &PickleValue) -> Result<(Kind, usize)> {
    let PickleValue::Global(_, name) = v else { bail!("a storage without a type") };
    Ok(match name.as_str() {
        "FloatStorage" => (Kind::Float, 4),
        "DoubleStorage" => (Kind::Double, 8),
        "HalfStorage" => (Kind::Half, 2),
        "BFloat16Storage" => (Kind::BFloat16, 2),
        "LongStorage" => (Kind::Int64, 8),
        "IntStorage" => (Kind::Int, 4),
        "ShortStorage" => (Kind::Int16, 2),
        "CharStorage" => (Kind::Int8, 1),
        "ByteStorage" => (Kind::Uint8, 1),
        "BoolStorage" => (Kind::Bool, 1),
        other => bail!("storage type {other} is not supported"),
    })
}

impl PtFile {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
        let tensors = Self::parse(&bytes).wrap_err_with(|| format!("{}", path.display()))?;
        Ok(Self { path: path.to_owned(), tensors })
    }

    fn parse(b: &[u8]) -> Result<BTreeMap<String, Tensor>> {
        let entries = entries(b)?;
        let pkl = entries
            .iter()
            .find(|e| e.name.ends_with("/data.pkl") || e.name == "data.pkl")
            .ok_or_else(|| eyre!("no data.pkl inside: not a torch checkpoint"))?;
        let prefix = pkl.name.strip_suffix("data.pkl").unwrap_or_default().to_string();
        if let Some(order) = entries.iter().find(|e| e.name == format!("{prefix}byteorder")) {
            if contents(b, order)? != b"little" {
                bail!("a big-endian checkpoint");
            }
        }
        let PickleValue::Dict(items) = crate::weights::pickle::load(contents(b, pkl)?)? else {
            bail!("the checkpoint holds no dict of tensors (a whole pickled model?)")
        };
        let mut out = BTreeMap::new();
        for (k, v) in items {
            let name = k.as_str().ok_or_else(|| eyre!("a state-dict key that is not a string"))?.to_string();
            let PickleValue::Object(obj) = v else { continue };
            let Object::Tensor { storage, offset, size, stride } = *obj else { continue };
            let PickleValue::Object(p) = *storage else { bail!("{name}: a tensor without a storage") };
            let Object::Persistent(id) = *p else { bail!("{name}: a tensor without a storage") };
            // ('storage', type, key, location, numel)
            let id = id.items().ok_or_else(|| eyre!("{name}: a storage id that is not a tuple"))?.to_vec();
            let [_, ty, key, _, numel] = id.as_slice() else { bail!("{name}: a storage id of {} items", id.len()) };
            let (kind, elem) = storage_kind(ty)?;
            let key = key.as_str().ok_or_else(|| eyre!("{name}: a storage key that is not a string"))?;
            let numel = numel.as_int().ok_or_else(|| eyre!("{name}: a storage size that is not an integer"))?;
            let entry =
                entries.iter().find(|e| e.name == format!("{prefix}data/{key}")).ok_or_else(|| eyre!("{name}: storage {key} is missing from the archive"))?;
            let raw = contents(b, entry)?;
            if raw.len() as i64 != numel * elem as i64 {
                bail!("{name}: storage {key} has {} bytes, {numel} elements of {elem} bytes expected", raw.len());
            }
            // The last element any index reaches must be inside the storage.
            let reach = offset + size.iter().zip(&stride).map(|(n, s)| (n - 1).max(0) * s).sum::<i64>();
            if size.len() != stride.len() || offset < 0 || stride.iter().any(|&s| s < 0) || (size.iter().all(|&n| n > 0) && reach >= numel) {
                bail!("{name}: shape {size:?} with strides {stride:?} from {offset} does not fit its storage of {numel}");
            }
            let storage = Tensor::f_from_data_size(raw, &[numel], kind)?;
            out.insert(name, storage.as_strided(size.as_slice(), stride.as_slice(), Some(offset)).contiguous());
        }
        Ok(out)
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

/// Writes `tensors` (f32, row-major, `(name, shape, values)`) as `torch.save` writes a
/// state dict: the layout synthetic kk-style SAEs ship in (source/synth.rs). A zip of
/// `archive/data.pkl` (protocol 2: a dict of `_rebuild_tensor_v2` over persistent
/// `FloatStorage` ids), `archive/data/N` and `archive/version`, stored, each record's data
/// 64-byte aligned as torch aligns it.
pub fn write(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Result<()> {
    let pickle = state_dict_pickle(tensors);
    let mut files: Vec<(String, Vec<u8>)> = vec![("archive/data.pkl".into(), pickle)];
    for (i, (_, _, values)) in tensors.iter().enumerate() {
        files.push((format!("archive/data/{i}"), values.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    files.push(("archive/version".into(), b"3\n".to_vec()));
    crate::runtime::fsio::write_atomic(path, &stored_zip(&files))
}

/// The pickle `torch.save` writes for a dict of f32 tensors.
fn state_dict_pickle(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    let text = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    };
    let int = |p: &mut Vec<u8>, n: usize| {
        p.push(b'J');
        p.extend((n as i32).to_le_bytes());
    };
    for (i, (name, shape, values)) in tensors.iter().enumerate() {
        text(&mut p, name);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        // The persistent id: ('storage', torch.FloatStorage, key, 'cpu', numel).
        p.push(b'(');
        text(&mut p, "storage");
        p.extend(b"ctorch\nFloatStorage\n");
        text(&mut p, &i.to_string());
        text(&mut p, "cpu");
        int(&mut p, values.len());
        p.extend(b"tQ");
        int(&mut p, 0);
        p.push(b'(');
        shape.iter().for_each(|&d| int(&mut p, d));
        p.push(b't');
        p.push(b'(');
        let strides: Vec<usize> = (0..shape.len()).map(|k| shape[k + 1..].iter().product()).collect();
        strides.iter().for_each(|&s| int(&mut p, s));
        p.push(b't');
        p.push(0x89);
        p.extend(b"ccollections\nOrderedDict\n)Rt");
        p.push(b'R');
    }
    p.extend(b"u.");
    p
}

/// A zip of stored (uncompressed) entries whose data start on 64-byte boundaries.
fn stored_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        // Padding in the local header's extra field puts the data on a 64-byte boundary.
        let pad = (64 - (out.len() + 30 + name.len() + 4) % 64) % 64;
        let extra_len = 4 + pad;
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(crc.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend((extra_len as u16).to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(0xcafeu16.to_le_bytes());
        out.extend((pad as u16).to_le_bytes());
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend(crc.to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((data.len() as u32).to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0u8; 12]);
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0u8; 2]);
    out
}

#[cfg(test)]
mod tests {
    /// What `write` writes, this reader (and torch.load: scripts/reference_pt.py) reads back.
    #[test]
    fn written_state_dicts_read_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("x.pt");
        let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
        super::write(&path, &[("W_enc", vec![2, 3], a.clone()), ("b_enc", vec![3], vec![1.0, -2.0, 3.5])]).expect("write");
        let f = super::PtFile::open(&path).expect("read");
        assert_eq!(f.names(), ["W_enc", "b_enc"]);
        let w = f.tensor("W_enc", &[2, 3]).expect("W_enc");
        assert_eq!(Vec::<f32>::try_from(w.view([-1])).expect("v"), a);
        assert_eq!(Vec::<f32>::try_from(f.tensor("b_enc", &[3]).expect("b")).expect("v"), [1.0, -2.0, 3.5]);
    }
}
