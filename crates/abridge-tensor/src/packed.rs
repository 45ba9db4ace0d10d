//! A weight matrix packed once for the many small products of a recurrent time loop.
//!
//! A recurrent layer multiplies the same `W_hh` by a few rows of hidden state at every step
//! (`[Bs, H]·[H, G·H]` with `Bs` = 16 rows per thread at batch 32). A general GEMM packs its right
//! operand on every call, or (given it unpacked) reads it with a stride of a whole row per `k`,
//! which aliases in L1. Here the matrix is packed once per forward or backward pass into column
//! panels that the micro-kernel streams contiguously, and the per-step product is just the
//! micro-kernel.
//!
//! ## Layout
//! `b [k, n]` is cut into panels of [`NR`] = 32 columns; panel `j` holds `b[p, 32j..32j+32]` for
//! `p = 0..k` (k-major, zero-padded past `n`). The product walks `k` in blocks of [`KC`] rows so
//! that a panel block (`KC·NR` floats = 32 KiB) stays in L1 while every row block of `a` uses it.
//!
//! ## Micro-kernel
//! `R ≤ 8` rows of `a` times one panel: `2R` AVX-512 accumulators, per `p` two panel loads and `R`
//! broadcasts for `2R` FMAs. The rows of `a` are interleaved per `k` block first (`[KC, 8]`, on
//! the stack), so the broadcasts read one stream. Loop order: `k` blocks, row blocks, panels — `b`
//! (1 MiB for `W_hhᵀ` at `H` = 256) streams from L2 once per row block. The portable path computes
//! the same thing with plain loops (CPUs without AVX-512, and the test oracle's second opinion).
//!
//! Measured (`cargo run --release -p abridge-tensor --example step_product`, one thread): for the
//! forward step `[16, 256]·[256, 1024]` this is 1.1–1.3× the GEMM crate on `W_hhᵀ` as stored; for
//! backward's `[16, 1024]·[1024, 256]` the GEMM crate is faster, so the RNN uses this for forward only.

use crate::matmul::MatRef;

/// Columns per panel (two 16-lane vectors).
pub const NR: usize = 32;
/// Rows of `b` per cache block.
pub const KC: usize = 256;
/// Rows of `a` per micro-kernel call.
const MR: usize = 8;

/// `b [k, n]` in panel layout; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct PackedMatrix {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedMatrix {
    /// `[k, n]` of the packed matrix.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Packs `b` (any strides), reusing this buffer.
    pub fn pack(&mut self, b: MatRef<'_, f32>) {
        let (k, n) = (b.rows(), b.cols());
        let panels = n.div_ceil(NR);
        self.k = k;
        self.n = n;
        self.data.clear();
        self.data.resize(panels * k * NR, 0.0);
        for (j, panel) in self.data.chunks_exact_mut(k * NR).enumerate() {
            let cols = (n - j * NR).min(NR);
            for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
                for (q, v) in dst[..cols].iter_mut().enumerate() {
                    *v = b.get(p, j * NR + q);
                }
            }
        }
    }

    /// Packs `b` into a new matrix.
    pub fn new(b: MatRef<'_, f32>) -> Self {
        let mut m = Self::default();
        m.pack(b);
        m
    }

    /// `c [m, n] += a [m, k] · b`, with `a` and `c` row-major and densely packed.
    pub fn mul_acc(&self, a: &[f32], m: usize, c: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        assert!(
            a.len() == m * k && c.len() == m * n,
            "PackedMatrix::mul_acc: a has {} elements (expected [{m}, {k}]), c has {} (expected [{m}, {n}])",
            a.len(),
            c.len()
        );
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx512() {
            // SAFETY: the CPU has AVX-512F, which `x86::tile` needs.
            unsafe { self.run(a, m, c, x86::tile) };
            return;
        }
        // SAFETY: the portable kernel runs on any CPU.
        unsafe { self.run(a, m, c, portable_tile) };
    }

    /// [`mul_acc`](Self::mul_acc) on the portable micro-kernel, whatever the CPU (for tests).
    pub fn mul_acc_portable(&self, a: &[f32], m: usize, c: &mut [f32]) {
        assert!(a.len() == m * self.k && c.len() == m * self.n);
        // SAFETY: the portable kernel runs on any CPU.
        unsafe { self.run(a, m, c, portable_tile) };
    }

    /// The blocked loop nest around a micro-kernel: `k` blocks, then panels, then row blocks.
    ///
    /// # Safety
    /// `tile` must be runnable on this CPU (its target features present).
    unsafe fn run(&self, a: &[f32], m: usize, c: &mut [f32], tile: TileFn) {
        let (k, n) = (self.k, self.n);
        // The rows of `a` for one block, interleaved (`[kc, MR]`): the micro-kernel's broadcasts
        // then read one contiguous stream instead of `MR` rows a whole row apart (with `k` = 1024
        // those rows are 4 KiB apart and all map to the same L1 set).
        let mut a_blk = [0f32; MR * KC];
        for p0 in (0..k).step_by(KC) {
            let kc = (k - p0).min(KC);
            for i0 in (0..m).step_by(MR) {
                let rows = (m - i0).min(MR);
                for r in 0..rows {
                    let src = &a[(i0 + r) * k + p0..][..kc];
                    for (p, &v) in src.iter().enumerate() {
                        a_blk[p * MR + r] = v;
                    }
                }
                for (j, panel) in self.data.chunks_exact(k * NR).enumerate() {
                    let t = Tile {
                        a: &a_blk[..kc * MR],
                        panel: &panel[p0 * NR..(p0 + kc) * NR],
                        kc,
                        rows,
                        cols: (n - j * NR).min(NR),
                    };
                    // SAFETY: the caller vouches for `tile` on this CPU.
                    unsafe { tile(t, &mut c[i0 * n + j * NR..], n) };
                }
            }
        }
    }
}

/// One micro-kernel call: `rows ≤ MR` rows of `a` (interleaved: `a[p·MR + r]`) times a `[kc, NR]`
/// panel block, added to the first `cols` columns of `rows` rows of `c` (row stride `ldc`).
struct Tile<'a> {
    a: &'a [f32],
    panel: &'a [f32],
    kc: usize,
    rows: usize,
    cols: usize,
}

type TileFn = unsafe fn(Tile<'_>, &mut [f32], usize);

fn portable_tile(t: Tile<'_>, c: &mut [f32], ldc: usize) {
    let mut acc = [[0f32; NR]; MR];
    for p in 0..t.kc {
        let b = &t.panel[p * NR..][..NR];
        for (r, acc) in acc.iter_mut().enumerate().take(t.rows) {
            let av = t.a[p * MR + r];
            acc.iter_mut().zip(b).for_each(|(s, &bv)| *s += av * bv);
        }
    }
    for (r, acc) in acc.iter().enumerate().take(t.rows) {
        let row = &mut c[r * ldc..][..t.cols];
        row.iter_mut().zip(acc).for_each(|(v, s)| *v += s);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Tile, MR, NR};
    use std::arch::x86_64::*;

    /// Dispatches on the row count so that every accumulator lives in a register.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    pub unsafe fn tile(t: Tile<'_>, c: &mut [f32], ldc: usize) {
        // Bounds the raw accesses below: rows `r < rows` of `a` reach `r·lda + kc`, of `c`
        // `r·ldc + cols`.
        assert!(t.rows >= 1 && t.rows <= MR && t.cols >= 1 && t.cols <= NR);
        assert!(t.a.len() >= t.kc * MR && t.panel.len() >= t.kc * NR);
        assert!(c.len() >= (t.rows - 1) * ldc + t.cols);
        // SAFETY: the caller guarantees AVX-512F; the asserts above bound every pointer the
        // kernel forms.
        unsafe {
            match t.rows {
                8 => tile_r::<8>(&t, c, ldc),
                7 => tile_r::<7>(&t, c, ldc),
                6 => tile_r::<6>(&t, c, ldc),
                5 => tile_r::<5>(&t, c, ldc),
                4 => tile_r::<4>(&t, c, ldc),
                3 => tile_r::<3>(&t, c, ldc),
                2 => tile_r::<2>(&t, c, ldc),
                _ => tile_r::<1>(&t, c, ldc),
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn tile_r<const R: usize>(t: &Tile<'_>, c: &mut [f32], ldc: usize) {
        const V: usize = NR / 16;
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        let (a, b) = (t.a.as_ptr(), t.panel.as_ptr());
        for p in 0..t.kc {
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, bv) in bv.iter_mut().enumerate() {
                *bv = _mm512_loadu_ps(b.add(p * NR + 16 * v));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(p * MR + r));
                for v in 0..V {
                    acc[v] = _mm512_fmadd_ps(av, bv[v], acc[v]);
                }
            }
        }
        let masks: [__mmask16; V] = std::array::from_fn(|v| {
            let cols = t.cols.saturating_sub(16 * v).min(16);
            ((1u32 << cols) - 1) as __mmask16
        });
        for (r, acc) in acc.iter().enumerate() {
            let cp = c.as_mut_ptr().add(r * ldc);
            for v in 0..V {
                let q = cp.add(16 * v);
                let x = _mm512_add_ps(_mm512_maskz_loadu_ps(masks[v], q), acc[v]);
                _mm512_mask_storeu_ps(q, masks[v], x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::{gemm_slow, MatMut};
    use crate::Rng;

    fn check(m: usize, k: usize, n: usize, transposed: bool) {
        let mut rng = Rng::new((m * 1000 + k * 10 + n) as u64);
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
        let bd: Vec<f32> = (0..k * n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
        let b = if transposed {
            MatRef::new(&bd, n, k).t()
        } else {
            MatRef::new(&bd, k, n)
        };
        let c0: Vec<f32> = (0..m * n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
        let mut want = c0.clone();
        gemm_slow(MatMut::new(&mut want, m, n), MatRef::new(&a, m, k), b, true);
        let packed = PackedMatrix::new(b);
        assert_eq!(packed.shape(), (k, n));
        let mut fast = c0.clone();
        packed.mul_acc(&a, m, &mut fast);
        let mut port = c0.clone();
        packed.mul_acc_portable(&a, m, &mut port);
        for (i, ((w, f), p)) in want.iter().zip(&fast).zip(&port).enumerate() {
            let tol = 1e-4 * (1.0 + w.abs()) * (k as f32).sqrt();
            assert!(
                (w - f).abs() <= tol && (w - p).abs() <= tol,
                "m={m} k={k} n={n} t={transposed} at {i}: want {w}, fast {f}, portable {p}"
            );
        }
    }

    #[test]
    fn packed_products_match_the_reference_on_ragged_shapes() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (8, 256, 1024),
            (16, 256, 1024),
            (13, 300, 45),
            (9, 1024, 256),
            (17, 513, 65),
            (5, 40, 33),
        ] {
            check(m, k, n, false);
            check(m, k, n, true);
        }
    }

    #[test]
    fn zero_rows_leave_c_alone() {
        let b = vec![1.0f32; 6];
        let packed = PackedMatrix::new(MatRef::new(&b, 2, 3));
        let mut c: Vec<f32> = vec![];
        packed.mul_acc(&[], 0, &mut c);
        assert!(c.is_empty());
    }
}
