//! The LSTM cell: equations, and the fused per-time-step kernels of the fast path.
//!
//! PyTorch's `nn.LSTM` (Hochreiter & Schmidhuber 1997; forget gate: Gers, Schmidhuber & Cummins 2000),
//! for input `x_t [I]`, previous hidden state `h_{t-1} [H]` (short-term memory) and cell state
//! `c_{t-1} [H]` (long-term memory):
//!
//! ```text
//! i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate: how much new content to write
//! f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate: how much old memory to keep
//! g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   candidate content
//! o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate: how much memory to expose
//! c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
//! h_t = o_t ⊙ tanh(c_t)
//! ```
//!
//! `weight_ih = [W_ii; W_if; W_ig; W_io]` is `[4H, I]`, `weight_hh` is `[4H, H]`, biases `[4H]`.
//!
//! Backward, with `δh` and `δc` the gradients reaching `h_t` and `c_t` (from the output, from step
//! `t+1`, and from the final state), and `a_*` the pre-activations:
//!
//! ```text
//! δc_t    = δc + δh ⊙ o_t ⊙ (1 − tanh²(c_t))
//! δa_i    = δc_t ⊙ g_t ⊙ i_t(1 − i_t)        δa_f = δc_t ⊙ c_{t-1} ⊙ f_t(1 − f_t)
//! δa_g    = δc_t ⊙ i_t ⊙ (1 − g_t²)          δa_o = δh ⊙ tanh(c_t) ⊙ o_t(1 − o_t)
//! δc_{t-1} = δc_t ⊙ f_t                       δh_{t-1} = W_hhᵀ δa        δx_t = W_ihᵀ δa
//! δW_ih += δa x_tᵀ,  δW_hh += δa h_{t-1}ᵀ,  δb_ih += δa,  δb_hh += δa
//! ```
//!
//! Rows of the batch whose sequence has ended (or, in the reverse direction, not yet started) are
//! *inactive* at a step: their state passes through unchanged and their output is zero, as with
//! PyTorch's packed sequences.

use abridge_tensor::simd_fn_wide as simd_fn;

/// Buffers of one LSTM time step over a block of `B` rows.
pub struct LstmStep<'a, T> {
    /// `H`
    pub hidden: usize,
    /// `[B, 4H]`: pre-activations without the bias in, gate activations `(i, f, g, o)` out.
    pub gates: &'a mut [T],
    /// `[4H]`: `b_ih + b_hh`, added here rather than in a pass of its own over all steps.
    pub bias: &'a [T],
    /// `[B, H]`: `c_{t-1}` in, `c_t` out (forward); backward reads `c_{t-1}` from here.
    pub c: &'a mut [T],
    /// `[B, H]`: `h_t` out (forward).
    pub h: &'a mut [T],
    /// `[B, H]`: `tanh(c_t)`, written by forward, read by backward.
    pub tanh_c: &'a mut [T],
    /// Output rows, `B` rows of stride `out_stride`, this direction's `H` columns at `out_off`.
    pub out: &'a mut [T],
    pub out_stride: usize,
    pub out_off: usize,
    /// Step index and per-row lengths: row `b` is active when `t < lengths[b]`.
    pub t: usize,
    pub lengths: &'a [usize],
}

simd_fn! {
    /// Forward: gate activations, new cell and hidden state, output row (zero when inactive).
    pub fn lstm_step_forward<T>(s: LstmStep<'_, T>) {
        let hs = s.hidden;
        for (b, &len) in s.lengths.iter().enumerate() {
            let out = &mut s.out[b * s.out_stride + s.out_off..][..hs];
            if s.t >= len {
                out.iter_mut().for_each(|v| *v = T::ZERO);
                continue;
            }
            let g = &mut s.gates[b * 4 * hs..][..4 * hs];
            let (gi, rest) = g.split_at_mut(hs);
            let (gf, rest) = rest.split_at_mut(hs);
            let (gg, go) = rest.split_at_mut(hs);
            let go = &mut go[..hs];
            let c = &mut s.c[b * hs..][..hs];
            let h = &mut s.h[b * hs..][..hs];
            let tc = &mut s.tanh_c[b * hs..][..hs];
            let bias = &s.bias[..4 * hs];
            let (bi, bf, bg, bo) = (&bias[..hs], &bias[hs..2 * hs], &bias[2 * hs..3 * hs], &bias[3 * hs..]);
            forward_row(gi, gf, gg, go, bi, bf, bg, bo, c, h, tc, out);
        }
    }
}

/// One row of [`lstm_step_forward`]. The slices are separate arguments so that the compiler knows
/// they do not alias, which is what lets the loop vectorise.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_row<T: abridge_tensor::Float>(
    gi: &mut [T],
    gf: &mut [T],
    gg: &mut [T],
    go: &mut [T],
    bi: &[T],
    bf: &[T],
    bg: &[T],
    bo: &[T],
    c: &mut [T],
    h: &mut [T],
    tc: &mut [T],
    out: &mut [T],
) {
    let hs = gi.len();
    let (gf, gg, go, c, h, tc, out) = (
        &mut gf[..hs],
        &mut gg[..hs],
        &mut go[..hs],
        &mut c[..hs],
        &mut h[..hs],
        &mut tc[..hs],
        &mut out[..hs],
    );
    let (bi, bf, bg, bo) = (&bi[..hs], &bf[..hs], &bg[..hs], &bo[..hs]);
    for j in 0..hs {
        let i = (gi[j] + bi[j]).sigmoid();
        let f = (gf[j] + bf[j]).sigmoid();
        let gv = (gg[j] + bg[j]).tanh();
        let o = (go[j] + bo[j]).sigmoid();
        let cn = f * c[j] + i * gv;
        let t = cn.tanh();
        let hn = o * t;
        gi[j] = i;
        gf[j] = f;
        gg[j] = gv;
        go[j] = o;
        c[j] = cn;
        tc[j] = t;
        h[j] = hn;
        out[j] = hn;
    }
}

/// Buffers of one LSTM backward step over a block of `B` rows.
pub struct LstmStepBack<'a, T> {
    pub hidden: usize,
    /// `[B, 4H]`: gate activations of this step in, `δa` out (zero for inactive rows) — in place,
    /// since no later step reads them: `[T, B, 4H]` of memory fewer in training.
    pub gates: &'a mut [T],
    /// `[B, H]` `c_{t-1}` and `tanh(c_t)` of this step.
    pub c_prev: &'a [T],
    pub tanh_c: &'a [T],
    /// Output gradient rows (stride and offset as in forward).
    pub d_out: &'a [T],
    pub out_stride: usize,
    pub out_off: usize,
    /// `[B, H]`: `δh_t` carried in; active rows are zeroed, ready for `δh_{t-1} += δa W_hh`.
    pub dh: &'a mut [T],
    /// `[B, H]`: `δc_t` carried in, `δc_{t-1}` out (inactive rows pass through).
    pub dc: &'a mut [T],
    /// `[4H]`: `δb += Σ_rows δa` (the gradient of either bias), summed here while `δa` is hot.
    pub db: &'a mut [T],
    pub t: usize,
    pub lengths: &'a [usize],
}

simd_fn! {
    /// Backward through the element-wise part of one step (the matmuls are done by the caller).
    pub fn lstm_step_backward<T>(s: LstmStepBack<'_, T>) {
        let hs = s.hidden;
        for (b, &len) in s.lengths.iter().enumerate() {
            let g = &mut s.gates[b * 4 * hs..][..4 * hs];
            if s.t >= len {
                g.iter_mut().for_each(|v| *v = T::ZERO);
                continue;
            }
            let (gi, rest) = g.split_at_mut(hs);
            let (gf, rest) = rest.split_at_mut(hs);
            let (gg, go) = rest.split_at_mut(hs);
            let go = &mut go[..hs];
            let cp = &s.c_prev[b * hs..][..hs];
            let tc = &s.tanh_c[b * hs..][..hs];
            let dh = &mut s.dh[b * hs..][..hs];
            let dc = &mut s.dc[b * hs..][..hs];
            let dout = &s.d_out[b * s.out_stride + s.out_off..][..hs];
            backward_row(gi, gf, gg, go, cp, tc, dout, dh, dc);
            s.db.iter_mut().zip(g.iter()).for_each(|(d, v)| *d += *v);
        }
    }
}

/// One row of [`lstm_step_backward`], gate activations replaced by `δa` (separate slice arguments:
/// no aliasing, so it vectorises).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_row<T: abridge_tensor::Float>(
    gi: &mut [T],
    gf: &mut [T],
    gg: &mut [T],
    go: &mut [T],
    cp: &[T],
    tc: &[T],
    dout: &[T],
    dh: &mut [T],
    dc: &mut [T],
) {
    let hs = gi.len();
    let (gf, gg, go, cp, tc, dout, dh, dc) = (
        &mut gf[..hs],
        &mut gg[..hs],
        &mut go[..hs],
        &cp[..hs],
        &tc[..hs],
        &dout[..hs],
        &mut dh[..hs],
        &mut dc[..hs],
    );
    for j in 0..hs {
        let dht = dh[j] + dout[j];
        let (i, f, gv, o, t) = (gi[j], gf[j], gg[j], go[j], tc[j]);
        let dct = dc[j] + dht * o * (T::ONE - t * t);
        gi[j] = dct * gv * i * (T::ONE - i);
        gf[j] = dct * cp[j] * f * (T::ONE - f);
        gg[j] = dct * i * (T::ONE - gv * gv);
        go[j] = dht * t * o * (T::ONE - o);
        dc[j] = dct * f;
        dh[j] = T::ZERO;
    }
}
