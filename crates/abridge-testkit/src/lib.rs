//! Test support shared by Abridge's crates: locating `../shared`, reading PyTorch golden files,
//! closeness assertions, and finite-difference gradient checks. Dev-only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The shared material folder (`../shared` beside the repository root), or `None` when absent.
///
/// `ABRIDGE_SHARED` overrides the search.
pub fn shared_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ABRIDGE_SHARED") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared"))
        .find(|p| p.join("README.md").is_file())
}

/// `shared/<sub>` if it exists; otherwise prints why the calling test is skipped and returns `None`.
pub fn shared_or_skip(sub: &str, test: &str) -> Option<PathBuf> {
    match shared_dir().map(|d| d.join(sub)).filter(|p| p.exists()) {
        Some(p) => Some(p),
        None => {
            eprintln!("SKIPPED {test}: ../shared/{sub} not found (set ABRIDGE_SHARED to the shared folder to run it)");
            None
        }
    }
}

/// A tensor read from a safetensors file, widened to `f64`.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Every tensor of a safetensors file (F32, F64 and I64 are supported).
pub fn read_safetensors(path: &Path) -> HashMap<String, Tensor> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let raw = view.data();
            let data: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::I64 => raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                d => panic!(
                    "{}: tensor {name} has unsupported dtype {d:?}",
                    path.display()
                ),
            };
            (
                name,
                Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            )
        })
        .collect()
}

/// Largest absolute difference divided by the largest magnitude of `want` (1 if that is 0).
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(
        got.len(),
        want.len(),
        "length mismatch: got {} want {}",
        got.len(),
        want.len()
    );
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

/// Asserts `rel_err(got, want) <= tol`, naming the tensor.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let e = rel_err(got, want);
    assert!(e <= tol, "{what}: relative error {e:.3e} > {tol:.1e}");
}

/// Central-difference check of an analytic gradient.
///
/// `loss_at(i, delta)` must return the loss with entry `i` of the parameter moved by `delta`.
/// Fails when `|a − n| / max(|a| + |n|, 1e-7)` exceeds `tol` for any entry.
pub fn check_gradient(
    what: &str,
    analytic: &[f64],
    eps: f64,
    tol: f64,
    loss_at: impl FnMut(usize, f64) -> f64,
) {
    check_gradient_with_floor(what, analytic, eps, tol, 1e-7, loss_at)
}

/// [`check_gradient`] with the denominator floored at `floor`: entries whose gradient is far
/// below the floor are held to an absolute error of `tol · floor`, which is what finite
/// differences can resolve when the loss is a long computation (their round-off is ~1e-9 there).
pub fn check_gradient_with_floor(
    what: &str,
    analytic: &[f64],
    eps: f64,
    tol: f64,
    floor: f64,
    mut loss_at: impl FnMut(usize, f64) -> f64,
) {
    for (i, &a) in analytic.iter().enumerate() {
        let n = (loss_at(i, eps) - loss_at(i, -eps)) / (2.0 * eps);
        let err = (a - n).abs() / (a.abs() + n.abs()).max(floor);
        assert!(
            err <= tol,
            "{what}[{i}]: analytic {a:.10e} vs numeric {n:.10e} (rel {err:.2e})"
        );
    }
}

/// Deterministic pseudo-random values in `[-1, 1)` for test inputs.
pub fn randn(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}
