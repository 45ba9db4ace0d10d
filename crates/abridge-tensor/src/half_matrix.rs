//! Half-precision weights for memory-bound inference products.
//!
//! Decoding multiplies one to a few rows by the vocabulary projection `W [V, H]` at every token:
//! the product streams all of `W` from memory and does little arithmetic on it, so storing `W`
//! as IEEE f16 halves its cost. Products accumulate in f32; with weights that were exported as
//! f16 (the bundled model) the result equals the f32 product up to summation order.

use rayon::prelude::*;

/// A `[rows, cols]` row-major matrix of f16 values (as their bits).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HalfMatrix {
    pub rows: usize,
    pub cols: usize,
    pub bits: Vec<u16>,
}

impl HalfMatrix {
    /// Rounds `w [rows, cols]` (row-major f32) to the nearest f16.
    pub fn from_f32(w: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(w.len(), rows * cols, "HalfMatrix::from_f32: shape");
        Self {
            rows,
            cols,
            bits: w
                .iter()
                .map(|&x| half::f16::from_f32(x).to_bits())
                .collect(),
        }
    }

    /// `y [m, rows] = x [m, cols] · selfᵀ` (overwritten), rows split over the current rayon pool.
    pub fn mul_t(&self, x: &[f32], m: usize, y: &mut [f32]) {
        let (n, k) = (self.rows, self.cols);
        assert!(
            x.len() == m * k && y.len() == m * n,
            "HalfMatrix::mul_t: shape"
        );
        // `[n, m]` results so that a thread's rows of `self` are one contiguous block.
        let mut out = vec![0f32; n * m];
        let threads = rayon::current_num_threads();
        let chunk = n.div_ceil(threads * 4).max(64);
        out.par_chunks_mut(chunk * m)
            .enumerate()
            .for_each(|(c, o)| {
                let j0 = c * chunk;
                let rows = o.len() / m;
                kernel(x, m, &self.bits[j0 * k..(j0 + rows) * k], k, o);
            });
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = out[j * m + i];
            }
        }
    }
}

/// `out[j·m + i] = x_i · w_j` for the `m` rows of `x [m, k]` and the rows `w_j` of `w [·, k]`.
fn kernel(x: &[f32], m: usize, w: &[u16], k: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            return unsafe { x86::kernel_avx512(x, m, w, k, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the CPU has AVX2, FMA and F16C (checked above).
            return unsafe { x86::kernel_avx2(x, m, w, k, out) };
        }
    }
    kernel_scalar(x, m, w, k, out)
}

fn kernel_scalar(x: &[f32], m: usize, w: &[u16], k: usize, out: &mut [f32]) {
    for (j, o) in out.chunks_exact_mut(m).enumerate() {
        let row: Vec<f32> = w[j * k..(j + 1) * k]
            .iter()
            .map(|&b| half::f16::from_bits(b).to_f32())
            .collect();
        for (i, v) in o.iter_mut().enumerate() {
            *v = x[i * k..(i + 1) * k]
                .iter()
                .zip(&row)
                .map(|(a, b)| a * b)
                .sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Four rows of `w` at a time, each converted from f16 once and multiplied by up to four rows
    /// of `x` (sixteen accumulators of sixteen lanes); more rows of `x` take further passes over
    /// the same four rows of `w`, which are then in L1.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_avx512(x: &[f32], m: usize, w: &[u16], k: usize, out: &mut [f32]) {
        let n = out.len() / m;
        let mut j = 0;
        while j < n {
            let q = (n - j).min(4);
            let mut i0 = 0;
            while i0 < m {
                match (m - i0).min(4) {
                    4 => block::<4>(x, m, i0, w, k, j, q, out),
                    3 => block::<3>(x, m, i0, w, k, j, q, out),
                    2 => block::<2>(x, m, i0, w, k, j, q, out),
                    _ => block::<1>(x, m, i0, w, k, j, q, out),
                }
                i0 += 4;
            }
            j += q;
        }
    }

    /// Rows `i0..i0+M` of `x` times rows `j..j+q` (`q ≤ 4`) of `w`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const M: usize>(
        x: &[f32],
        m: usize,
        i0: usize,
        w: &[u16],
        k: usize,
        j: usize,
        q: usize,
        out: &mut [f32],
    ) {
        let full = k / 16 * 16;
        let mut acc = [[_mm512_setzero_ps(); 4]; M];
        let mut p = 0;
        while p < full {
            let mut wv = [_mm512_setzero_ps(); 4];
            for (r, v) in wv.iter_mut().enumerate().take(q) {
                let h = _mm256_loadu_si256(w.as_ptr().add((j + r) * k + p) as *const __m256i);
                *v = _mm512_cvtph_ps(h);
            }
            for (i, acc) in acc.iter_mut().enumerate() {
                let xv = _mm512_loadu_ps(x.as_ptr().add((i0 + i) * k + p));
                for r in 0..4 {
                    acc[r] = _mm512_fmadd_ps(xv, wv[r], acc[r]);
                }
            }
            p += 16;
        }
        for (i, acc) in acc.iter().enumerate() {
            let xi = &x[(i0 + i) * k..(i0 + i + 1) * k];
            for (r, a) in acc.iter().enumerate().take(q) {
                let mut s = _mm512_reduce_add_ps(*a);
                for p in full..k {
                    s += xi[p] * half::f16::from_bits(w[(j + r) * k + p]).to_f32();
                }
                out[(j + r) * m + i0 + i] = s;
            }
        }
    }

    /// As [`kernel_avx512`], eight lanes wide.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn kernel_avx2(x: &[f32], m: usize, w: &[u16], k: usize, out: &mut [f32]) {
        let n = out.len() / m;
        let full = k / 8 * 8;
        let mut j = 0;
        while j < n {
            let q = (n - j).min(4);
            for i in 0..m {
                let xi = &x[i * k..(i + 1) * k];
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut p = 0;
                while p < full {
                    let xv = _mm256_loadu_ps(xi.as_ptr().add(p));
                    for (r, a) in acc.iter_mut().enumerate().take(q) {
                        let h = _mm_loadu_si128(w.as_ptr().add((j + r) * k + p) as *const __m128i);
                        *a = _mm256_fmadd_ps(xv, _mm256_cvtph_ps(h), *a);
                    }
                    p += 8;
                }
                for (r, a) in acc.iter().enumerate().take(q) {
                    let mut lanes = [0f32; 8];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), *a);
                    let mut s: f32 = lanes.iter().sum();
                    for p in full..k {
                        s += xi[p] * half::f16::from_bits(w[(j + r) * k + p]).to_f32();
                    }
                    out[(j + r) * m + i] = s;
                }
            }
            j += q;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_products_match_f32_products_of_the_rounded_weights() {
        let mut rng = crate::Rng::new(3);
        for &(m, n, k) in &[
            (1, 37, 256),
            (4, 130, 100),
            (3, 5, 7),
            (8, 64, 33),
            (2, 1, 16),
        ] {
            let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
            let x: Vec<f32> = (0..m * k).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
            let h = HalfMatrix::from_f32(&w, n, k);
            let mut y = vec![0f32; m * n];
            h.mul_t(&x, m, &mut y);
            let mut z = vec![0f32; m * n];
            kernel_scalar(&x, m, &h.bits, k, &mut z);
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..k)
                        .map(|p| x[i * k + p] as f64 * half::f16::from_f32(w[j * k + p]).to_f64())
                        .sum();
                    assert!(
                        (y[i * n + j] as f64 - exact).abs() < 1e-4,
                        "{m}×{n}×{k} [{i},{j}]"
                    );
                    assert!((z[j * m + i] as f64 - exact).abs() < 1e-4);
                }
            }
        }
    }
}
