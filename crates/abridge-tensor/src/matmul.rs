//! Strided matrix views and the single GEMM entry point, on top of the `gemm` crate.
//!
//! `C = A·B` or `C += A·B`, where each operand is a row-major buffer viewed with arbitrary row and
//! column strides, so a transpose is a view ([`MatRef::t`]) and never a copy. Every view is checked
//! against its buffer when it is made, which is what lets [`gemm()`] be a safe function.

use crate::Float;

/// How many threads one GEMM call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Par {
    /// The calling thread only (used inside already-parallel regions).
    Seq,
    /// Up to `n` threads of the current rayon pool.
    Threads(usize),
}

impl Par {
    fn to_gemm(self) -> gemm::Parallelism {
        match self {
            Par::Seq | Par::Threads(0) | Par::Threads(1) => gemm::Parallelism::None,
            Par::Threads(n) => gemm::Parallelism::Rayon(n),
        }
    }
}

fn check_view(len: usize, rows: usize, cols: usize, rs: isize, cs: isize, what: &str) {
    assert!(
        rs >= 0 && cs >= 0,
        "{what}: negative strides are not supported"
    );
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1) * rs as usize + (cols - 1) * cs as usize;
    assert!(
        last < len,
        "{what}: a {rows}x{cols} view with strides ({rs}, {cs}) needs {} elements, buffer has {len}",
        last + 1
    );
}

/// A read-only strided matrix view.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<'a, T: Float> MatRef<'a, T> {
    /// A dense row-major `[rows, cols]` matrix at the start of `data`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// `rows × cols` with element `(i, j)` at `data[i*rs + j*cs]`.
    pub fn strided(data: &'a [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        check_view(data.len(), rows, cols, rs as isize, cs as isize, "MatRef");
        Self {
            data,
            rows,
            cols,
            rs: rs as isize,
            cs: cs as isize,
        }
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Element `(i, j)`; panics when out of range.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> T {
        assert!(
            i < self.rows && j < self.cols,
            "MatRef::get: ({i}, {j}) out of range"
        );
        self.data[(i as isize * self.rs + j as isize * self.cs) as usize]
    }
}

/// A mutable strided matrix view.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<'a, T: Float> MatMut<'a, T> {
    /// A dense row-major `[rows, cols]` matrix at the start of `data`.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// `rows × cols` with row stride `rs` (unit column stride).
    pub fn strided(data: &'a mut [T], rows: usize, cols: usize, rs: usize) -> Self {
        check_view(data.len(), rows, cols, rs as isize, 1, "MatMut");
        assert!(
            rows <= 1 || rs >= cols,
            "MatMut: rows would overlap (row stride {rs} < {cols} columns)"
        );
        Self {
            data,
            rows,
            cols,
            rs: rs as isize,
            cs: 1,
        }
    }
}

/// `c = a·b` (`accumulate == false`) or `c += a·b` (`accumulate == true`).
///
/// Shapes: `a [m, k]`, `b [k, n]`, `c [m, n]`; panics with the three shapes if they disagree.
pub fn gemm<T: Float>(
    c: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    par: Par,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && c.rows == m && c.cols == n,
        "gemm shape mismatch: a [{}, {}] · b [{}, {}] -> c [{}, {}]",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                let row = &mut c.data[i * c.rs as usize..][..n];
                row.iter_mut().for_each(|v| *v = T::ZERO);
            }
        }
        return;
    }
    if m == 1 && (b.cs == 1 || b.rs == 1) {
        // A row vector times a matrix: a GEMV. The GEMM crate would pack the whole matrix on every
        // call (decoding does this per token); streaming it once is what a GEMV should cost.
        gemv_row(c, a, b, accumulate, par);
        return;
    }
    if m <= SMALL_M && b.rs == 1 && b.cs as usize >= k {
        // A few rows times a matrix stored column by column (`x · Wᵀ` of a layer, as a beam of
        // hypotheses does per token): stream each column once for all rows, instead of packing
        // the whole matrix as the GEMM crate does on every call.
        gemv_rows(c, a, b, accumulate, par);
        return;
    }
    // SAFETY: every view was bounds-checked against its buffer when created; `c` is borrowed
    // mutably and so cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            c.cs,
            c.rs,
            accumulate,
            a.data.as_ptr(),
            a.cs,
            a.rs,
            b.data.as_ptr(),
            b.cs,
            b.rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            par.to_gemm(),
        )
    }
}

/// Most rows [`gemm`] sends to [`gemv_rows`].
const SMALL_M: usize = 8;

/// `c (+)= a · b` for `a [m ≤ SMALL_M, k]` and `b [k, n]` whose columns are contiguous.
fn gemv_rows<T: Float>(
    c: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    par: Par,
) {
    use rayon::prelude::*;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let av: Vec<T> = (0..m)
        .flat_map(|i| (0..k).map(move |p| (i, p)))
        .map(|(i, p)| a.data[(i as isize * a.rs + p as isize * a.cs) as usize])
        .collect();
    // `[n, m]`: column-major results, so that a thread's columns are one contiguous block.
    let mut out = vec![T::ZERO; n * m];
    let threads = match par {
        Par::Threads(t) if t > 1 && n * k * m >= 1 << 16 => t,
        _ => 1,
    };
    let chunk = n.div_ceil(threads * 4).max(64);
    let (cs, bd) = (b.cs as usize, b.data);
    let work = |j0: usize, o: &mut [T]| add_dots_rows(&av, m, &bd[j0 * cs..], cs, o);
    if threads == 1 {
        work(0, &mut out);
    } else {
        out.par_chunks_mut(chunk * m)
            .enumerate()
            .for_each(|(i, o)| work(i * chunk, o));
    }
    let rs = c.rs as usize;
    for i in 0..m {
        let row = &mut c.data[i * rs..][..n];
        for (j, v) in row.iter_mut().enumerate() {
            let x = out[j * m + i];
            *v = if accumulate { *v + x } else { x };
        }
    }
}

/// `out[j·m + i] += a_i · cols[j·stride ..][..k]` for the `m` rows `a_i` of `a [m, k]`: the f32
/// AVX-512 kernel where it applies, else [`dots_rows`].
fn add_dots_rows<T: Float>(a: &[T], m: usize, cols: &[T], stride: usize, out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(a32), Some(c32), Some(o32)) = (T::as_f32(a), T::as_f32(cols), T::as_f32_mut(out)) {
        if crate::simd::has_avx512() {
            // SAFETY: the CPU has AVX-512F; the kernel bounds-checks its reads.
            unsafe { x86::dots_rows_f32(a32, m, c32, stride, o32) };
            return;
        }
    }
    dots_rows(a, m, cols, stride, out)
}

crate::simd_fn_wide! {
    /// `out[j·m + i] += a_i · cols[j·stride ..][..k]` for the `m` rows `a_i` of `a [m, k]`.
    fn dots_rows<T>(a: &[T], m: usize, cols: &[T], stride: usize, out: &mut [T]) {
        let k = a.len() / m;
        let n = out.len() / m;
        let mut j = 0;
        while j + 4 <= n {
            let c: [&[T]; 4] = std::array::from_fn(|q| &cols[(j + q) * stride..][..k]);
            for i in 0..m {
                let d = dot4(&a[i * k..(i + 1) * k], c);
                for (q, v) in d.into_iter().enumerate() {
                    out[(j + q) * m + i] += v;
                }
            }
            j += 4;
        }
        for j in j..n {
            let col = &cols[j * stride..j * stride + k];
            for i in 0..m {
                out[j * m + i] += dot(&a[i * k..(i + 1) * k], col);
            }
        }
    }
}

/// `c[0, :] (+)= a[0, :] · b` for a `[1, k]` row and a `[k, n]` matrix with a unit stride.
fn gemv_row<T: Float>(
    c: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: bool,
    par: Par,
) {
    use rayon::prelude::*;
    let (k, n) = (a.cols, b.cols);
    let av: Vec<T> = (0..k).map(|p| a.data[p * a.cs as usize]).collect();
    let out = &mut c.data[..n];
    if !accumulate {
        out.iter_mut().for_each(|v| *v = T::ZERO);
    }
    let threads = match par {
        Par::Threads(t) if t > 1 && n * k >= 1 << 16 => t,
        _ => 1,
    };
    let chunk = n.div_ceil(threads * 4).max(64);
    let (rs, cs) = (b.rs as usize, b.cs as usize);
    let bd = b.data;
    let work = |j0: usize, out: &mut [T]| {
        if cs == 1 {
            // Rows of b are contiguous: out += a_p · b[p, j0..].
            for (p, &ap) in av.iter().enumerate() {
                let row = &bd[p * rs + j0..p * rs + j0 + out.len()];
                axpy(ap, row, out);
            }
        } else {
            // Columns of b are contiguous: out[j] += a · b[:, j].
            add_dots_rows(&av, 1, &bd[j0 * cs..], cs, out);
        }
    };
    if threads == 1 {
        work(0, out);
    } else {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, o)| work(i * chunk, o));
    }
}

crate::simd_fn_wide! {
    /// `y += alpha · x`.
    fn axpy<T>(alpha: T, x: &[T], y: &mut [T]) {
        let n = y.len();
        let x = &x[..n];
        for i in 0..n {
            y[i] += alpha * x[i];
        }
    }
}

/// Four dot products `a · c_q` at once: four independent accumulator chains (a single chain is
/// bound by the FMA latency), each sixteen lanes wide; `a` is read once per chunk for all four.
#[inline(always)]
fn dot4<T: Float>(a: &[T], c: [&[T]; 4]) -> [T; 4] {
    const L: usize = 16;
    let n = a.len();
    let (c0, c1, c2, c3) = (&c[0][..n], &c[1][..n], &c[2][..n], &c[3][..n]);
    let (mut s0, mut s1, mut s2, mut s3) = ([T::ZERO; L], [T::ZERO; L], [T::ZERO; L], [T::ZERO; L]);
    let full = n / L * L;
    for ((((av, x0), x1), x2), x3) in a[..full]
        .chunks_exact(L)
        .zip(c0[..full].chunks_exact(L))
        .zip(c1[..full].chunks_exact(L))
        .zip(c2[..full].chunks_exact(L))
        .zip(c3[..full].chunks_exact(L))
    {
        for l in 0..L {
            s0[l] += av[l] * x0[l];
            s1[l] += av[l] * x1[l];
            s2[l] += av[l] * x2[l];
            s3[l] += av[l] * x3[l];
        }
    }
    let fold = |s: [T; L], x: &[T]| {
        let mut t = s.iter().fold(T::ZERO, |t, v| t + *v);
        for p in full..n {
            t += a[p] * x[p];
        }
        t
    };
    [fold(s0, c0), fold(s1, c1), fold(s2, c2), fold(s3, c3)]
}

/// `Σ a_i b_i` with eight partial sums (vectorisable without reassociation licence).
#[inline(always)]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let mut acc = [T::ZERO; 8];
    for c in 0..n / 8 {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s = acc.iter().fold(T::ZERO, |s, x| s + *x);
    for j in (n / 8) * 8..n {
        s += a[j] * b[j];
    }
    s
}

/// Naive triple loop: the reference [`gemm()`] is tested against.
pub fn gemm_slow<T: Float>(c: MatMut<'_, T>, a: MatRef<'_, T>, b: MatRef<'_, T>, accumulate: bool) {
    for i in 0..a.rows {
        for j in 0..b.cols {
            let mut s = T::ZERO;
            for p in 0..a.cols {
                s += a.data[(i as isize * a.rs + p as isize * a.cs) as usize]
                    * b.data[(p as isize * b.rs + j as isize * b.cs) as usize];
            }
            let d = &mut c.data[(i as isize * c.rs + j as isize) as usize];
            *d = if accumulate { *d + s } else { s };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::dots_rows`] for f32 with AVX-512 and real FMAs, *adding* to `out`: four columns at
    /// a time, each chunk loaded once for up to four rows of `a` (sixteen accumulators); the
    /// portable version reloads the columns for every row and, without FMA contraction, multiplies
    /// and adds separately.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dots_rows_f32(a: &[f32], m: usize, cols: &[f32], stride: usize, out: &mut [f32]) {
        let k = a.len() / m;
        let n = out.len() / m;
        assert!(a.len() == m * k && (n == 0 || cols.len() >= (n - 1) * stride + k));
        crate::simd::for_4x4_blocks(n, m, |j, q, i0, mi| {
            let mut dots = Dots {
                a,
                k,
                i0,
                cols,
                stride,
                m,
                out: &mut *out,
            };
            // SAFETY: the caller guarantees AVX-512F; reads were bounds-checked above.
            unsafe { crate::simd::run_block(&mut dots, mi, q, j) };
        });
    }

    /// [`block`]'s arguments but the columns, for [`crate::simd::run_block`].
    struct Dots<'a> {
        a: &'a [f32],
        k: usize,
        i0: usize,
        cols: &'a [f32],
        stride: usize,
        m: usize,
        out: &'a mut [f32],
    }

    impl crate::simd::Block for Dots<'_> {
        unsafe fn block<const M: usize, const Q: usize>(&mut self, j: usize) {
            let s = self;
            // SAFETY: per the caller (AVX-512F, bounds checked by `dots_rows_f32`).
            unsafe { block::<M, Q>(s.a, s.k, s.i0, s.cols, s.stride, j, s.m, s.out) }
        }
    }

    /// Rows `i0..i0+M` of `a` times columns `j..j+Q` (`Q` is 4, or 1 for the last columns: the
    /// counts are constants, so the inner loop has no branches).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const M: usize, const Q: usize>(
        a: &[f32],
        k: usize,
        i0: usize,
        cols: &[f32],
        stride: usize,
        j: usize,
        m: usize,
        out: &mut [f32],
    ) {
        let full = k / 16 * 16;
        let mut acc = [[_mm512_setzero_ps(); 4]; M];
        let mut p = 0;
        while p < full {
            let mut cv = [_mm512_setzero_ps(); 4];
            for (r, v) in cv.iter_mut().enumerate().take(Q) {
                *v = _mm512_loadu_ps(cols.as_ptr().add((j + r) * stride + p));
            }
            for (i, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_loadu_ps(a.as_ptr().add((i0 + i) * k + p));
                for r in 0..Q {
                    acc[r] = _mm512_fmadd_ps(av, cv[r], acc[r]);
                }
            }
            p += 16;
        }
        for (i, acc) in acc.iter().enumerate() {
            let ai = &a[(i0 + i) * k..(i0 + i + 1) * k];
            let mut sums = [0f32; 4];
            _mm_storeu_ps(sums.as_mut_ptr(), crate::simd::hsum4(acc));
            for (r, &s) in sums.iter().enumerate().take(Q) {
                let col = &cols[(j + r) * stride..][..k];
                let mut s = s;
                for p in full..k {
                    s += ai[p] * col[p];
                }
                out[(j + r) * m + i0 + i] += s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[rows, cols]` view of `d`, stored as given or (`transposed`) as its transpose.
    fn view<T: Float>(d: &[T], rows: usize, cols: usize, transposed: bool) -> MatRef<'_, T> {
        if transposed {
            MatRef::new(d, cols, rows).t()
        } else {
            MatRef::new(d, rows, cols)
        }
    }

    fn fill(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5
            })
            .collect()
    }

    #[test]
    fn f32_few_row_products_match_f64_reference() {
        // The few-row (GEMV) paths, where f32 has its own AVX-512 kernel: every row count up to
        // the limit, ragged k (not a multiple of 16) and n (not a multiple of 4), both layouts of b.
        for m in 1..=SMALL_M {
            for &(k, n) in &[(1, 1), (15, 5), (16, 4), (33, 7), (256, 130), (300, 1030)] {
                for tb in [false, true] {
                    let a = fill(m * k, 4);
                    let b = fill(k * n, 5);
                    let c0 = fill(m * n, 6);
                    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                    let (a32, b32) = (f(&a), f(&b));
                    let (bv, bv32) = (view(&b, k, n, tb), view(&b32, k, n, tb));
                    let mut want = c0.clone();
                    gemm_slow(
                        MatMut::new(&mut want, m, n),
                        MatRef::new(&a, m, k),
                        bv,
                        true,
                    );
                    let mut got = f(&c0);
                    gemm(
                        MatMut::new(&mut got, m, n),
                        MatRef::new(&a32, m, k),
                        bv32,
                        true,
                        Par::Threads(2),
                    );
                    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                        let tol = 1e-5 * (1.0 + y.abs()) * (k as f64).sqrt();
                        assert!(
                            (*x as f64 - y).abs() <= tol,
                            "m{m} k{k} n{n} tb{tb} at {i}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_matches_naive_for_all_transposes_and_accumulate() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 65),
            (64, 1, 9),
            (1, 33, 65),
            (1, 300, 700),
            (4, 300, 700),
            (8, 17, 130),
            (2, 256, 20),
            (3, 40, 7),
            (1, 70, 13),
        ] {
            for ta in [false, true] {
                for tb in [false, true] {
                    for acc in [false, true] {
                        let a = fill(m * k, 1);
                        let b = fill(k * n, 2);
                        let c0 = fill(m * n, 3);
                        let (av, bv) = (view(&a, m, k, ta), view(&b, k, n, tb));
                        let (mut c1, mut c2) = (c0.clone(), c0.clone());
                        gemm(MatMut::new(&mut c1, m, n), av, bv, acc, Par::Threads(2));
                        gemm_slow(MatMut::new(&mut c2, m, n), av, bv, acc);
                        for (x, y) in c1.iter().zip(&c2) {
                            assert!(
                                (x - y).abs() < 1e-12,
                                "m{m} k{k} n{n} ta{ta} tb{tb} acc{acc}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn strided_destination_leaves_gaps_untouched() {
        let a = fill(6, 4);
        let b = fill(9, 5);
        let mut c = vec![7.0; 2 * 5];
        gemm(
            MatMut::strided(&mut c, 2, 3, 5),
            MatRef::new(&a, 2, 3),
            MatRef::new(&b, 3, 3),
            false,
            Par::Seq,
        );
        assert_eq!(&c[3..5], &[7.0, 7.0]);
        assert_eq!(&c[8..10], &[7.0, 7.0]);
    }

    #[test]
    #[should_panic(expected = "gemm shape mismatch")]
    fn shape_mismatch_panics_with_shapes() {
        let a = vec![0.0f32; 6];
        let mut c = vec![0.0f32; 4];
        gemm(
            MatMut::new(&mut c, 2, 2),
            MatRef::new(&a, 2, 3),
            MatRef::new(&a, 2, 3),
            false,
            Par::Seq,
        );
    }

    #[test]
    fn k_zero_clears_or_keeps() {
        let a: Vec<f32> = vec![];
        let mut c = vec![1.0f32; 4];
        gemm(
            MatMut::new(&mut c, 2, 2),
            MatRef::new(&a, 2, 0),
            MatRef::new(&a, 0, 2),
            true,
            Par::Seq,
        );
        assert_eq!(c, vec![1.0; 4]);
        gemm(
            MatMut::new(&mut c, 2, 2),
            MatRef::new(&a, 2, 0),
            MatRef::new(&a, 0, 2),
            false,
            Par::Seq,
        );
        assert_eq!(c, vec![0.0; 4]);
    }
}
