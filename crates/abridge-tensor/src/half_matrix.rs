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
        let threads = rayon::current_num_threads();
        let chunk = n.div_ceil(threads * 4).max(64);
        let y_ptr = SendPtr(y.as_mut_ptr());
        (0..n.div_ceil(chunk)).into_par_iter().for_each(|c| {
            let (j0, j1) = (c * chunk, ((c + 1) * chunk).min(n));
            let y_ptr = &y_ptr;
            // SAFETY: `y` is `[m, n]` (checked) and borrowed exclusively for this call; each task
            // writes only columns `j0..j1` of its rows.
            let out = Out {
                ptr: unsafe { y_ptr.0.add(j0) },
                row_stride: n,
            };
            kernel(x, m, &self.bits[j0 * k..j1 * k], k, j1 - j0, out);
        });
    }
}

/// Where the products go: `y[i, j]` at `ptr + i·row_stride + j` (the tasks of
/// [`HalfMatrix::mul_t`] write disjoint column ranges of the same rows).
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    row_stride: usize,
}

impl Out {
    /// # Safety
    /// `(i, j)` must be inside the task's block.
    #[inline(always)]
    unsafe fn set(self, i: usize, j: usize, v: f32) {
        // SAFETY: per the caller.
        unsafe { *self.ptr.add(i * self.row_stride + j) = v };
    }
}

struct SendPtr(*mut f32);
// SAFETY: only used for disjoint writes, see `HalfMatrix::mul_t`.
unsafe impl Sync for SendPtr {}

/// `out(i, j) = x_i · w_j` for the `m` rows of `x [m, k]` and the rows `w_j` of `w [·, k]`.
fn kernel(x: &[f32], m: usize, w: &[u16], k: usize, n: usize, out: Out) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            return unsafe { x86::kernel_avx512(x, m, w, k, n, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the CPU has AVX2, FMA and F16C (checked above).
            return unsafe { x86::kernel_avx2(x, m, w, k, n, out) };
        }
    }
    kernel_scalar(x, m, w, k, n, out)
}

fn kernel_scalar(x: &[f32], m: usize, w: &[u16], k: usize, n: usize, out: Out) {
    for j in 0..n {
        let row: Vec<f32> = w[j * k..(j + 1) * k]
            .iter()
            .map(|&b| half::f16::from_bits(b).to_f32())
            .collect();
        for i in 0..m {
            let v = x[i * k..(i + 1) * k]
                .iter()
                .zip(&row)
                .map(|(a, b)| a * b)
                .sum();
            // SAFETY: `i < m`, `j < n`: inside this task's block.
            unsafe { out.set(i, j, v) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Out;
    use std::arch::x86_64::*;

    /// Four rows of `w` at a time, each converted from f16 once and multiplied by up to four rows
    /// of `x` (sixteen accumulators of sixteen lanes); more rows of `x` take further passes over
    /// the same four rows of `w`, which are then in L1.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_avx512(x: &[f32], m: usize, w: &[u16], k: usize, n: usize, out: Out) {
        crate::simd::for_4x4_blocks(n, m, |j, q, i0, mi| {
            let mut rows = Rows { x, i0, w, k, out };
            // SAFETY: the caller guarantees AVX-512F; the blocks are inside `[m, n]`.
            unsafe { crate::simd::run_block(&mut rows, mi, q, j) };
        });
    }

    /// [`block`]'s arguments but the rows of `w`, for [`crate::simd::run_block`].
    struct Rows<'a> {
        x: &'a [f32],
        i0: usize,
        w: &'a [u16],
        k: usize,
        out: Out,
    }

    impl crate::simd::Block for Rows<'_> {
        unsafe fn block<const M: usize, const Q: usize>(&mut self, j: usize) {
            // SAFETY: per the caller (AVX-512F, a block inside `[m, n]`).
            unsafe { block::<M, Q>(self.x, self.i0, self.w, self.k, j, self.out) }
        }
    }

    /// Rows `i0..i0+M` of `x` times rows `j..j+Q` of `w` (`Q` is 4, or 1 for the last rows: the
    /// counts are constants, so the inner loop has no branches).
    #[target_feature(enable = "avx512f")]
    unsafe fn block<const M: usize, const Q: usize>(
        x: &[f32],
        i0: usize,
        w: &[u16],
        k: usize,
        j: usize,
        out: Out,
    ) {
        let full = k / 16 * 16;
        let mut acc = [[_mm512_setzero_ps(); 4]; M];
        let mut p = 0;
        while p < full {
            let mut wv = [_mm512_setzero_ps(); 4];
            for (r, v) in wv.iter_mut().enumerate().take(Q) {
                let h = _mm256_loadu_si256(w.as_ptr().add((j + r) * k + p) as *const __m256i);
                *v = _mm512_cvtph_ps(h);
            }
            for (i, acc) in acc.iter_mut().enumerate() {
                let xv = _mm512_loadu_ps(x.as_ptr().add((i0 + i) * k + p));
                for r in 0..Q {
                    acc[r] = _mm512_fmadd_ps(xv, wv[r], acc[r]);
                }
            }
            p += 16;
        }
        for (i, acc) in acc.iter().enumerate() {
            let xi = &x[(i0 + i) * k..(i0 + i + 1) * k];
            let mut sums = [0f32; 4];
            _mm_storeu_ps(sums.as_mut_ptr(), crate::simd::hsum4(acc));
            for (r, &s) in sums.iter().enumerate().take(Q) {
                let mut s = s;
                for p in full..k {
                    s += xi[p] * half::f16::from_bits(w[(j + r) * k + p]).to_f32();
                }
                out.set(i0 + i, j + r, s);
            }
        }
    }

    /// As [`kernel_avx512`], eight lanes wide: blocks of up to 2 weight rows × 4 input rows, so
    /// that each weight vector is widened from f16 once per four input rows (2 weight, 8
    /// accumulator and 1–4 input registers of the 16). Each output is summed as by one row at a
    /// time — 8 lanes in `p` order, then the lanes left to right, then the tail — so the blocking
    /// changes no bit.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn kernel_avx2(x: &[f32], m: usize, w: &[u16], k: usize, n: usize, out: Out) {
        let mut j = 0;
        while j < n {
            let q = (n - j).min(2);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(4);
                // SAFETY: the block's rows and columns are in range; the CPU has the features.
                unsafe {
                    match (q, rows) {
                        (2, 4) => block_avx2::<2, 4>(x, i, w, j, k, out),
                        (2, 3) => block_avx2::<2, 3>(x, i, w, j, k, out),
                        (2, 2) => block_avx2::<2, 2>(x, i, w, j, k, out),
                        (2, _) => block_avx2::<2, 1>(x, i, w, j, k, out),
                        (_, 4) => block_avx2::<1, 4>(x, i, w, j, k, out),
                        (_, 3) => block_avx2::<1, 3>(x, i, w, j, k, out),
                        (_, 2) => block_avx2::<1, 2>(x, i, w, j, k, out),
                        _ => block_avx2::<1, 1>(x, i, w, j, k, out),
                    }
                }
                i += rows;
            }
            j += q;
        }
    }

    /// Outputs `(i0..i0 + R) × (j..j + Q)` of [`kernel_avx2`].
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn block_avx2<const Q: usize, const R: usize>(
        x: &[f32],
        i0: usize,
        w: &[u16],
        j: usize,
        k: usize,
        out: Out,
    ) {
        let full = k / 8 * 8;
        let mut acc = [[_mm256_setzero_ps(); Q]; R];
        let mut p = 0;
        while p < full {
            let mut wv = [_mm256_setzero_ps(); Q];
            for (r, v) in wv.iter_mut().enumerate() {
                // SAFETY: row j + r of w has k ≥ p + 8 elements.
                let h =
                    unsafe { _mm_loadu_si128(w.as_ptr().add((j + r) * k + p) as *const __m128i) };
                *v = _mm256_cvtph_ps(h);
            }
            for (ii, acc) in acc.iter_mut().enumerate() {
                // SAFETY: row i0 + ii of x has k ≥ p + 8 elements.
                let xv = unsafe { _mm256_loadu_ps(x.as_ptr().add((i0 + ii) * k + p)) };
                for r in 0..Q {
                    acc[r] = _mm256_fmadd_ps(xv, wv[r], acc[r]);
                }
            }
            p += 8;
        }
        for (ii, acc) in acc.iter().enumerate() {
            let xi = &x[(i0 + ii) * k..(i0 + ii + 1) * k];
            for (r, a) in acc.iter().enumerate() {
                let mut lanes = [0f32; 8];
                // SAFETY: lanes holds 8 floats.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *a) };
                let mut s: f32 = lanes.iter().sum();
                for p in full..k {
                    s += xi[p] * half::f16::from_bits(w[(j + r) * k + p]).to_f32();
                }
                // SAFETY: (i0 + ii, j + r) is inside the caller's output block.
                unsafe { out.set(i0 + ii, j + r, s) };
            }
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
            (9, 70, 300),
        ] {
            let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
            let x: Vec<f32> = (0..m * k).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
            let h = HalfMatrix::from_f32(&w, n, k);
            let mut y = vec![0f32; m * n];
            h.mul_t(&x, m, &mut y);
            // The portable and the AVX2 kernels too (the AVX-512 one served `mul_t` here).
            let mut z = vec![0f32; m * n];
            let out = Out {
                ptr: z.as_mut_ptr(),
                row_stride: n,
            };
            kernel_scalar(&x, m, &h.bits, k, n, out);
            let mut z2 = z.clone();
            #[cfg(target_arch = "x86_64")]
            if crate::simd::has_avx2_fma() && std::arch::is_x86_feature_detected!("f16c") {
                let out = Out {
                    ptr: z2.as_mut_ptr(),
                    row_stride: n,
                };
                // SAFETY: the CPU has the features; `z2` is `[m, n]`.
                unsafe { x86::kernel_avx2(&x, m, &h.bits, k, n, out) };
            }
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..k)
                        .map(|p| x[i * k + p] as f64 * half::f16::from_f32(w[j * k + p]).to_f64())
                        .sum();
                    assert!(
                        (y[i * n + j] as f64 - exact).abs() < 1e-4,
                        "{m}×{n}×{k} [{i},{j}]"
                    );
                    assert!((z[i * n + j] as f64 - exact).abs() < 1e-4);
                    assert!((z2[i * n + j] as f64 - exact).abs() < 1e-4);
                }
            }
        }
    }
}
