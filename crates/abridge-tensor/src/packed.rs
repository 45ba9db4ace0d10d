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
//! `p = 0..k` (k-major, zero-padded past `n`). The product walks `k` in blocks of [`KC`] rows (a
//! panel block is `KC·NR` floats = 32 KiB, L1-sized).
//!
//! ## Micro-kernel
//! `R ≤ 8` rows of `a` times one panel: `2R` AVX-512 accumulators, per `p` two panel loads and `R`
//! broadcasts for `2R` FMAs. The rows of `a` are interleaved per `k` block first (`[KC, 8]`, on
//! the stack), so the broadcasts read one stream (up to 32 rows; more go to the heap). Loop order:
//! `k` blocks, then for a `b` of at most 1 MiB (`W_hhᵀ` at `H` = 256, in L2) row blocks then panels,
//! `b` streaming from L2 once per row block; for a wider `b` (a vocabulary projection) panels then
//! row blocks, each panel serving every row block from L1. [`PackedMatrix::mul_par`] splits the
//! panels over threads, each writing its own columns of `c`. The portable path computes
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
/// Size of `b` above which the loop nest goes panel by panel (see `PackedSlice::run`).
const PANEL_MAJOR_BYTES: usize = 1 << 20;

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

    fn view(&self) -> PackedSlice<'_> {
        PackedSlice {
            k: self.k,
            n: self.n,
            data: &self.data,
        }
    }

    /// `c [m, n] += a [m, k] · b`, with `a` and `c` row-major and densely packed.
    pub fn mul_acc(&self, a: &[f32], m: usize, c: &mut [f32]) {
        self.check(a, m, c, "mul_acc");
        // SAFETY: `c` is `[m, n]` (checked) and borrowed exclusively.
        unsafe { self.view().mul(a, m, c.as_mut_ptr(), self.n, true) }
    }

    /// `c [m, n] = a [m, k] · b` (overwritten) with the columns split over the current rayon
    /// pool, for a wide matrix used with a few dozen rows (a vocabulary projection in batched
    /// decoding): each task takes a range of panels and runs every row block over each panel
    /// while it is in L1, so `b` streams through once per call.
    pub fn mul_par(&self, a: &[f32], m: usize, c: &mut [f32]) {
        use rayon::prelude::*;
        self.check(a, m, c, "mul_par");
        let (k, n) = (self.k, self.n);
        let panels = n.div_ceil(NR);
        let per_task = panels.div_ceil(rayon::current_num_threads() * 4).max(1);
        let c_ptr = SendPtr(c.as_mut_ptr());
        (0..panels.div_ceil(per_task))
            .into_par_iter()
            .for_each(|t| {
                let (j0, j1) = (t * per_task, ((t + 1) * per_task).min(panels));
                let (c0, c1) = (j0 * NR, (j1 * NR).min(n));
                let sub = PackedSlice {
                    k,
                    n: c1 - c0,
                    data: &self.data[j0 * k * NR..j1 * k * NR],
                };
                let c_ptr = &c_ptr;
                // SAFETY: `c` is `[m, n]` (checked) and borrowed exclusively for this call; the tasks
                // write disjoint column ranges `c0..c1` of its rows, and nothing else touches it.
                unsafe { sub.mul(a, m, c_ptr.0.add(c0), n, false) };
            });
    }

    /// [`mul_acc`](Self::mul_acc) on the portable micro-kernel, whatever the CPU (for tests).
    pub fn mul_acc_portable(&self, a: &[f32], m: usize, c: &mut [f32]) {
        self.check(a, m, c, "mul_acc_portable");
        // SAFETY: the portable kernel runs on any CPU; `c` is `[m, n]` (checked).
        unsafe {
            self.view()
                .run(a, m, c.as_mut_ptr(), self.n, true, portable_tile)
        };
    }

    fn check(&self, a: &[f32], m: usize, c: &[f32], what: &str) {
        let (k, n) = (self.k, self.n);
        assert!(
            a.len() == m * k && c.len() == m * n,
            "PackedMatrix::{what}: a has {} elements (expected [{m}, {k}]), c has {} (expected [{m}, {n}])",
            a.len(),
            c.len()
        );
    }
}

/// A pointer the tasks of [`PackedMatrix::mul_par`] share (each writes its own columns).
struct SendPtr(*mut f32);
// SAFETY: only used for disjoint writes, see `mul_par`.
unsafe impl Sync for SendPtr {}

/// Some whole panels of a [`PackedMatrix`]: `[k, n]` with `n` their columns.
struct PackedSlice<'a> {
    k: usize,
    n: usize,
    data: &'a [f32],
}

impl PackedSlice<'_> {
    /// `c (+)= a · b` on the best kernel for this CPU, `c` being `m` rows of stride `ldc` whose
    /// first `n` columns are written.
    ///
    /// # Safety
    /// `c` must be valid for those writes and not accessed by anything else meanwhile.
    unsafe fn mul(&self, a: &[f32], m: usize, c: *mut f32, ldc: usize, accumulate: bool) {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx512() {
            // SAFETY: the CPU has AVX-512F, which `x86::tile` needs; `c` per the caller.
            unsafe { self.run(a, m, c, ldc, accumulate, x86::tile) };
            return;
        }
        // SAFETY: the portable kernel runs on any CPU; `c` per the caller.
        unsafe { self.run(a, m, c, ldc, accumulate, portable_tile) };
    }

    /// The blocked loop nest around a micro-kernel (see the module docs). Without `accumulate`,
    /// the first `k` block stores instead of adding.
    ///
    /// # Safety
    /// `tile` must be runnable on this CPU (its target features present); `c` as for `mul`.
    unsafe fn run(
        &self,
        a: &[f32],
        m: usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
        tile: TileFn,
    ) {
        let (k, n) = (self.k, self.n);
        assert!(a.len() >= m * k && n <= ldc);
        let kcap = KC.min(k);
        // The rows of `a`, per row block interleaved (`[kc, MR]`): the micro-kernel's broadcasts
        // then read one contiguous stream instead of `MR` rows a whole row apart (with `k` = 1024
        // those rows are 4 KiB apart and all map to the same L1 set).
        let blocks = m.div_ceil(MR);
        let need = blocks * MR * kcap;
        // On the stack for up to 32 rows (the time loop of a recurrent layer allocates nothing).
        let mut stack = [0f32; 4 * MR * KC];
        let mut heap = Vec::new();
        let a_blk: &mut [f32] = if need <= stack.len() {
            &mut stack[..need]
        } else {
            heap.resize(need, 0.0);
            &mut heap
        };
        // A small `b` (a recurrent `W_hh`, in L2) is streamed once per row block; a wide one (a
        // vocabulary projection) once in all, each panel serving every row block from L1.
        let panel_major = self.data.len() * 4 > PANEL_MAJOR_BYTES;
        if k == 0 && !accumulate {
            for i in 0..m {
                // SAFETY: row `i` of `c` per the caller.
                unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), n) }.fill(0.0);
            }
        }
        for p0 in (0..k).step_by(KC) {
            let kc = (k - p0).min(KC);
            for (ib, blk) in a_blk.chunks_exact_mut(MR * kcap).enumerate() {
                let i0 = ib * MR;
                for r in 0..(m - i0).min(MR) {
                    let src = &a[(i0 + r) * k + p0..][..kc];
                    for (p, &v) in src.iter().enumerate() {
                        blk[p * MR + r] = v;
                    }
                }
            }
            let a_blk = &*a_blk;
            let one = |ib: usize, j: usize, panel: &[f32]| {
                let i0 = ib * MR;
                let t = Tile {
                    a: &a_blk[ib * MR * kcap..][..kc * MR],
                    panel: &panel[p0 * NR..(p0 + kc) * NR],
                    kc,
                    rows: (m - i0).min(MR),
                    cols: (n - j * NR).min(NR),
                    add: accumulate || p0 > 0,
                };
                // SAFETY: the caller vouches for `tile` on this CPU and for `c`; the tile's rows
                // and columns are inside `[m, n]`.
                unsafe { tile(t, c.add(i0 * ldc + j * NR), ldc) };
            };
            if panel_major {
                for (j, panel) in self.data.chunks_exact(k * NR).enumerate() {
                    for ib in 0..blocks {
                        one(ib, j, panel);
                    }
                }
            } else {
                for ib in 0..blocks {
                    for (j, panel) in self.data.chunks_exact(k * NR).enumerate() {
                        one(ib, j, panel);
                    }
                }
            }
        }
    }
}

/// One micro-kernel call: `rows ≤ MR` rows of `a` (interleaved: `a[p·MR + r]`) times a `[kc, NR]`
/// panel block, added to (`add`) or stored in the first `cols` columns of `rows` rows of `c`.
struct Tile<'a> {
    a: &'a [f32],
    panel: &'a [f32],
    kc: usize,
    rows: usize,
    cols: usize,
    add: bool,
}

/// A micro-kernel: `(tile, c, ldc)`, `c` valid for the tile's rows (stride `ldc`) and columns.
type TileFn = unsafe fn(Tile<'_>, *mut f32, usize);

/// # Safety
/// `c` must be valid for `t.rows` rows of stride `ldc` and `t.cols` columns.
unsafe fn portable_tile(t: Tile<'_>, c: *mut f32, ldc: usize) {
    let mut acc = [[0f32; NR]; MR];
    for p in 0..t.kc {
        let b = &t.panel[p * NR..][..NR];
        for (r, acc) in acc.iter_mut().enumerate().take(t.rows) {
            let av = t.a[p * MR + r];
            acc.iter_mut().zip(b).for_each(|(s, &bv)| *s += av * bv);
        }
    }
    for (r, acc) in acc.iter().enumerate().take(t.rows) {
        // SAFETY: row `r` of the tile, per the caller.
        let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), t.cols) };
        row.iter_mut()
            .zip(acc)
            .for_each(|(v, s)| *v = if t.add { *v + s } else { *s });
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
    pub unsafe fn tile(t: Tile<'_>, c: *mut f32, ldc: usize) {
        // Bounds the reads of `a` and the panel; `c` is the caller's.
        assert!(t.rows >= 1 && t.rows <= MR && t.cols >= 1 && t.cols <= NR);
        assert!(t.a.len() >= t.kc * MR && t.panel.len() >= t.kc * NR);
        // SAFETY: the caller guarantees AVX-512F and `c`; the asserts above bound the reads.
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
    unsafe fn tile_r<const R: usize>(t: &Tile<'_>, c: *mut f32, ldc: usize) {
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
            let cp = c.add(r * ldc);
            for v in 0..V {
                let q = cp.add(16 * v);
                let x = if t.add {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(masks[v], q), acc[v])
                } else {
                    acc[v]
                };
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
        // `mul_par` overwrites: compare `c0 + mul_par` with the accumulated reference.
        let mut par = vec![f32::NAN; m * n];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| packed.mul_par(&a, m, &mut par));
        par.iter_mut().zip(&c0).for_each(|(p, c)| *p += c);
        for (i, ((w, f), p)) in want.iter().zip(&fast).zip(&port).enumerate() {
            let tol = 1e-4 * (1.0 + w.abs()) * (k as f32).sqrt();
            assert!(
                (w - f).abs() <= tol && (w - p).abs() <= tol && (w - par[i]).abs() <= tol,
                "m={m} k={k} n={n} t={transposed} at {i}: want {w}, fast {f}, portable {p}, par {}",
                par[i]
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
            // Over PANEL_MAJOR_BYTES: the panel-by-panel loop order, and more than 32 rows.
            (37, 300, 1100),
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
