//! A restricted reader of Python pickles: it rebuilds plain data (numbers, strings, tuples,
//! lists, dicts) and the few objects a torch checkpoint is made of, and refuses every other
//! global the pickle names, so reading a weight file never runs code from it (Python's
//! `pickle.load` would call whatever the file asks for, `os.system` included).
//!
//! Written here rather than taken from a crate: serde-pickle (the maintained one) has no
//! persistent ids (`BINPERSID`), which is how torch points at its tensor storages, and
//! repugnant-pickle is a 0.0.1 scraper; candle's reader comes with all of candle-core.
//! The opcodes are those of protocols 0-5 that `torch.save` and `pickle.dump` of plain data
//! emit; anything else is an error naming the opcode.

use color_eyre::eyre::{bail, eyre, Result};

/// A rebuilt value.
#[derive(Debug, Clone, PartialEq)]
pub enum PickleValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<PickleValue>),
    List(Vec<PickleValue>),
    /// Insertion order kept (an `OrderedDict` is a dict here).
    Dict(Vec<(PickleValue, PickleValue)>),
    /// A global the caller allowed, not yet called.
    Global(String, String),
    /// What `Globals::call` made of calling an allowed global.
    Object(Box<Object>),
}

/// Objects a torch checkpoint holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
    Tensor { storage: Box<PickleValue>, offset: i64, size: Vec<i64>, stride: Vec<i64> },
    /// A persistent id, as `torch.save` writes a storage: ('storage', type, key, location, numel).
    Persistent(Box<PickleValue>),
}

impl PickleValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PickleValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            PickleValue::Int(i) => Some(*i),
            PickleValue::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn items(&self) -> Option<&[PickleValue]> {
        match self {
            PickleValue::Tuple(v) | PickleValue::List(v) => Some(v),
            _ => None,
        }
    }
}

/// The globals a pickle may name, and what calling each (REDUCE) makes.
const ALLOWED: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("torch", "DoubleStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "LongStorage"),
    ("torch", "IntStorage"),
    ("torch", "ShortStorage"),
    ("torch", "CharStorage"),
    ("torch", "ByteStorage"),
    ("torch", "BoolStorage"),
];

fn call(func: &PickleValue, args: Vec<PickleValue>) -> Result<PickleValue> {
    let PickleValue::Global(module, name) = func else { bail!("the pickle calls something that is not a global ({func:?})") };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") if args.is_empty() => Ok(PickleValue::Dict(Vec::new())),
        ("torch._utils", "_rebuild_tensor_v2") => {
            let [storage, offset, size, stride, ..] = args.as_slice() else { bail!("_rebuild_tensor_v2 with {} arguments", args.len()) };
            let ints = |v: &PickleValue, what: &str| -> Result<Vec<i64>> {
                v.items()
                    .ok_or_else(|| eyre!("tensor {what} is not a tuple"))?
                    .iter()
                    .map(|x| x.as_int().ok_or_else(|| eyre!("tensor {what} holds a non-integer")))
                    .collect()
            };
            Ok(PickleValue::Object(Box::new(Object::Tensor {
                storage: Box::new(storage.clone()),
                offset: offset.as_int().ok_or_else(|| eyre!("tensor offset is not an integer"))?,
                size: ints(size, "size")?,
                stride: ints(stride, "stride")?,
            })))
        }
        // A Parameter is its data here.
        ("torch._utils", "_rebuild_parameter") => args.into_iter().next().ok_or_else(|| eyre!("_rebuild_parameter without data")),
        _ => bail!("the pickle calls {module}.{name} with {} arguments, which a weight file has no use for", args.len()),
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<PickleValue>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, PickleValue>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| eyre!("the pickle ends in the middle of an instruction (truncated file?)"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N)?);
        Ok(b)
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| eyre!("the pickle ends in the middle of a name"))?;
        let s = String::from_utf8(rest[..n].to_vec()).map_err(|_| eyre!("a name in the pickle is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }
    fn pop(&mut self) -> Result<PickleValue> {
        self.stack.pop().ok_or_else(|| eyre!("the pickle pops an empty stack"))
    }
    fn top(&mut self) -> Result<&mut PickleValue> {
        self.stack.last_mut().ok_or_else(|| eyre!("the pickle reads an empty stack"))
    }
    fn pop_mark(&mut self) -> Result<Vec<PickleValue>> {
        let m = self.marks.pop().ok_or_else(|| eyre!("the pickle has no mark to return to"))?;
        if m > self.stack.len() {
            bail!("the pickle's mark is past its stack");
        }
        Ok(self.stack.split_off(m))
    }
    fn string(&mut self, n: usize) -> Result<PickleValue> {
        let b = self.take(n)?.to_vec();
        Ok(PickleValue::Str(String::from_utf8(b).map_err(|_| eyre!("a string in the pickle is not UTF-8"))?))
    }
    fn global(&mut self, module: String, name: String) -> Result<()> {
        if !ALLOWED.iter().any(|(m, n)| *m == module && *n == name) {
            bail!("the pickle asks for {module}.{name}, which a weight file has no need of; refused (saescope never runs code from a weight file)");
        }
        self.stack.push(PickleValue::Global(module, name));
        Ok(())
    }
}

/// Reads the pickle in `data` and returns the value it leaves, refusing any global not in
/// the allow-list above.
pub fn load(data: &[u8]) -> Result<PickleValue> {
    let mut m = Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: Default::default() };
    loop {
        let op = m.u8()?;
        match op {
            0x80 => {
                let proto = m.u8()?;
                if proto > 5 {
                    bail!("pickle protocol {proto} is newer than 5");
                }
            }
            0x95 => {
                m.take(8)?;
            }
            b'.' => return m.pop(),
            b'(' => m.marks.push(m.stack.len()),
            b'}' => m.stack.push(PickleValue::Dict(Vec::new())),
            b']' => m.stack.push(PickleValue::List(Vec::new())),
            b')' => m.stack.push(PickleValue::Tuple(Vec::new())),
            b'N' => m.stack.push(PickleValue::None),
            0x88 => m.stack.push(PickleValue::Bool(true)),
            0x89 => m.stack.push(PickleValue::Bool(false)),
            b'J' => {
                let v = i32::from_le_bytes(m.le::<4>()?);
                m.stack.push(PickleValue::Int(i64::from(v)));
            }
            b'K' => {
                let v = m.u8()?;
                m.stack.push(PickleValue::Int(i64::from(v)));
            }
            b'M' => {
                let v = u16::from_le_bytes(m.le::<2>()?);
                m.stack.push(PickleValue::Int(i64::from(v)));
            }
            0x8a => {
                let n = m.u8()? as usize;
                let b = m.take(n)?;
                if n > 8 {
                    bail!("an integer of {n} bytes in the pickle");
                }
                let mut buf = [if b.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 }; 8];
                buf[..n].copy_from_slice(b);
                m.stack.push(PickleValue::Int(i64::from_le_bytes(buf)));
            }
            b'G' => {
                let v = f64::from_be_bytes(m.le::<8>()?);
                m.stack.push(PickleValue::Float(v));
            }
            b'X' => {
                let n = u32::from_le_bytes(m.le::<4>()?) as usize;
                let v = m.string(n)?;
                m.stack.push(v);
            }
            0x8c => {
                let n = m.u8()? as usize;
                let v = m.string(n)?;
                m.stack.push(v);
            }
            0x8d => {
                let n = usize::try_from(u64::from_le_bytes(m.le::<8>()?)).map_err(|_| eyre!("a string too long for this machine"))?;
                let v = m.string(n)?;
                m.stack.push(v);
            }
            b'U' | b'C' => {
                let n = m.u8()? as usize;
                let b = m.take(n)?.to_vec();
                m.stack.push(if op == b'U' { PickleValue::Str(String::from_utf8_lossy(&b).into_owned()) } else { PickleValue::Bytes(b) });
            }
            b'T' | b'B' => {
                let n = u32::from_le_bytes(m.le::<4>()?) as usize;
                let b = m.take(n)?.to_vec();
                m.stack.push(if op == b'T' { PickleValue::Str(String::from_utf8_lossy(&b).into_owned()) } else { PickleValue::Bytes(b) });
            }
            b'q' => {
                let k = u32::from(m.u8()?);
                let v = m.top()?.clone();
                m.memo.insert(k, v);
            }
            b'r' => {
                let k = u32::from_le_bytes(m.le::<4>()?);
                let v = m.top()?.clone();
                m.memo.insert(k, v);
            }
            0x94 => {
                let k = m.memo.len() as u32;
                let v = m.top()?.clone();
                m.memo.insert(k, v);
            }
            b'h' | b'j' => {
                let k = if op == b'h' { u32::from(m.u8()?) } else { u32::from_le_bytes(m.le::<4>()?) };
                let v = m.memo.get(&k).cloned().ok_or_else(|| eyre!("the pickle refers to memo {k}, never stored"))?;
                m.stack.push(v);
            }
            b'c' => {
                let (module, name) = (m.line()?, m.line()?);
                m.global(module, name)?;
            }
            0x93 => {
                let name = m.pop()?;
                let module = m.pop()?;
                let (PickleValue::Str(module), PickleValue::Str(name)) = (module, name) else { bail!("STACK_GLOBAL without two strings") };
                m.global(module, name)?;
            }
            b'Q' => {
                let id = m.pop()?;
                m.stack.push(PickleValue::Object(Box::new(Object::Persistent(Box::new(id)))));
            }
            b't' => {
                let items = m.pop_mark()?;
                m.stack.push(PickleValue::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if m.stack.len() < n {
                    bail!("the pickle builds a tuple of {n} from a shorter stack");
                }
                let items = m.stack.split_off(m.stack.len() - n);
                m.stack.push(PickleValue::Tuple(items));
            }
            b'R' => {
                let args = m.pop()?;
                let func = m.pop()?;
                let PickleValue::Tuple(args) = args else { bail!("the pickle calls with arguments that are not a tuple") };
                let v = call(&func, args)?;
                m.stack.push(v);
            }
            // State for an object: an OrderedDict's `_metadata` and the like; dropped.
            b'b' => {
                m.pop()?;
            }
            b's' => {
                let v = m.pop()?;
                let k = m.pop()?;
                match m.top()? {
                    PickleValue::Dict(d) => d.push((k, v)),
                    other => bail!("the pickle sets an item on {other:?}"),
                }
            }
            b'u' => {
                let items = m.pop_mark()?;
                if items.len() % 2 != 0 {
                    bail!("the pickle sets items from an odd count");
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                match m.top()? {
                    PickleValue::Dict(d) => d.extend(pairs),
                    other => bail!("the pickle sets items on {other:?}"),
                }
            }
            b'a' => {
                let v = m.pop()?;
                match m.top()? {
                    PickleValue::List(l) => l.push(v),
                    other => bail!("the pickle appends to {other:?}"),
                }
            }
            b'e' => {
                let items = m.pop_mark()?;
                match m.top()? {
                    PickleValue::List(l) => l.extend(items),
                    other => bail!("the pickle appends to {other:?}"),
                }
            }
            other => bail!("pickle opcode 0x{other:02x} at byte {} is not one a weight file uses", m.pos - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps({'a': [1, -2, 3.5, 'x'], 'b': (True, None)}, protocol=2)`.
    #[test]
    fn plain_data_is_rebuilt() {
        let bytes: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xq\x03eX\x01\x00\x00\x00bq\x04\x88N\x86q\x05u.";
        let v = load(bytes).expect("loads");
        let want = PickleValue::Dict(vec![
            (
                PickleValue::Str("a".into()),
                PickleValue::List(vec![PickleValue::Int(1), PickleValue::Int(-2), PickleValue::Float(3.5), PickleValue::Str("x".into())]),
            ),
            (PickleValue::Str("b".into()), PickleValue::Tuple(vec![PickleValue::Bool(true), PickleValue::None])),
        ]);
        assert_eq!(v, want);
    }

    /// `pickle.dumps(os.system` reduced with `('touch /tmp/x',)`, protocol 2: the global is
    /// refused before anything could be called.
    #[test]
    fn a_global_that_runs_code_is_refused() {
        let bytes: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x0c\x00\x00\x00touch /tmp/xq\x01\x85q\x02Rq\x03.";
        let e = load(bytes).expect_err("refused").to_string();
        assert!(e.contains("posix.system") && e.contains("refused"), "{e}");
        for cut in 0..bytes.len() {
            assert!(load(&bytes[..cut]).is_err());
        }
    }
}
