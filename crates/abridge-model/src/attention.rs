//! Bahdanau attention with coverage, and Luong's multiplicative score, one example at a time and
//! examples in parallel.
//!
//! For example `b` with source length `len`, keys `P = W_h h_i + b_attn` (`[S, B, A]`, precomputed),
//! query `q = W_s s_t` (`[A]`), coverage `c` (`[len]`):
//! `th_i = tanh(P_i + q + w_c c_i)`, `e_i = v · th_i`, `a = softmax(e)`, `ctx = Σ a_i h_i`.
//! Forward keeps only the scores; backward recomputes `th` per example as `[S, A]`.
//! Luong (`luong = true`): `e_i = q · P_i` (no `th`, `v` or coverage).

// Index loops over pre-sliced rows are what the vectoriser turns into SIMD; iterator chains over
// several slices would not read better.
#![allow(clippy::needless_range_loop)]

use abridge_tensor::{simd_fn_wide as simd_fn, Float};

/// `Σ a_j b_j` with eight partial sums (vectorisable without reassociation licence).
#[inline(always)]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let mut acc = [T::ZERO; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        for k in 0..8 {
            acc[k] += a[c * 8 + k] * b[c * 8 + k];
        }
    }
    let mut s = T::ZERO;
    for &x in &acc {
        s += x;
    }
    for j in chunks * 8..n {
        s += a[j] * b[j];
    }
    s
}

/// `th = tanh(p + q + c·w_c)` of one key row (`[A]`, `A = q.len()`), into `out` unless it is
/// empty.
#[inline(always)]
fn tanh_row<T: Float>(p: &[T], q: &[T], wc: &[T], c: T, v: &[T], out: &mut [T]) -> T {
    let n = q.len();
    let (p, v) = (&p[..n], &v[..n]);
    let th = |j: usize| {
        if wc.is_empty() {
            (p[j] + q[j]).tanh()
        } else {
            (p[j] + q[j] + wc[j] * c).tanh()
        }
    };
    if out.is_empty() {
        let mut acc = [T::ZERO; 8];
        for j in 0..n {
            acc[j % 8] += v[j] * th(j);
        }
        return acc.iter().fold(T::ZERO, |s, x| s + *x);
    }
    for j in 0..n {
        out[j] = th(j);
    }
    dot(v, &out[..n])
}

/// The score `v · tanh(p + q + c·w_c)` of one key row, the `tanh` row stored into `out` unless
/// it is empty (forward needs only the score): on f32 with AVX-512 the FMA kernel below; with
/// AVX2 the portable loops' arithmetic eight lanes at a time (the same bits: the loops themselves
/// do not vectorise, the NaN test in `tanh_f32` keeps them scalar); else the portable loops.
#[inline(always)]
fn tanh_row_score<T: Float>(p: &[T], q: &[T], wc: &[T], c: T, v: &[T], out: &mut [T]) -> T {
    #[cfg(target_arch = "x86_64")]
    if let (Some(p), Some(q), Some(wc), Some(v)) =
        (T::as_f32(p), T::as_f32(q), T::as_f32(wc), T::as_f32(v))
    {
        if let Some(o) = T::as_f32_mut(out) {
            if abridge_tensor::simd::has_avx512() {
                // SAFETY: the CPU has AVX-512F; the kernel checks the slice lengths.
                let s = unsafe { x86::tanh_row_score(p, q, wc, c.to_f64() as f32, v, o) };
                return T::from_f64(s as f64);
            }
            if abridge_tensor::simd::has_avx2_fma() {
                // SAFETY: the CPU has AVX2; the kernel checks the slice lengths.
                let s = unsafe { x86::tanh_row_avx2(p, q, wc, c.to_f64() as f32, v, o) };
                return T::from_f64(s as f64);
            }
        }
    }
    tanh_row(p, q, wc, c, v, out)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use abridge_tensor::activation::{avx512, tanh_f32, TANH_ALPHA, TANH_BETA};
    use std::arch::x86_64::*;

    /// [`super::tanh_row`] for `f32`, eight lanes at a time with the same operations in the same
    /// order (separate multiplies and adds, a true division, lane `l` summing the terms
    /// `j ≡ l mod 8`, the lanes added left to right), so the result is the same to the bit.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn tanh_row_avx2(
        p: &[f32],
        q: &[f32],
        wc: &[f32],
        c: f32,
        v: &[f32],
        out: &mut [f32],
    ) -> f32 {
        let (n, store) = row_shape(p, q, wc, v, out);
        let full = n / 8 * 8;
        let cv = _mm256_set1_ps(c);
        let mut acc = _mm256_setzero_ps();
        let mut j = 0;
        while j < full {
            // SAFETY: j + 8 ≤ n ≤ every slice's length (asserted above).
            unsafe {
                let mut x = _mm256_add_ps(
                    _mm256_loadu_ps(p.as_ptr().add(j)),
                    _mm256_loadu_ps(q.as_ptr().add(j)),
                );
                if !wc.is_empty() {
                    x = _mm256_add_ps(x, _mm256_mul_ps(_mm256_loadu_ps(wc.as_ptr().add(j)), cv));
                }
                let t = tanh8(x);
                if store {
                    _mm256_storeu_ps(out.as_mut_ptr().add(j), t);
                } else {
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(v.as_ptr().add(j)), t));
                }
            }
            j += 8;
        }
        let th = |j: usize| {
            if wc.is_empty() {
                tanh_f32(p[j] + q[j])
            } else {
                tanh_f32(p[j] + q[j] + wc[j] * c)
            }
        };
        if store {
            for j in full..n {
                out[j] = th(j);
            }
            return super::dot(v, &out[..n]);
        }
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds eight floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        for j in full..n {
            lanes[j % 8] += v[j] * th(j);
        }
        lanes.iter().fold(0.0, |s, x| s + *x)
    }

    /// The kernels' row length `A = q.len()` and whether the `tanh` row is stored; panics unless
    /// every slice is long enough (the kernels read them unchecked).
    fn row_shape(p: &[f32], q: &[f32], wc: &[f32], v: &[f32], out: &[f32]) -> (usize, bool) {
        let n = q.len();
        let store = !out.is_empty();
        assert!(
            p.len() >= n
                && v.len() >= n
                && (wc.is_empty() || wc.len() >= n)
                && (!store || out.len() >= n),
            "attention row: slices shorter than the query"
        );
        (n, store)
    }

    /// [`tanh_f32`] on eight lanes, operation for operation.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn tanh8(x0: __m256) -> __m256 {
        let x = _mm256_min_ps(_mm256_max_ps(x0, _mm256_set1_ps(-9.0)), _mm256_set1_ps(9.0));
        let x2 = _mm256_mul_ps(x, x);
        let mut p = _mm256_set1_ps(TANH_ALPHA[0]);
        for &a in &TANH_ALPHA[1..] {
            p = _mm256_add_ps(_mm256_mul_ps(p, x2), _mm256_set1_ps(a));
        }
        let p = _mm256_mul_ps(p, x);
        let mut q = _mm256_set1_ps(TANH_BETA[0]);
        for &b in &TANH_BETA[1..] {
            q = _mm256_add_ps(_mm256_mul_ps(q, x2), _mm256_set1_ps(b));
        }
        let r = _mm256_div_ps(p, q);
        let r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-1.0)), _mm256_set1_ps(1.0));
        // A NaN input comes out as itself.
        _mm256_blendv_ps(r, x0, _mm256_cmp_ps::<_CMP_UNORD_Q>(x0, x0))
    }

    /// See [`super::tanh_row_score`]; `wc` empty means no coverage term, `out` empty no store.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn tanh_row_score(
        p: &[f32],
        q: &[f32],
        wc: &[f32],
        c: f32,
        v: &[f32],
        out: &mut [f32],
    ) -> f32 {
        let (n, store) = row_shape(p, q, wc, v, out);
        let full = n / 16 * 16;
        let cv = _mm512_set1_ps(c);
        let mut acc = _mm512_setzero_ps();
        let mut j = 0;
        while j < full {
            let mut x = _mm512_add_ps(
                _mm512_loadu_ps(p.as_ptr().add(j)),
                _mm512_loadu_ps(q.as_ptr().add(j)),
            );
            if !wc.is_empty() {
                x = _mm512_fmadd_ps(_mm512_loadu_ps(wc.as_ptr().add(j)), cv, x);
            }
            let t = avx512::tanh(x);
            if store {
                _mm512_storeu_ps(out.as_mut_ptr().add(j), t);
            }
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(v.as_ptr().add(j)), t, acc);
            j += 16;
        }
        let mut s = _mm512_reduce_add_ps(acc);
        for j in full..n {
            let x = p[j] + q[j] + if wc.is_empty() { 0.0 } else { wc[j] * c };
            let t = tanh_f32(x);
            if store {
                out[j] = t;
            }
            s += v[j] * t;
        }
        s
    }
}

/// Everything the kernels of one example read.
pub struct Example<'a, T> {
    /// The example's column among the `batch` columns of `keys` and `values`.
    pub bi: usize,
    pub batch: usize,
    pub len: usize,
    /// `[S, B, A]` keys, `[S, B, 2H]` encoder outputs.
    pub keys: &'a [T],
    pub values: &'a [T],
    /// `[A]` query of this example; `[A]` `w_c` (empty without coverage); `[A]` `v`.
    pub q: &'a [T],
    pub wc: &'a [T],
    pub v: &'a [T],
    /// `[len]` coverage of this example (empty without coverage).
    pub cov: &'a [T],
    /// Multiplicative score `q · P_i` instead of the additive one.
    pub luong: bool,
}

simd_fn! {
    /// Forward for one example: `a [len]`, `ctx [2H]` (overwritten).
    pub fn forward_one<T>(ex: &Example<'_, T>, a: &mut [T], ctx: &mut [T]) {
        let ad = ex.q.len();
        let dv = ctx.len();
        for i in 0..ex.len {
            let k = i * ex.batch + ex.bi;
            let key = &ex.keys[k * ad..(k + 1) * ad];
            if ex.luong {
                a[i] = dot(ex.q, key);
                continue;
            }
            let c = if ex.cov.is_empty() { T::ZERO } else { ex.cov[i] };
            a[i] = tanh_row_score(key, ex.q, ex.wc, c, ex.v, &mut []);
        }
        let mut max = a[0];
        for &x in &a[..ex.len] {
            if x > max {
                max = x;
            }
        }
        let mut z = T::ZERO;
        for x in a[..ex.len].iter_mut() {
            *x = (*x - max).exp();
            z += *x;
        }
        let inv = T::ONE / z;
        a[..ex.len].iter_mut().for_each(|x| *x *= inv);
        ctx.iter_mut().for_each(|x| *x = T::ZERO);
        for i in 0..ex.len {
            let k = i * ex.batch + ex.bi;
            let w = a[i];
            let row = &ex.values[k * dv..(k + 1) * dv];
            for j in 0..dv {
                ctx[j] += w * row[j];
            }
        }
    }
}

simd_fn! {
    /// Recomputes `th [S, A]` of one example (backward keeps no copy of it: at the benchmark's
    /// shapes it would be `T·B·S·A` = 49M floats).
    pub fn tanh_rows<T>(ex: &Example<'_, T>, th: &mut [T]) {
        if ex.luong {
            return;
        }
        let ad = ex.q.len();
        for i in 0..ex.len {
            let k = i * ex.batch + ex.bi;
            let c = if ex.cov.is_empty() { T::ZERO } else { ex.cov[i] };
            tanh_row_score(&ex.keys[k * ad..(k + 1) * ad], ex.q, ex.wc, c, ex.v, &mut th[i * ad..(i + 1) * ad]);
        }
    }
}

/// Gradients one example's attention produces.
pub struct ExampleGrads<'a, T> {
    /// `[len]` in: `δa` from the loss and later steps (excluding the context); out: unchanged.
    pub da: &'a [T],
    /// `[S, 2H]` δ of this example's encoder outputs (added); empty: the caller sums
    /// `Σ_t a_t,i δctx_t` itself (one product over all steps, see `backward.rs`).
    pub dvalues: &'a mut [T],
    /// `[S, A]` δ of this example's keys (added).
    pub dkeys: &'a mut [T],
    /// `[A]` δq (overwritten), δv and δw_c (added), `[len]` δcov (added).
    pub dq: &'a mut [T],
    pub dv: &'a mut [T],
    pub dwc: &'a mut [T],
    pub dcov: &'a mut [T],
}

simd_fn! {
    /// Backward for one example, given `δctx [2H]` and the forward's `th`, `a`.
    pub fn backward_one<T>(ex: &Example<'_, T>, th: &[T], a: &[T], dctx: &[T], g: &mut ExampleGrads<'_, T>, scratch: &mut [T]) {
        let ad = ex.q.len();
        let dvd = dctx.len();
        // δa_i = δa_i (given) + δctx · h_i ; δh_i += a_i δctx
        let da = &mut scratch[..ex.len];
        for i in 0..ex.len {
            let k = i * ex.batch + ex.bi;
            da[i] = g.da[i] + dot(dctx, &ex.values[k * dvd..(k + 1) * dvd]);
            if !g.dvalues.is_empty() {
                let w = a[i];
                let drow = &mut g.dvalues[i * dvd..(i + 1) * dvd];
                for j in 0..dvd {
                    drow[j] += w * dctx[j];
                }
            }
        }
        // Softmax: δe_i = a_i (δa_i − Σ_k a_k δa_k).
        let mut sum = T::ZERO;
        for i in 0..ex.len {
            sum += a[i] * da[i];
        }
        g.dq.iter_mut().for_each(|x| *x = T::ZERO);
        for i in 0..ex.len {
            let de = a[i] * (da[i] - sum);
            if ex.luong {
                let k = i * ex.batch + ex.bi;
                let key = &ex.keys[k * ad..(k + 1) * ad];
                let (q, dq) = (&ex.q[..ad], &mut g.dq[..ad]);
                let dk = &mut g.dkeys[i * ad..(i + 1) * ad];
                for j in 0..ad {
                    dk[j] += de * q[j];
                    dq[j] += de * key[j];
                }
                continue;
            }
            let row = &th[i * ad..(i + 1) * ad];
            let dk = &mut g.dkeys[i * ad..(i + 1) * ad];
            let (v, dq, dv) = (&ex.v[..ad], &mut g.dq[..ad], &mut g.dv[..ad]);
            for j in 0..ad {
                let t = row[j];
                let dpre = de * v[j] * (T::ONE - t * t);
                dk[j] += dpre;
                dq[j] += dpre;
                dv[j] += de * t;
            }
            if !ex.wc.is_empty() {
                let c = ex.cov[i];
                let mut dc = T::ZERO;
                for j in 0..ad {
                    let t = row[j];
                    let dpre = de * ex.v[j] * (T::ONE - t * t);
                    g.dwc[j] += dpre * c;
                    dc += dpre * ex.wc[j];
                }
                g.dcov[i] += dc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 score and `tanh` row against the portable loops, bit for bit: lengths with and
    /// without a tail, with and without coverage, values past the clamp, a NaN.
    #[test]
    fn avx2_tanh_row_is_the_portable_one_to_the_bit() {
        #[cfg(target_arch = "x86_64")]
        if abridge_tensor::simd::has_avx2_fma() {
            let mut rng = abridge_tensor::Rng::new(11);
            for n in [0usize, 1, 7, 8, 13, 64, 256, 259] {
                let mut row = |scale: f64| -> Vec<f32> {
                    (0..n).map(|_| rng.uniform(-scale, scale) as f32).collect()
                };
                let (mut p, q, wc, v) = (row(6.0), row(6.0), row(1.0), row(1.0));
                if n > 5 {
                    p[3] = 40.0;
                    p[4] = -40.0;
                }
                let cases: [(&[f32], f32); 2] = [(&[], 0.0), (&wc, 0.37)];
                for (wc, c) in cases {
                    let want = tanh_row(&p, &q, wc, c, &v, &mut []);
                    // SAFETY: the CPU has AVX2 (checked above).
                    let got = unsafe { x86::tanh_row_avx2(&p, &q, wc, c, &v, &mut []) };
                    assert_eq!(got.to_bits(), want.to_bits(), "score, n = {n}");
                    let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
                    let want = tanh_row(&p, &q, wc, c, &v, &mut a);
                    // SAFETY: as above.
                    let got = unsafe { x86::tanh_row_avx2(&p, &q, wc, c, &v, &mut b) };
                    assert_eq!(got.to_bits(), want.to_bits(), "stored score, n = {n}");
                    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "tanh row, n = {n}");
                }
                if n > 0 {
                    p[0] = f32::NAN;
                    let mut b = vec![0f32; n];
                    // SAFETY: as above.
                    let got = unsafe { x86::tanh_row_avx2(&p, &q, &[], 0.0, &v, &mut b) };
                    assert!(got.is_nan() && b[0].is_nan());
                }
            }
        }
    }
}
