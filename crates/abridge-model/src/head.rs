//! The vocabulary head of a teacher-forced pass, a block of rows at a time.
//!
//! For each of the `T·B` rows `r = t·B + b` (step `t`, example `b`, target `y_r`, `N` target tokens):
//!
//! ```text
//! P_vocab,r = softmax(W_v o_r + b_v)                                        [V]
//! P(y_r)    = p_gen,r P_vocab,r(y_r) + (1 − p_gen,r) copy_r   (pointer; else P_vocab,r(y_r))
//! δP(y_r)   = −1 / (N P(y_r))   (0 on padding, or where P(y_r) is at the floor)
//! δlogit_rj = δP(y_r) p_gen,r P_vocab,r(y_r) ([j = y_r] − P_vocab,rj)        [V]
//! δW_v += δlogitsᵀ o,   δb_v += Σ_r δlogit_r,   δo = δlogits W_v
//! ```
//!
//! Only `P_vocab,r(y_r)` outlives its block: the whole `[T·B, V]` distribution would be the
//! largest buffer of a training step (77 MB at the benchmark's shapes), a block is
//! [`HEAD_BLOCK_BYTES`]. Training runs the head's forward and backward block by block
//! ([`Params::forward_backward`]); a plain [`Params::forward`] keeps nothing of the head but
//! `P_vocab(y)`, so a later [`Params::backward`] computes the distributions again.

use abridge_tensor::Float;
use rayon::prelude::*;

use crate::seq2seq::{Forward, Inputs, Step, PROB_FLOOR};
use crate::{ModelConfig, Params};

/// Size of the `[rows, V]` block of logits the head works on at a time.
pub const HEAD_BLOCK_BYTES: usize = 16 << 20;

/// `(p_gen, P(y))` of example `bi` at `step`: `P(y) = p_gen P_vocab(y) + (1 − p_gen) copy` with
/// the pointer (`step.copy` set), else `(1, P_vocab(y))`.
pub(crate) fn target_prob<T: Float>(
    pointer: bool,
    step: &Step<T>,
    bi: usize,
    pv_y: f64,
) -> (f64, f64) {
    if pointer {
        let g = step.pg[bi].to_f64();
        (g, g * pv_y + (1.0 - g) * step.copy[bi].to_f64())
    } else {
        (1.0, pv_y)
    }
}

impl<T: Float> Params<T> {
    /// Runs the vocabulary head over `fw.o_all`: fills `fw.pv_y` (`[T·B]` `P_vocab(y)`, 0 for
    /// an extended id) and, with `grads`, adds `δW_v`, `δb_v` to them and fills `fw.d_o_all`.
    /// With the pointer, `fw.steps[t].copy` must be set for the gradient.
    pub(crate) fn vocab_head(
        &self,
        cfg: &ModelConfig,
        inp: &Inputs<'_>,
        fw: &mut Forward<T>,
        mut grads: Option<&mut Params<T>>,
    ) {
        let (b, v, no) = (inp.batch, cfg.vocab, self.out_hidden.n_out);
        let rows = inp.tgt_len * b;
        let n = inp.tgt_lengths.iter().sum::<usize>().max(1) as f64;
        let bytes = fw.head_block_bytes.unwrap_or(HEAD_BLOCK_BYTES);
        let block = (bytes / (v * std::mem::size_of::<T>())).clamp(1, rows.max(1));
        let Forward {
            o_all,
            head,
            pv_y,
            d_o_all,
            steps,
            ..
        } = fw;
        pv_y.clear();
        pv_y.resize(rows, 0.0);
        if grads.is_some() {
            d_o_all.clear();
            d_o_all.resize(rows * no, T::ZERO);
        }
        for r0 in (0..rows).step_by(block) {
            let m = block.min(rows - r0);
            let o = &o_all[r0 * no..(r0 + m) * no];
            self.vocab_softmax(o, m, head);
            let want_grad = grads.is_some();
            head.par_chunks_mut(v)
                .zip(pv_y[r0..r0 + m].par_iter_mut())
                .enumerate()
                .for_each(|(i, (row, pv_y_out))| {
                    let r = r0 + i;
                    let (t, bi) = (r / b, r % b);
                    let y = inp.targets[r] as usize;
                    let pv = if y < v { row[y].to_f64() } else { 0.0 };
                    *pv_y_out = pv;
                    if !want_grad {
                        return;
                    }
                    let (g, p) = target_prob(cfg.pointer, &steps[t], bi, pv);
                    let dp = if t < inp.tgt_lengths[bi] && p > PROB_FLOOR {
                        -1.0 / (n * p)
                    } else {
                        0.0
                    };
                    let dpv_y = dp * g;
                    if y < v && dpv_y != 0.0 {
                        let k = T::from_f64(dpv_y * pv);
                        row.iter_mut().for_each(|x| *x = -k * *x);
                        row[y] += k;
                    } else {
                        row.iter_mut().for_each(|x| *x = T::ZERO);
                    }
                });
            if let Some(grads) = grads.as_deref_mut() {
                let dw = if cfg.tie_output && cfg.separate_embeddings {
                    &mut grads.dec_embedding
                } else if cfg.tie_output {
                    &mut grads.embedding
                } else {
                    &mut grads.out_vocab.w
                };
                self.out_vocab.backward_with(
                    self.vocab_weight(),
                    o,
                    &head[..m * v],
                    m,
                    dw,
                    &mut grads.out_vocab.b,
                    Some(&mut d_o_all[r0 * no..(r0 + m) * no]),
                );
            }
        }
    }
}
