//! The GRU cell: equations, and the fused per-time-step kernels of the fast path.
//!
//! PyTorch's `nn.GRU` (Cho et al. 2014, in the variant of the cuDNN/PyTorch implementation: the reset
//! gate multiplies the hidden matmul *after* its bias, so `b_in` and `b_hn` stay separate):
//!
//! ```text
//! r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)             reset gate
//! z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)             update gate
//! n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  candidate
//! h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}
//! ```
//!
//! `weight_ih = [W_ir; W_iz; W_in]` is `[3H, I]`, `weight_hh` is `[3H, H]`, biases `[3H]`.
//!
//! Backward, with `δh` the gradient reaching `h_t`, `q = W_hn h_{t-1} + b_hn`, and `δa_x` / `δa_h` the
//! gradients of the input and hidden pre-activations (they differ only in the `n` block):
//!
//! ```text
//! δa_n = δh ⊙ (1 − z) ⊙ (1 − n²)
//! δa_z = δh ⊙ (h_{t-1} − n) ⊙ z(1 − z)
//! δa_r = δa_n ⊙ q ⊙ r(1 − r)
//! δa_x = [δa_r; δa_z; δa_n]      δa_h = [δa_r; δa_z; δa_n ⊙ r]
//! δh_{t-1} = δh ⊙ z + W_hhᵀ δa_h        δx_t = W_ihᵀ δa_x
//! δW_ih += δa_x x_tᵀ,  δb_ih += δa_x,  δW_hh += δa_h h_{t-1}ᵀ,  δb_hh += δa_h
//! ```
//!
//! Inactive rows (past a sequence's length) pass their state through, as in [`crate::lstm`].

use abridge_tensor::simd_fn_wide as simd_fn;

/// Buffers of one GRU time step over a block of `B` rows.
pub struct GruStep<'a, T> {
    pub hidden: usize,
    /// `[B, 3H]`: `W_ih x + b_ih` in, activations `(r, z, n)` out.
    pub gates: &'a mut [T],
    /// `[B, 3H]`: `W_hh h_{t-1} + b_hh`.
    pub gh: &'a [T],
    /// `[B, H]`: `q = W_hn h_{t-1} + b_hn` out (kept for backward).
    pub q: &'a mut [T],
    /// `[B, H]`: `h_{t-1}` in, `h_t` out.
    pub h: &'a mut [T],
    /// Output rows of stride `out_stride`, this direction's `H` columns at `out_off`.
    pub out: &'a mut [T],
    pub out_stride: usize,
    pub out_off: usize,
    pub t: usize,
    pub lengths: &'a [usize],
}

simd_fn! {
    /// Forward: gate activations, new hidden state, output row (zero when inactive).
    pub fn gru_step_forward<T>(s: GruStep<'_, T>) {
        let hs = s.hidden;
        for (b, &len) in s.lengths.iter().enumerate() {
            let out = &mut s.out[b * s.out_stride + s.out_off..][..hs];
            if s.t >= len {
                out.iter_mut().for_each(|v| *v = T::ZERO);
                continue;
            }
            let g = &mut s.gates[b * 3 * hs..][..3 * hs];
            let (gr, rest) = g.split_at_mut(hs);
            let (gz, gn) = rest.split_at_mut(hs);
            let gn = &mut gn[..hs];
            let gh = &s.gh[b * 3 * hs..][..3 * hs];
            let (hr, hz, hn) = (&gh[..hs], &gh[hs..2 * hs], &gh[2 * hs..3 * hs]);
            let q = &mut s.q[b * hs..][..hs];
            let h = &mut s.h[b * hs..][..hs];
            forward_row(gr, gz, gn, hr, hz, hn, q, h, out);
        }
    }
}

/// One row of [`gru_step_forward`] (separate slice arguments, not arrays of them: only
/// then does the compiler know they do not alias, which is what lets the loop vectorise).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_row<T: abridge_tensor::Float>(
    gr: &mut [T],
    gz: &mut [T],
    gn: &mut [T],
    hr: &[T],
    hz: &[T],
    hn: &[T],
    q: &mut [T],
    h: &mut [T],
    out: &mut [T],
) {
    let hs = gr.len();
    let (gz, gn, hr, hz, hn, q, h, out) = (
        &mut gz[..hs],
        &mut gn[..hs],
        &hr[..hs],
        &hz[..hs],
        &hn[..hs],
        &mut q[..hs],
        &mut h[..hs],
        &mut out[..hs],
    );
    for j in 0..hs {
        let r = (gr[j] + hr[j]).sigmoid();
        let z = (gz[j] + hz[j]).sigmoid();
        let n = (gn[j] + r * hn[j]).tanh();
        let hnew = (T::ONE - z) * n + z * h[j];
        gr[j] = r;
        gz[j] = z;
        gn[j] = n;
        q[j] = hn[j];
        h[j] = hnew;
        out[j] = hnew;
    }
}

/// Buffers of one GRU backward step over a block of `B` rows.
pub struct GruStepBack<'a, T> {
    pub hidden: usize,
    /// `[B, 3H]`: activations `(r, z, n)` of this step in, `δa_x` out (zero for inactive rows) —
    /// in place, as the LSTM's: no later step reads them, and training holds `[T, B, 3H]` fewer.
    pub gates: &'a mut [T],
    /// `[B, H]` `q` and `h_{t-1}` of this step.
    pub q: &'a [T],
    pub h_prev: &'a [T],
    /// Output gradient rows (stride and offset as in forward).
    pub d_out: &'a [T],
    pub out_stride: usize,
    pub out_off: usize,
    /// `[B, H]`: `δh_t` in; active rows become `δh ⊙ z`, ready for `δh_{t-1} += δa_h W_hh`.
    pub dh: &'a mut [T],
    /// `[B, 3H]` `δa_h` out (zero for inactive rows): `δa_x` with its `n` part times `r`.
    pub da_h: &'a mut [T],
    pub t: usize,
    pub lengths: &'a [usize],
}

simd_fn! {
    /// Backward through the element-wise part of one step (the matmuls are done by the caller).
    pub fn gru_step_backward<T>(s: GruStepBack<'_, T>) {
        let hs = s.hidden;
        for (b, &len) in s.lengths.iter().enumerate() {
            let dax = &mut s.gates[b * 3 * hs..][..3 * hs];
            let dah = &mut s.da_h[b * 3 * hs..][..3 * hs];
            if s.t >= len {
                dax.iter_mut().for_each(|v| *v = T::ZERO);
                dah.iter_mut().for_each(|v| *v = T::ZERO);
                continue;
            }
            let (dxr, rest) = dax.split_at_mut(hs);
            let (dxz, dxn) = rest.split_at_mut(hs);
            let dxn = &mut dxn[..hs];
            let (dhr, rest) = dah.split_at_mut(hs);
            let (dhz, dhn) = rest.split_at_mut(hs);
            let dhn = &mut dhn[..hs];
            let q = &s.q[b * hs..][..hs];
            let hp = &s.h_prev[b * hs..][..hs];
            let dout = &s.d_out[b * s.out_stride + s.out_off..][..hs];
            let dh = &mut s.dh[b * hs..][..hs];
            backward_row(q, hp, dout, dh, dxr, dxz, dxn, dhr, dhz, dhn);
        }
    }
}

/// One row of [`gru_step_backward`] (separate slice arguments, not arrays of them: only
/// then does the compiler know they do not alias, which is what lets the loop vectorise).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_row<T: abridge_tensor::Float>(
    q: &[T],
    hp: &[T],
    dout: &[T],
    dh: &mut [T],
    dxr: &mut [T],
    dxz: &mut [T],
    dxn: &mut [T],
    dhr: &mut [T],
    dhz: &mut [T],
    dhn: &mut [T],
) {
    let hs = q.len();
    let (hp, dout, dh) = (&hp[..hs], &dout[..hs], &mut dh[..hs]);
    let (dxr, dxz, dxn, dhr, dhz, dhn) = (
        &mut dxr[..hs],
        &mut dxz[..hs],
        &mut dxn[..hs],
        &mut dhr[..hs],
        &mut dhz[..hs],
        &mut dhn[..hs],
    );
    {
        {
            for j in 0..hs {
                let dht = dh[j] + dout[j];
                // `dx*` hold the activations (r, z, n) until overwritten here.
                let (r, z, n) = (dxr[j], dxz[j], dxn[j]);
                let dan = dht * (T::ONE - z) * (T::ONE - n * n);
                let daz = dht * (hp[j] - n) * z * (T::ONE - z);
                let dar = dan * q[j] * r * (T::ONE - r);
                dxr[j] = dar;
                dxz[j] = daz;
                dxn[j] = dan;
                dhr[j] = dar;
                dhz[j] = daz;
                dhn[j] = dan * r;
                dh[j] = dht * z;
            }
        }
    }
}
