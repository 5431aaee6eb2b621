//! `torch.save` checkpoints (`.pt`) as some SAE releases ship them (the kk attention SAEs):
//! a zip archive of `NAME/data.pkl` (the pickled state dict, read by the restricted reader
//! in pickle.rs: no code from the file ever runs) and `NAME/data/KEY` (each storage's raw
//! little-endian bytes, stored uncompressed; zip.rs reads the archive). The tensors are read
//! into memory once.

use crate::weights::arrays::Arrays;
use crate::weights::pickle::{Object, PickleValue};
use crate::weights::zip::{contents, entries, stored_zip};
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

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

/// The state dict in the checkpoint at `path`.
pub fn open(path: &Path) -> Result<Arrays> {
    let bytes = std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let tensors = parse(&bytes).wrap_err_with(|| format!("{}", path.display()))?;
    Ok(Arrays::new(path, tensors))
}

fn parse(b: &[u8]) -> Result<BTreeMap<String, Tensor>> {
    let entries = entries(b)?;
    let pkl =
        entries.iter().find(|e| e.name.ends_with("/data.pkl") || e.name == "data.pkl").ok_or_else(|| eyre!("no data.pkl inside: not a torch checkpoint"))?;
    let prefix = pkl.name.strip_suffix("data.pkl").unwrap_or_default().to_string();
    if let Some(order) = entries.iter().find(|e| e.name == format!("{prefix}byteorder")) {
        if contents(b, order)?.as_ref() != b"little" {
            bail!("a big-endian checkpoint");
        }
    }
    let PickleValue::Dict(items) = crate::weights::pickle::load(&contents(b, pkl)?)? else {
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
        let storage = Tensor::f_from_data_size(&raw, &[numel], kind)?;
        out.insert(name, storage.as_strided(size.as_slice(), stride.as_slice(), Some(offset)).contiguous());
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    /// What `write` writes, this reader (and torch.load: scripts/reference_pt.py) reads back.
    #[test]
    fn written_state_dicts_read_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("x.pt");
        let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
        super::write(&path, &[("W_enc", vec![2, 3], a.clone()), ("b_enc", vec![3], vec![1.0, -2.0, 3.5])]).expect("write");
        let f = super::open(&path).expect("read");
        assert_eq!(f.names(), ["W_enc", "b_enc"]);
        let w = f.tensor("W_enc", &[2, 3]).expect("W_enc");
        assert_eq!(Vec::<f32>::try_from(w.view([-1])).expect("v"), a);
        assert_eq!(Vec::<f32>::try_from(f.tensor("b_enc", &[3]).expect("b")).expect("v"), [1.0, -2.0, 3.5]);
    }
}
