//! safetensors files of f32 tensors (stored as f32 or f16), shared by the model, the selector and
//! the trainer's optimizer state.

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

/// Writes `bytes` to `path` through `path.tmp` and a rename: a reader sees the old file or the
/// new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
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

/// Writes a safetensors file of `(name, shape, dtype, bytes)` entries with metadata `meta`.
pub fn st_write(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Dtype, Vec<u8>)>,
    meta: HashMap<String, String>,
) -> Result<()> {
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
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::invalid(path, e.to_string()))?;
    write_synced(path, &bytes)
}

/// Reads every named tensor of `into` (`(name, shape, values)`) from `st`, f32 or f16, checking
/// its shape; `path` names the file in errors.
pub fn fill_tensors(
    st: &SafeTensors<'_>,
    path: &Path,
    into: Vec<(String, Vec<usize>, &mut [f32])>,
) -> Result<()> {
    for (name, shape, data) in into {
        let t = st
            .tensor(&name)
            .map_err(|_| Error::invalid(path, format!("tensor `{name}` is missing")))?;
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
