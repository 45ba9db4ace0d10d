//! [`Rnn`]: a multi-layer, optionally bidirectional LSTM or GRU over variable-length batches, with
//! forward caches and backpropagation through time. Equations: [`crate::lstm`], [`crate::gru`].
//!
//! ## Shapes
//! | buffer | shape |
//! |---|---|
//! | input `x` | `[T, B, I]` (time-major, as PyTorch's default) |
//! | `lengths` | `[B]`, each `≤ T`; `None` means every sequence has length `T` |
//! | `h0`, `c0`, `h_n`, `c_n` | `[L·D, B, H]`, layer-major, forward direction first |
//! | output | `[T, B, D·H]`, forward half first; zero at `t ≥ lengths[b]` |
//!
//! The reverse direction of sequence `b` starts at its own last step `lengths[b] − 1`, and `h_n`
//! holds each direction's state at the end of its own pass — PyTorch's packed-sequence semantics.
//!
//! ## The fast path
//! The batch is split into contiguous shards, one per thread of the current rayon pool; every shard
//! runs the whole stack on its rows with no synchronisation inside the time loop. Per layer and
//! direction a shard does one GEMM for the input projections of all steps (`[T·B, I]·[I, G·H]`), one
//! recurrent product per step (`[B, H]·[H, G·H]`; f32 on AVX-512: on `W_hhᵀ` packed once per pass,
//! [`PackedMatrix`]; a few rows: a GEMV on `W_hh` as stored) followed by a fused element-wise kernel
//! that also adds the bias, and in backward the per-step `δh` GEMM (the element-wise kernel writes `δa`
//! over the gates and sums `δb`), then three large GEMMs for `δW_ih`, `δW_hh` (as `(vᵀ·δa)ᵀ`) and `δx`.
//! Buffers live in [`RnnCache`] and are reused across calls: nothing is allocated inside the time loop.

use abridge_tensor::{gemm, Float, MatMut, MatRef, PackedMatrix, Par};
use rayon::prelude::*;

use crate::gru::{gru_step_backward, gru_step_forward, GruStep, GruStepBack};
use crate::lstm::{lstm_step_backward, lstm_step_forward, LstmStep, LstmStepBack};
use crate::{CellKind, RnnConfig, RnnParams};

/// A recurrent stack and its parameters.
#[derive(Clone, Debug)]
pub struct Rnn<T> {
    pub params: RnnParams<T>,
}

/// Inputs of one forward pass.
#[derive(Clone, Copy, Debug)]
pub struct RnnInput<'a, T> {
    /// `[T, B, I]`
    pub x: &'a [T],
    /// `T`
    pub steps: usize,
    /// `B`
    pub batch: usize,
    /// `[B]`, each `≤ T`; `None` = all `T`.
    pub lengths: Option<&'a [usize]>,
    /// `[L·D, B, H]`; `None` = zeros.
    pub h0: Option<&'a [T]>,
    /// `[L·D, B, H]`, LSTM only; `None` = zeros.
    pub c0: Option<&'a [T]>,
}

impl<'a, T> RnnInput<'a, T> {
    /// Full-length sequences from zero initial states.
    pub fn new(x: &'a [T], steps: usize, batch: usize) -> Self {
        Self {
            x,
            steps,
            batch,
            lengths: None,
            h0: None,
            c0: None,
        }
    }
}

/// Gradients arriving at the outputs of a forward pass; `None` means zero.
#[derive(Clone, Copy, Debug, Default)]
pub struct RnnGradOut<'a, T> {
    /// `[T, B, D·H]`
    pub d_output: Option<&'a [T]>,
    /// `[L·D, B, H]`
    pub d_h_n: Option<&'a [T]>,
    /// `[L·D, B, H]`, LSTM only.
    pub d_c_n: Option<&'a [T]>,
}

/// What can be wrong with the arguments of a forward or backward pass.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RnnError {
    #[error("rnn: `{what}` has {got} elements, expected {expected} ({shape})")]
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
        shape: String,
    },
    #[error("rnn: lengths[{index}] = {len} exceeds the {steps} time steps of the batch")]
    Length {
        index: usize,
        len: usize,
        steps: usize,
    },
    #[error("rnn: `{what}` was given to a GRU, which has no cell state")]
    NoCellState { what: &'static str },
    #[error("rnn: backward called on a cache that holds no forward pass of this stack (or whose forward pass was already differentiated: backward consumes it)")]
    NoForward,
}

fn check(
    what: &'static str,
    got: usize,
    expected: usize,
    shape: impl FnOnce() -> String,
) -> Result<(), RnnError> {
    if got == expected {
        Ok(())
    } else {
        Err(RnnError::Shape {
            what,
            expected,
            got,
            shape: shape(),
        })
    }
}

/// Resizes without clearing: contents are unspecified and must be overwritten.
fn ensure<T: Float>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    v.resize(n, T::ZERO);
    &mut v[..n]
}

/// Resizes and zeroes.
fn zeroed<T: Float>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    v.clear();
    v.resize(n, T::ZERO);
    &mut v[..]
}

/// `acc[j] += Σ_i m[i, j]` for a row-major `[rows, acc.len()]` matrix.
/// `acc += Σ_r m[r, ..acc.len()]` over the rows of `m [·, width]`.
fn add_column_sums<T: Float>(acc: &mut [T], m: &[T], width: usize) {
    for row in m.chunks_exact(width) {
        acc.iter_mut().zip(row).for_each(|(a, v)| *a += *v);
    }
}

/// Per layer-and-direction values saved by forward for backward, for one shard.
#[derive(Default)]
struct DirCache<T> {
    /// `[T, B, G·H]` gate activations.
    gates: Vec<T>,
    /// `[T, B, H]` hidden state entering step `t`.
    h_prev: Vec<T>,
    /// LSTM: `[T, B, H]` cell state entering step `t`; GRU: `q = W_hn h_{t-1} + b_hn`.
    aux: Vec<T>,
    /// LSTM: `[T, B, H]` `tanh(c_t)`; GRU: unused.
    tanh_c: Vec<T>,
    /// Forward scratch: `[G·H]` summed biases, GRU `[B, 3H]` `W_hh h + b_hh`, and `[T, B, H]`
    /// outputs when the directions run side by side.
    bias: Vec<T>,
    gh: Vec<T>,
    out: Vec<T>,
}

/// A contiguous block of the batch and everything the stack computes for it.
#[derive(Default)]
struct Shard<T> {
    /// First batch row and number of rows (`Bs`).
    b0: usize,
    bs: usize,
    lengths: Vec<usize>,
    /// `[T, Bs, I]`
    x: Vec<T>,
    /// `[L·D, Bs, H]`: `h0`/`c0` in, `h_n`/`c_n` after forward.
    state_h: Vec<T>,
    state_c: Vec<T>,
    dirs: Vec<DirCache<T>>,
    /// Per layer `[T, Bs, D·H]`.
    outs: Vec<Vec<T>>,
    /// `[G·H]` scratch: the bias gradient (backward).
    bias: Vec<T>,
    /// Backward: gradient w.r.t. the current layer's output `[T, Bs, D·H]` and its input.
    d_cur: Vec<T>,
    d_below: Vec<T>,
    /// GRU: `[T, Bs, H]` the `n` part of `δa_h`, and `[Bs, 3H]` a step's whole `δa_h` (`δa_x`
    /// is written over the gates).
    da_h: Vec<T>,
    da_h_step: Vec<T>,
    /// `[L·D, Bs, H]`: `δh_n`/`δc_n` in, `δh0`/`δc0` out.
    d_state_h: Vec<T>,
    d_state_c: Vec<T>,
    /// `[n, G·H]` scratch: a weight gradient, transposed.
    dw_t: Vec<T>,
    grads: Option<RnnParams<T>>,
}

/// Rows per shard up to which the recurrent product reads `W_hh` untransposed.
const FEW_ROWS: usize = 4;

/// Everything one forward pass leaves for backward, its results, and reusable work buffers.
///
/// Create once with [`RnnCache::new`] and pass to every call: buffers grow to the largest batch
/// seen and are reused.
pub struct RnnCache<T> {
    config: Option<RnnConfig>,
    steps: usize,
    batch: usize,
    shards: Vec<Shard<T>>,
    output: Vec<T>,
    h_n: Vec<T>,
    c_n: Vec<T>,
    dx: Vec<T>,
    dh0: Vec<T>,
    dc0: Vec<T>,
    /// Per layer and direction, `W_hhᵀ` as `[H, G·H]`: the recurrent GEMM then reads the weights in
    /// the column-major order the GEMM micro-kernel wants, and does not repack them at every step.
    w_hh_t: Vec<Vec<T>>,
    /// f32 on AVX-512: per layer and direction, `W_hhᵀ` packed once per forward pass for
    /// [`PackedMatrix::mul_acc`], which then is the whole per-step product. (Measured, bench shape:
    /// packing `W_ihᵀ` too and projecting the input per step was slower than one large GEMM, and
    /// for backward's `δa·W_hh` (k = G·H) the GEMM crate on `W_hh` as stored is faster.)
    packed_fwd: Vec<PackedMatrix>,
    /// Packed `W_hhᵀ` made once by the caller ([`Rnn::pack_recurrent`]) for many short calls
    /// (a decoder's steps), used instead of packing per call.
    shared_packed: Option<PackedRecurrent>,
    /// Backward has run on the last forward pass (and overwritten its gates).
    consumed: bool,
}

/// `W_hhᵀ` of every layer and direction packed for the per-step kernel, made once by
/// [`Rnn::pack_recurrent`] and shared by the caches of many one-step calls
/// ([`RnnCache::set_packed`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct PackedRecurrent(std::sync::Arc<[PackedMatrix]>);

impl<T: Float> Default for RnnCache<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> RnnCache<T> {
    pub fn new() -> Self {
        Self {
            config: None,
            steps: 0,
            batch: 0,
            shards: Vec::new(),
            output: Vec::new(),
            h_n: Vec::new(),
            c_n: Vec::new(),
            dx: Vec::new(),
            dh0: Vec::new(),
            dc0: Vec::new(),
            w_hh_t: Vec::new(),
            packed_fwd: Vec::new(),
            shared_packed: None,
            consumed: false,
        }
    }
    /// Use `packed` (from [`Rnn::pack_recurrent`] of the same stack, same weights) in the
    /// following forward passes instead of packing or transposing `W_hh` per call; `None` stops.
    /// The caller keeps it in step with the weights.
    pub fn set_packed(&mut self, packed: Option<PackedRecurrent>) {
        self.shared_packed = packed;
    }

    /// Moves this cache's per-shard gradient buffers (scratch, `G·H·(I+H)` per thread) to
    /// `other`: one-step caches used in sequence (a decoder's steps in backward) then share one set
    /// instead of holding one each.
    pub fn lend_grad_scratch(&mut self, other: &mut RnnCache<T>) {
        for (a, b) in self.shards.iter_mut().zip(other.shards.iter_mut()) {
            if a.grads.is_some() {
                b.grads = a.grads.take();
            }
        }
    }

    /// `[T, B, D·H]` top layer's hidden states (zero past each length).
    pub fn output(&self) -> &[T] {
        &self.output
    }
    /// `[L·D, B, H]` final hidden states.
    pub fn h_n(&self) -> &[T] {
        &self.h_n
    }
    /// `[L·D, B, H]` final cell states (LSTM; empty for GRU).
    pub fn c_n(&self) -> &[T] {
        &self.c_n
    }
    /// `[T, B, I]` gradient w.r.t. the input, after [`Rnn::backward`].
    pub fn dx(&self) -> &[T] {
        &self.dx
    }
    /// `[L·D, B, H]` gradient w.r.t. `h0`, after [`Rnn::backward`].
    pub fn dh0(&self) -> &[T] {
        &self.dh0
    }
    /// `[L·D, B, H]` gradient w.r.t. `c0` (LSTM), after [`Rnn::backward`].
    pub fn dc0(&self) -> &[T] {
        &self.dc0
    }

    /// For inspection (e.g. `abridge explain`): for batch row `b` of layer `layer`, direction
    /// `dir` of the last forward, one entry per step the row is active (in time order): the gate
    /// activations `[G·H]` (LSTM `i, f, g, o`; GRU `r, z, n`) and the memory after the step — the
    /// LSTM cell state `c_t = f ⊙ c_{t−1} + i ⊙ g`, the GRU hidden state
    /// `h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}`. `None` when out of range, before any forward, or after
    /// backward (which consumes the forward pass).
    pub fn trace(&self, layer: usize, dir: usize, b: usize) -> Option<Vec<(Vec<T>, Vec<T>)>> {
        let cfg = self.config.as_ref()?;
        if self.consumed {
            return None;
        }
        let nd = if cfg.bidirectional { 2 } else { 1 };
        if layer >= cfg.num_layers || dir >= nd {
            return None;
        }
        let sh = self.shards.iter().find(|s| b >= s.b0 && b < s.b0 + s.bs)?;
        let (h, bs, r) = (cfg.hidden_size, sh.bs, b - sh.b0);
        let g = cfg.cell.gates();
        let dc = sh.dirs.get(layer * nd + dir)?;
        let len = *sh.lengths.get(r)?;
        let lstm = cfg.cell == CellKind::Lstm;
        Some(
            (0..len.min(self.steps))
                .map(|t| {
                    let row = t * bs + r;
                    let gates = dc.gates[row * g * h..][..g * h].to_vec();
                    let prev = if lstm { &dc.aux } else { &dc.h_prev };
                    let prev = &prev[row * h..][..h];
                    let mem = (0..h)
                        .map(|j| {
                            if lstm {
                                gates[h + j] * prev[j] + gates[j] * gates[2 * h + j]
                            } else {
                                let (z, n) = (gates[h + j], gates[2 * h + j]);
                                (T::ONE - z) * n + z * prev[j]
                            }
                        })
                        .collect();
                    (gates, mem)
                })
                .collect(),
        )
    }
}

/// Fewest steps for which a forward pass packs (or transposes) `W_hh` itself.
const MIN_STEPS_TO_PREPARE: usize = 4;

impl PackedRecurrent {
    /// Whether this was packed from a stack of `params`' shape.
    fn fits<T: Float>(&self, params: &RnnParams<T>) -> bool {
        let (h, gh) = (
            params.config.hidden_size,
            params.config.cell.gates() * params.config.hidden_size,
        );
        self.0.len() == params.dirs.len() && self.0.iter().all(|p| p.shape() == (h, gh))
    }
}

impl<T: Float> Rnn<T> {
    /// `W_hhᵀ` of every layer and direction packed for the per-step kernel, for callers that make
    /// many short forward calls with the same weights (see [`RnnCache::set_packed`]); `None` where
    /// the kernel does not apply (f64, or a CPU without AVX-512).
    pub fn pack_recurrent(&self) -> Option<PackedRecurrent> {
        let params = &self.params;
        if !packed_kernel_applies(params) {
            return None;
        }
        let (h, gh) = (
            params.config.hidden_size,
            params.config.cell.gates() * params.config.hidden_size,
        );
        let packs: Vec<PackedMatrix> = params
            .dirs
            .iter()
            .map(|p| {
                Some(PackedMatrix::new(
                    MatRef::new(T::as_f32(&p.w_hh)?, gh, h).t(),
                ))
            })
            .collect::<Option<_>>()?;
        Some(PackedRecurrent(packs.into()))
    }
}

/// Whether the per-step products can run on [`PackedMatrix`] (f32 weights, AVX-512).
fn packed_kernel_applies<T: Float>(params: &RnnParams<T>) -> bool {
    abridge_tensor::simd::has_avx512() && params.dirs.iter().all(|p| T::as_f32(&p.w_hh).is_some())
}

/// The per-step recurrent product `c [bs, n] += a [bs, k] · b`: the packed kernel when given one
/// (f32), else the GEMM on the view `b`.
fn step_product<T: Float>(
    c: &mut [T],
    a: &[T],
    bs: usize,
    packed: Option<&PackedMatrix>,
    b: MatRef<'_, T>,
    par: Par,
) {
    if let (Some(pk), Some(a32)) = (packed, T::as_f32(a)) {
        if let Some(c32) = T::as_f32_mut(c) {
            pk.mul_acc(a32, bs, c32);
            return;
        }
    }
    let (k, n) = (b.rows(), b.cols());
    gemm(MatMut::new(c, bs, n), MatRef::new(a, bs, k), b, true, par);
}

/// Fewest rows (steps × batch rows of a shard) for which [`add_weight_grad`] goes through the
/// transposed product.
const MIN_ROWS_TRANSPOSED_GRAD: usize = 256;

/// `dw [G, n] += δaᵀ · v` for `δa [rows, G]` (a view: it may be some columns of a wider matrix)
/// and `v [rows, n]`, computed as `(vᵀ·δa)ᵀ` into `scratch`: in that orientation the GEMM crate
/// runs 1.1–1.4× faster on these shapes (measured: `cargo run --release -p abridge-tensor
/// --example step_product`), which pays for the transpose.
fn add_weight_grad<T: Float>(
    dw: &mut [T],
    da: MatRef<'_, T>,
    v: &[T],
    scratch: &mut Vec<T>,
    par: Par,
) {
    let (rows, gh) = (da.rows(), da.cols());
    let n = v.len() / rows.max(1);
    if rows == 0 || n == 0 {
        return;
    }
    if rows < MIN_ROWS_TRANSPOSED_GRAD {
        // A step or two (a decoder step): accumulate directly, keep no scratch.
        gemm(
            MatMut::new(dw, gh, n),
            da.t(),
            MatRef::new(v, rows, n),
            true,
            par,
        );
        return;
    }
    let s = ensure(scratch, n * gh);
    gemm(
        MatMut::new(s, n, gh),
        MatRef::new(v, rows, n).t(),
        da,
        false,
        par,
    );
    const BLK: usize = 16;
    for g0 in (0..gh).step_by(BLK) {
        for j0 in (0..n).step_by(BLK) {
            for g in g0..(g0 + BLK).min(gh) {
                let row = &mut dw[g * n..][..n];
                for j in j0..(j0 + BLK).min(n) {
                    row[j] += s[j * gh + g];
                }
            }
        }
    }
}

/// Splits `batch` rows into `n` contiguous blocks of near-equal size.
fn shard_ranges(batch: usize, n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).map(move |i| {
        let b0 = i * batch / n;
        (b0, (i + 1) * batch / n - b0)
    })
}

/// Copies rows `[b0, b0+bs)` of a `[outer, B, inner]` buffer into a dense `[outer, bs, inner]` one.
fn gather<T: Float>(
    dst: &mut Vec<T>,
    src: &[T],
    outer: usize,
    batch: usize,
    inner: usize,
    b0: usize,
    bs: usize,
) {
    let dst = ensure(dst, outer * bs * inner);
    for o in 0..outer {
        dst[o * bs * inner..][..bs * inner]
            .copy_from_slice(&src[(o * batch + b0) * inner..][..bs * inner]);
    }
}

/// The inverse of [`gather`].
fn scatter<T: Float>(
    dst: &mut [T],
    src: &[T],
    outer: usize,
    batch: usize,
    inner: usize,
    b0: usize,
    bs: usize,
) {
    for o in 0..outer {
        dst[(o * batch + b0) * inner..][..bs * inner]
            .copy_from_slice(&src[o * bs * inner..][..bs * inner]);
    }
}

impl<T: Float> Rnn<T> {
    pub fn new(params: RnnParams<T>) -> Self {
        Self { params }
    }

    pub fn config(&self) -> &RnnConfig {
        &self.params.config
    }

    /// Forward pass; results in `cache.output()`, `cache.h_n()`, `cache.c_n()`.
    ///
    /// Uses the threads of the current rayon pool (install a pool to choose how many).
    pub fn forward(
        &self,
        input: &RnnInput<'_, T>,
        cache: &mut RnnCache<T>,
    ) -> Result<(), RnnError> {
        let cfg = *self.config();
        let (steps, batch) = (input.steps, input.batch);
        let (h, ld) = (cfg.hidden_size, cfg.num_layers * cfg.directions());
        check("x", input.x.len(), steps * batch * cfg.input_size, || {
            format!("[T={steps}, B={batch}, I={}]", cfg.input_size)
        })?;
        let state_shape = || format!("[L·D={ld}, B={batch}, H={h}]");
        if let Some(h0) = input.h0 {
            check("h0", h0.len(), ld * batch * h, state_shape)?;
        }
        if let Some(c0) = input.c0 {
            if cfg.cell == CellKind::Gru {
                return Err(RnnError::NoCellState { what: "c0" });
            }
            check("c0", c0.len(), ld * batch * h, state_shape)?;
        }
        if let Some(lengths) = input.lengths {
            check("lengths", lengths.len(), batch, || format!("[B={batch}]"))?;
            if let Some((index, &len)) = lengths.iter().enumerate().find(|(_, &l)| l > steps) {
                return Err(RnnError::Length { index, len, steps });
            }
        }

        let threads = rayon::current_num_threads().max(1);
        let n_shards = threads.min(batch).max(1);
        let par = if n_shards < threads {
            Par::Threads(threads / n_shards)
        } else {
            Par::Seq
        };
        cache.shards.resize_with(n_shards, Shard::default);
        cache.config = Some(cfg);
        cache.consumed = false;
        cache.steps = steps;
        cache.batch = batch;
        let params = &self.params;
        let gh = cfg.cell.gates() * h;
        // With a few rows per shard (decoding) the recurrent product is a GEMV that streams
        // `W_hh` as stored; transposing it would cost more than the step itself. A few steps
        // (one decoder step) do not pay for packing or transposing either, unless the caller
        // packed once for many calls.
        let few_rows = batch.div_ceil(n_shards) <= FEW_ROWS;
        let shared = cache
            .shared_packed
            .clone()
            .filter(|p| !few_rows && p.fits(params));
        let prepare = !few_rows && shared.is_none() && steps >= MIN_STEPS_TO_PREPARE;
        let packed = prepare && packed_kernel_applies(params);
        cache.w_hh_t.resize_with(params.dirs.len(), Vec::new);
        cache
            .packed_fwd
            .resize_with(params.dirs.len(), PackedMatrix::default);
        for ((wt, pk), p) in cache
            .w_hh_t
            .iter_mut()
            .zip(&mut cache.packed_fwd)
            .zip(&params.dirs)
        {
            if !prepare {
                break;
            }
            if packed {
                let w = T::as_f32(&p.w_hh).expect("packed only for f32");
                pk.pack(MatRef::new(w, gh, h).t());
                continue;
            }
            let wt = ensure(wt, h * gh);
            for (r, row) in p.w_hh.chunks_exact(h).enumerate() {
                row.iter()
                    .enumerate()
                    .for_each(|(c, v)| wt[c * gh + r] = *v);
            }
        }
        let w_hh_t = (prepare && !packed).then_some(&cache.w_hh_t[..]);
        let packed_fwd = match &shared {
            Some(p) => Some(&p.0[..]),
            None => packed.then_some(&cache.packed_fwd[..]),
        };
        cache
            .shards
            .par_iter_mut()
            .zip(shard_ranges(batch, n_shards).collect::<Vec<_>>())
            .for_each(|(shard, (b0, bs))| {
                shard.b0 = b0;
                shard.bs = bs;
                shard.load_input(&cfg, input);
                shard.forward(params, w_hh_t, packed_fwd, steps, par);
            });

        let dh = cfg.output_size();
        ensure(&mut cache.output, steps * batch * dh);
        ensure(&mut cache.h_n, ld * batch * h);
        let lstm = cfg.cell == CellKind::Lstm;
        ensure(&mut cache.c_n, if lstm { ld * batch * h } else { 0 });
        for s in &cache.shards {
            scatter(
                &mut cache.output,
                &s.outs[cfg.num_layers - 1],
                steps,
                batch,
                dh,
                s.b0,
                s.bs,
            );
            scatter(&mut cache.h_n, &s.state_h, ld, batch, h, s.b0, s.bs);
            if lstm {
                scatter(&mut cache.c_n, &s.state_c, ld, batch, h, s.b0, s.bs);
            }
        }
        Ok(())
    }

    /// Backward through the last forward pass held by `cache`, once: it consumes the pass (the
    /// gate activations are overwritten by their gradients), and a second call is
    /// [`RnnError::NoForward`].
    ///
    /// Parameter gradients are *added* to `grads`; input gradients are written to `cache.dx()`,
    /// `cache.dh0()` and `cache.dc0()`.
    pub fn backward(
        &self,
        cache: &mut RnnCache<T>,
        grad: &RnnGradOut<'_, T>,
        grads: &mut RnnParams<T>,
    ) -> Result<(), RnnError> {
        let cfg = *self.config();
        if cache.config != Some(cfg) || grads.config != cfg || cache.consumed {
            return Err(RnnError::NoForward);
        }
        let (steps, batch) = (cache.steps, cache.batch);
        let (h, ld, dh) = (
            cfg.hidden_size,
            cfg.num_layers * cfg.directions(),
            cfg.output_size(),
        );
        if let Some(d) = grad.d_output {
            check("d_output", d.len(), steps * batch * dh, || {
                format!("[T={steps}, B={batch}, D·H={dh}]")
            })?;
        }
        let state_shape = || format!("[L·D={ld}, B={batch}, H={h}]");
        if let Some(d) = grad.d_h_n {
            check("d_h_n", d.len(), ld * batch * h, state_shape)?;
        }
        if let Some(d) = grad.d_c_n {
            if cfg.cell == CellKind::Gru {
                return Err(RnnError::NoCellState { what: "d_c_n" });
            }
            check("d_c_n", d.len(), ld * batch * h, state_shape)?;
        }
        let threads = rayon::current_num_threads().max(1);
        let n_shards = cache.shards.len();
        let par = if n_shards < threads {
            Par::Threads(threads / n_shards)
        } else {
            Par::Seq
        };
        let params = &self.params;
        cache.consumed = true;
        cache.shards.par_iter_mut().for_each(|shard| {
            shard.load_grad_out(&cfg, grad, steps, batch);
            shard.backward(params, steps, grad.d_output, batch, par);
        });

        let lstm = cfg.cell == CellKind::Lstm;
        ensure(&mut cache.dx, steps * batch * cfg.input_size);
        ensure(&mut cache.dh0, ld * batch * h);
        ensure(&mut cache.dc0, if lstm { ld * batch * h } else { 0 });
        for s in &cache.shards {
            scatter(
                &mut cache.dx,
                &s.d_cur,
                steps,
                batch,
                cfg.input_size,
                s.b0,
                s.bs,
            );
            scatter(&mut cache.dh0, &s.d_state_h, ld, batch, h, s.b0, s.bs);
            if lstm {
                scatter(&mut cache.dc0, &s.d_state_c, ld, batch, h, s.b0, s.bs);
            }
            grads.add_assign(s.grads.as_ref().expect("backward ran on every shard"));
        }
        Ok(())
    }
}

/// One layer-direction of a shard's forward pass: what it reads.
struct DirJob<'a, T> {
    p: &'a crate::params::DirParams<T>,
    /// `W_hhᵀ` (`[H, G·H]`) when the caller transposed it, and the packed `W_hhᵀ`.
    w_hh_t: Option<&'a [T]>,
    packed: Option<&'a PackedMatrix>,
    /// `[T, Bs, I]` input of the layer.
    inp: &'a [T],
    in_size: usize,
    steps: usize,
    bs: usize,
    hidden: usize,
    lstm: bool,
    /// Right to left.
    reverse: bool,
    lengths: &'a [usize],
}

impl<T: Float> DirJob<'_, T> {
    /// Runs the direction: gates, states and `tanh(c)` into `dc`; `h`/`c` (`[Bs, H]`, initial
    /// state in, final out); outputs into `out` at row stride `out_stride`, offset `out_off`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        dc: &mut DirCache<T>,
        hs: &mut [T],
        cs: &mut [T],
        out: &mut [T],
        out_stride: usize,
        out_off: usize,
        par: Par,
    ) {
        let (h, bs, p) = (self.hidden, self.bs, self.p);
        let gh = p.b_ih.len();
        let (steps, rows) = (self.steps, self.steps * self.bs);
        // Input projections of every step at once: gates = x · W_ihᵀ + biases.
        let gates = ensure(&mut dc.gates, rows * gh);
        gemm(
            MatMut::new(gates, rows, gh),
            MatRef::new(self.inp, rows, self.in_size),
            MatRef::new(&p.w_ih, gh, self.in_size).t(),
            false,
            par,
        );
        // LSTM: both biases enter the same pre-activation, so the step kernel adds their sum;
        // the GRU's `b_ih` is added here.
        let bias = ensure(&mut dc.bias, gh);
        bias.copy_from_slice(&p.b_ih);
        if self.lstm {
            bias.iter_mut().zip(&p.b_hh).for_each(|(b, c)| *b += *c);
        } else {
            for row in gates.chunks_exact_mut(gh) {
                row.iter_mut().zip(bias.iter()).for_each(|(g, b)| *g += *b);
            }
        }
        let bias: &[T] = bias;
        let h_prev = ensure(&mut dc.h_prev, rows * h);
        let aux = ensure(&mut dc.aux, rows * h);
        let tanh_c = ensure(&mut dc.tanh_c, if self.lstm { rows * h } else { 0 });
        let gh_buf = ensure(&mut dc.gh, if self.lstm { 0 } else { bs * gh });
        let w_hh = match self.w_hh_t {
            Some(w) => MatRef::new(w, h, gh),
            None => MatRef::new(&p.w_hh, gh, h).t(),
        };
        for step in 0..steps {
            let t = if self.reverse { steps - 1 - step } else { step };
            let g_t = &mut gates[t * bs * gh..][..bs * gh];
            h_prev[t * bs * h..][..bs * h].copy_from_slice(hs);
            let out_t = &mut out[t * bs * out_stride..][..bs * out_stride];
            if self.lstm {
                aux[t * bs * h..][..bs * h].copy_from_slice(cs);
                step_product(g_t, hs, bs, self.packed, w_hh, par);
                lstm_step_forward(LstmStep {
                    hidden: h,
                    gates: g_t,
                    bias,
                    c: cs,
                    h: hs,
                    tanh_c: &mut tanh_c[t * bs * h..][..bs * h],
                    out: out_t,
                    out_stride,
                    out_off,
                    t,
                    lengths: self.lengths,
                });
            } else {
                for row in gh_buf.chunks_exact_mut(gh) {
                    row.copy_from_slice(&p.b_hh);
                }
                step_product(gh_buf, hs, bs, self.packed, w_hh, par);
                gru_step_forward(GruStep {
                    hidden: h,
                    gates: g_t,
                    gh: gh_buf,
                    q: &mut aux[t * bs * h..][..bs * h],
                    h: hs,
                    out: out_t,
                    out_stride,
                    out_off,
                    t,
                    lengths: self.lengths,
                });
            }
        }
    }
}

impl<T: Float> Shard<T> {
    fn load_input(&mut self, cfg: &RnnConfig, input: &RnnInput<'_, T>) {
        let (b0, bs, batch, h) = (self.b0, self.bs, input.batch, cfg.hidden_size);
        let ld = cfg.num_layers * cfg.directions();
        gather(
            &mut self.x,
            input.x,
            input.steps,
            batch,
            cfg.input_size,
            b0,
            bs,
        );
        self.lengths.clear();
        match input.lengths {
            Some(l) => self.lengths.extend_from_slice(&l[b0..b0 + bs]),
            None => self.lengths.resize(bs, input.steps),
        }
        match input.h0 {
            Some(h0) => gather(&mut self.state_h, h0, ld, batch, h, b0, bs),
            None => drop(zeroed(&mut self.state_h, ld * bs * h)),
        }
        let n_c = if cfg.cell == CellKind::Lstm {
            ld * bs * h
        } else {
            0
        };
        match input.c0 {
            Some(c0) => gather(&mut self.state_c, c0, ld, batch, h, b0, bs),
            None => drop(zeroed(&mut self.state_c, n_c)),
        }
    }

    fn load_grad_out(
        &mut self,
        cfg: &RnnConfig,
        grad: &RnnGradOut<'_, T>,
        steps: usize,
        batch: usize,
    ) {
        let (b0, bs, h) = (self.b0, self.bs, cfg.hidden_size);
        let ld = cfg.num_layers * cfg.directions();
        match grad.d_output {
            // Backward reads the caller's rows in place.
            Some(_) => {}
            None => drop(zeroed(&mut self.d_cur, steps * bs * cfg.output_size())),
        }
        match grad.d_h_n {
            Some(d) => gather(&mut self.d_state_h, d, ld, batch, h, b0, bs),
            None => drop(zeroed(&mut self.d_state_h, ld * bs * h)),
        }
        let n_c = if cfg.cell == CellKind::Lstm {
            ld * bs * h
        } else {
            0
        };
        match grad.d_c_n {
            Some(d) => gather(&mut self.d_state_c, d, ld, batch, h, b0, bs),
            None => drop(zeroed(&mut self.d_state_c, n_c)),
        }
    }

    fn forward(
        &mut self,
        params: &RnnParams<T>,
        w_hh_t: Option<&[Vec<T>]>,
        packed: Option<&[PackedMatrix]>,
        steps: usize,
        par: Par,
    ) {
        let cfg = params.config;
        let (h, nd, bs) = (cfg.hidden_size, cfg.directions(), self.bs);
        let dh = cfg.output_size();
        let lstm = cfg.cell == CellKind::Lstm;
        let rows = steps * bs;
        self.dirs
            .resize_with(cfg.num_layers * nd, DirCache::default);
        self.outs.resize_with(cfg.num_layers, Vec::new);
        // Spare threads (a batch smaller than the pool) run the two directions side by side,
        // each on its own core with its `W_hh` in that core's cache, instead of splitting every
        // step's small product.
        let side_by_side = match par {
            Par::Threads(n) if nd == 2 && n >= 2 => Some(if n >= 4 {
                Par::Threads(n / 2)
            } else {
                Par::Seq
            }),
            _ => None,
        };
        for l in 0..cfg.num_layers {
            let (below, here) = self.outs.split_at_mut(l);
            let inp: &[T] = if l == 0 { &self.x } else { &below[l - 1] };
            let out = ensure(&mut here[0], rows * dh);
            let job = |d: usize| DirJob {
                p: &params.dirs[l * nd + d],
                w_hh_t: w_hh_t.map(|w| &w[l * nd + d][..]),
                packed: packed.map(|p| &p[l * nd + d]),
                inp,
                in_size: cfg.layer_input_size(l),
                steps,
                bs,
                hidden: h,
                lstm,
                reverse: d == 1,
                lengths: &self.lengths,
            };
            let dirs = &mut self.dirs[l * nd..(l + 1) * nd];
            let hs = &mut self.state_h[l * nd * bs * h..(l + 1) * nd * bs * h];
            let cs: &mut [T] = if lstm {
                &mut self.state_c[l * nd * bs * h..(l + 1) * nd * bs * h]
            } else {
                &mut []
            };
            match side_by_side {
                Some(inner) => {
                    let (dc0, dc1) = dirs.split_at_mut(1);
                    let (h0, h1) = hs.split_at_mut(bs * h);
                    let (c0, c1) = cs.split_at_mut(if lstm { bs * h } else { 0 });
                    let (j0, j1) = (job(0), job(1));
                    // Each direction writes its own `[T, Bs, H]`, interleaved below.
                    rayon::join(
                        || {
                            let dc = &mut dc0[0];
                            let mut o = std::mem::take(&mut dc.out);
                            j0.run(dc, h0, c0, ensure(&mut o, rows * h), h, 0, inner);
                            dc.out = o;
                        },
                        || {
                            let dc = &mut dc1[0];
                            let mut o = std::mem::take(&mut dc.out);
                            j1.run(dc, h1, c1, ensure(&mut o, rows * h), h, 0, inner);
                            dc.out = o;
                        },
                    );
                    for (d, dc) in dirs.iter().enumerate() {
                        for (row, src) in out.chunks_exact_mut(dh).zip(dc.out.chunks_exact(h)) {
                            row[d * h..(d + 1) * h].copy_from_slice(src);
                        }
                    }
                }
                None => {
                    for (d, dc) in dirs.iter_mut().enumerate() {
                        let hs = &mut hs[d * bs * h..(d + 1) * bs * h];
                        let cs: &mut [T] = if lstm {
                            &mut cs[d * bs * h..(d + 1) * bs * h]
                        } else {
                            &mut []
                        };
                        job(d).run(dc, hs, cs, out, dh, d * h, par);
                    }
                }
            }
        }
    }

    /// `d_output`: the caller's `[T, B, D·H]` gradient of the top layer's output, read in place
    /// (`None`: zero, loaded into `d_cur`); `batch` is its `B`.
    fn backward(
        &mut self,
        params: &RnnParams<T>,
        steps: usize,
        d_output: Option<&[T]>,
        batch: usize,
        par: Par,
    ) {
        let cfg = params.config;
        let (h, nd, bs) = (cfg.hidden_size, cfg.directions(), self.bs);
        let (gh, dh) = (cfg.cell.gates() * h, cfg.output_size());
        let lstm = cfg.cell == CellKind::Lstm;
        let rows = steps * bs;
        let grads = self.grads.get_or_insert_with(|| RnnParams::zeros(cfg));
        if grads.config != cfg {
            *grads = RnnParams::zeros(cfg);
        }
        grads.fill_zero();
        for l in (0..cfg.num_layers).rev() {
            let in_size = cfg.layer_input_size(l);
            let inp: &[T] = if l == 0 { &self.x } else { &self.outs[l - 1] };
            let d_below = zeroed(&mut self.d_below, rows * in_size);
            // Rows of step `t` start at `t · stride` (rows) in `d_src`.
            let (d_src, stride): (&[T], usize) = match d_output {
                Some(full) if l + 1 == cfg.num_layers => (&full[self.b0 * dh..], batch),
                _ => (&self.d_cur, bs),
            };
            for d in 0..nd {
                let idx = l * nd + d;
                let p = &params.dirs[idx];
                let g = &mut grads.dirs[idx];
                let dc = &mut self.dirs[idx];
                // δa (GRU: δa_x) overwrites the gate activations in place (see `LstmStepBack`,
                // `GruStepBack`).
                let da_x = &mut dc.gates[..rows * gh];
                // GRU: `δa_h` equals `δa_x` but in its `n` part (times `r`); only that part is kept
                // for the weight gradient, `[T, Bs, H]`, the whole row of a step in `da_h_t`.
                let da_hn = ensure(&mut self.da_h, if lstm { 0 } else { rows * h });
                let dah_t = ensure(&mut self.da_h_step, if lstm { 0 } else { bs * gh });
                let dhs = &mut self.d_state_h[idx * bs * h..][..bs * h];
                let w_hh = MatRef::new(&p.w_hh, gh, h);
                // LSTM: `δb` (of either bias: they enter the same pre-activation) is summed by the
                // step kernel.
                let db = zeroed(&mut self.bias, gh);
                for step in 0..steps {
                    let t = if d == 1 { step } else { steps - 1 - step };
                    let d_out = &d_src[t * stride * dh..][..bs * dh];
                    let dax_t = &mut da_x[t * bs * gh..][..bs * gh];
                    if lstm {
                        let dcs = &mut self.d_state_c[idx * bs * h..][..bs * h];
                        lstm_step_backward(LstmStepBack {
                            hidden: h,
                            gates: dax_t,
                            c_prev: &dc.aux[t * bs * h..][..bs * h],
                            tanh_c: &dc.tanh_c[t * bs * h..][..bs * h],
                            d_out,
                            out_stride: dh,
                            out_off: d * h,
                            dh: dhs,
                            dc: dcs,
                            db,
                            t,
                            lengths: &self.lengths,
                        });
                        step_product(dhs, dax_t, bs, None, w_hh, par);
                    } else {
                        gru_step_backward(GruStepBack {
                            hidden: h,
                            gates: dax_t,
                            q: &dc.aux[t * bs * h..][..bs * h],
                            h_prev: &dc.h_prev[t * bs * h..][..bs * h],
                            d_out,
                            out_stride: dh,
                            out_off: d * h,
                            dh: dhs,
                            da_h: dah_t,
                            t,
                            lengths: &self.lengths,
                        });
                        for (dst, row) in da_hn[t * bs * h..][..bs * h]
                            .chunks_exact_mut(h)
                            .zip(dah_t.chunks_exact(gh))
                        {
                            dst.copy_from_slice(&row[2 * h..]);
                        }
                        step_product(dhs, dah_t, bs, None, w_hh, par);
                    }
                }
                // Weight gradients of all steps at once.
                let da_x: &[T] = da_x;
                let (dw_t, h_prev) = (&mut self.dw_t, &dc.h_prev[..]);
                add_weight_grad(&mut g.w_ih, MatRef::new(da_x, rows, gh), inp, dw_t, par);
                if lstm {
                    add_weight_grad(&mut g.w_hh, MatRef::new(da_x, rows, gh), h_prev, dw_t, par);
                    g.b_ih.iter_mut().zip(db.iter()).for_each(|(a, b)| *a += *b);
                    g.b_hh.iter_mut().zip(db.iter()).for_each(|(a, b)| *a += *b);
                } else {
                    // W_hh's r, z rows from δa_x's r, z columns; its n rows from δa_h's n part.
                    let (w_rz, w_n) = g.w_hh.split_at_mut(2 * h * h);
                    let rz = MatRef::strided(da_x, rows, 2 * h, gh, 1);
                    add_weight_grad(w_rz, rz, h_prev, dw_t, par);
                    add_weight_grad(w_n, MatRef::new(da_hn, rows, h), h_prev, dw_t, par);
                    // δb = column sums of δa.
                    add_column_sums(&mut g.b_ih, da_x, gh);
                    add_column_sums(&mut g.b_hh[..2 * h], da_x, gh);
                    add_column_sums(&mut g.b_hh[2 * h..], da_hn, h);
                }
                gemm(
                    MatMut::new(d_below, rows, in_size),
                    MatRef::new(da_x, rows, gh),
                    MatRef::new(&p.w_ih, gh, in_size),
                    true,
                    par,
                );
            }
            std::mem::swap(&mut self.d_cur, &mut self.d_below);
        }
    }
}
