//! safetensors files of f32 tensors (stored as f32 or f16), shared by the model, the selector and
//! the trainer's optimizer state.
//!
//! Integrity: every file written here carries, in its metadata, the CRC-32 (IEEE) of each tensor's
//! stored bytes under `crc32.<tensor name>` (8 lower-case hex digits); readers verify each tensor
//! before decoding it, so flipped bytes are an error naming the tensor instead of a model that
//! loads and writes garbage. Files written before checksums existed (no `crc32.*` key at all)
//! are read unverified; `abridge migrate` adds them.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{io, Error, Result};

/// How weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightType {
    F32,
    /// IEEE half precision (round to nearest): half the size; inference reads it back as f32.
    F16,
}

/// Little-endian bytes of `v`.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes `bytes` to `path` through `path` + `.tmp` and a rename: a reader sees the old file or
/// the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    write_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to `path` and flushes them to the disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Flushes a directory's entries (creations, renames) to the disk. A no-op where directories
/// cannot be opened (Windows).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(io(d))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The metadata prefix of a tensor's checksum.
pub const CHECKSUM_PREFIX: &str = "crc32.";

/// CRC-32 (IEEE) of `bytes`, as stored in the metadata.
pub fn checksum(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

/// Checks tensor `name`'s stored bytes `data` against the file's metadata `meta`: its checksum
/// must match when the file has checksums, and every tensor must have one then. The message
/// names the tensor.
pub fn verify_checksum(
    meta: &HashMap<String, String>,
    name: &str,
    data: &[u8],
) -> std::result::Result<(), String> {
    match meta.get(&format!("{CHECKSUM_PREFIX}{name}")) {
        Some(want) => {
            let got = checksum(data);
            if *want == got {
                Ok(())
            } else {
                Err(format!(
                    "tensor `{name}` fails its checksum (crc32 {got}, stored {want}): the file is \
                     damaged"
                ))
            }
        }
        None if meta.keys().any(|k| k.starts_with(CHECKSUM_PREFIX)) => Err(format!(
            "tensor `{name}` has no checksum while the file's other tensors do: the file is \
             damaged"
        )),
        None => Ok(()),
    }
}

/// Writes a safetensors file of `(name, shape, dtype, bytes)` entries with metadata `meta` and
/// each tensor's checksum (into a folder that is itself renamed into place: a checkpoint's).
pub fn st_write(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Dtype, Vec<u8>)>,
    meta: HashMap<String, String>,
) -> Result<()> {
    write_synced(path, &st_bytes(path, tensors, meta)?)
}

/// [`st_write`] through a temporary name and a rename ([`write_atomic`]).
pub fn st_write_atomic(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Dtype, Vec<u8>)>,
    meta: HashMap<String, String>,
) -> Result<()> {
    write_atomic(path, &st_bytes(path, tensors, meta)?)
}

/// The bytes of a safetensors file of `tensors`, with metadata `meta` and each tensor's checksum;
/// `path` names it in errors.
fn st_bytes(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Dtype, Vec<u8>)>,
    mut meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    for (n, _, _, bytes) in &tensors {
        meta.insert(format!("{CHECKSUM_PREFIX}{n}"), checksum(bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, shape, dt, bytes)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes)
                    .expect("shape matches data"),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::invalid(path, e.to_string()))
}

/// Rewrites safetensors file `path` with each tensor's checksum and the metadata `extra` when it
/// has no checksums yet (a file from before they existed); tensors and other metadata are kept
/// byte for byte. Returns whether it wrote.
pub fn add_checksums(path: &Path, extra: &[(&str, String)]) -> Result<bool> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::invalid(path, format!("not a safetensors file: {e}")))?;
    let mut meta = header.metadata().clone().unwrap_or_default();
    if meta.keys().any(|k| k.starts_with(CHECKSUM_PREFIX)) {
        return Ok(false);
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::invalid(path, e.to_string()))?;
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec(), t.dtype(), t.data().to_vec()))
        .collect();
    for (k, v) in extra {
        meta.insert(k.to_string(), v.clone());
    }
    st_write_atomic(path, tensors, meta)?;
    Ok(true)
}

/// Reads every named tensor of `into` (`(name, shape, values)`) from `st`, f32 or f16, checking
/// its shape and its checksum in the file's metadata `meta`; `path` names the file in errors.
pub fn fill_tensors(
    st: &SafeTensors<'_>,
    meta: &HashMap<String, String>,
    path: &Path,
    into: Vec<(String, Vec<usize>, &mut [f32])>,
) -> Result<()> {
    for (name, shape, data) in into {
        let t = st
            .tensor(&name)
            .map_err(|_| Error::invalid(path, format!("tensor `{name}` is missing")))?;
        verify_checksum(meta, &name, t.data()).map_err(|m| Error::invalid(path, m))?;
        if !matches!(t.dtype(), Dtype::F32 | Dtype::F16) || t.shape() != shape.as_slice() {
            return Err(Error::invalid(
                path,
                format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 or F16 {:?}",
                    t.dtype(),
                    t.shape(),
                    shape
                ),
            ));
        }
        if t.dtype() == Dtype::F16 {
            for (d, c) in data.iter_mut().zip(t.data().chunks_exact(2)) {
                *d = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        } else {
            for (d, c) in data.iter_mut().zip(t.data().chunks_exact(4)) {
                *d = f32::from_le_bytes(c.try_into().expect("4 bytes"));
            }
        }
    }
    Ok(())
}

/// Tensors as safetensors entries in `dtype` (f16 rounds to nearest).
pub fn encode_tensors(
    tensors: Vec<(String, Vec<usize>, &mut [f32])>,
    dtype: WeightType,
) -> Vec<(String, Vec<usize>, Dtype, Vec<u8>)> {
    tensors
        .into_iter()
        .map(|(n, shape, d)| match dtype {
            WeightType::F32 => (n, shape, Dtype::F32, f32_bytes(d)),
            WeightType::F16 => (
                n,
                shape,
                Dtype::F16,
                d.iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
            ),
        })
        .collect()
}
