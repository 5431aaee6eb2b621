//! Zip archives as weight files use them: torch.save's checkpoints (torch_pt.rs) and
//! NumPy's `.npz` (npz.rs). The central directory (zip64 too), entries stored or deflated,
//! and a writer of stored entries for synthetic files.

use color_eyre::eyre::{bail, eyre, Result};

/// One entry of the zip's central directory.
pub(crate) struct ZipEntry {
    pub name: String,
    method: u16,
    /// Bytes once inflated.
    size: u64,
    /// Bytes in the archive.
    compressed: u64,
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
pub(crate) fn entries(b: &[u8]) -> Result<Vec<ZipEntry>> {
    const EOCD: u32 = 0x0605_4b50;
    let from = b.len().saturating_sub(22 + 65_535);
    let eocd = (from..b.len().saturating_sub(21)).rev().find(|&i| u32_at(b, i).ok() == Some(EOCD)).ok_or_else(|| {
        if b.starts_with(&[0x80]) {
            eyre!("a legacy (pre-zip) torch checkpoint; re-save it with a torch from 1.6 on")
        } else {
            eyre!("not a zip archive")
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
        let mut compressed = u64::from(u32_at(b, at + 20)?);
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
                if compressed == 0xFFFF_FFFF {
                    compressed = u64_at(b, f)?;
                    f += 8;
                }
                if local_offset == 0xFFFF_FFFF {
                    local_offset = u64_at(b, f)?;
                }
            }
            x += 4 + len;
        }
        out.push(ZipEntry { name, method, size, compressed, local_offset });
        at = extra_end + comment_len;
    }
    Ok(out)
}

/// An entry's bytes, found through its local header: as they are where stored, inflated
/// where deflated (`np.savez_compressed` deflates; torch and `np.savez` store).
pub(crate) fn contents<'a>(b: &'a [u8], e: &ZipEntry) -> Result<std::borrow::Cow<'a, [u8]>> {
    let at = usize::try_from(e.local_offset)?;
    if u32_at(b, at)? != 0x0403_4b50 {
        bail!("a damaged zip entry header for {}", e.name);
    }
    let data = at + 30 + usize::from(u16_at(b, at + 26)?) + usize::from(u16_at(b, at + 28)?);
    let raw = b.get(data..data + usize::try_from(e.compressed)?).ok_or_else(|| eyre!("{} runs past the end of the file (truncated?)", e.name))?;
    match e.method {
        0 => Ok(std::borrow::Cow::Borrowed(raw)),
        8 => {
            use std::io::Read;
            let mut out = Vec::with_capacity(usize::try_from(e.size)?);
            flate2::read::DeflateDecoder::new(raw).read_to_end(&mut out).map_err(|err| eyre!("{}: damaged deflate data ({err})", e.name))?;
            if out.len() as u64 != e.size {
                bail!("{}: inflates to {} bytes, the directory says {}", e.name, out.len(), e.size);
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        m => bail!("{} is compressed with method {m}, which saescope does not read (stored and deflate only)", e.name),
    }
}

/// A zip of stored (uncompressed) entries whose data start on 64-byte boundaries.
pub(crate) fn stored_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
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
