//! Backward of [`Params::forward`], step by step in reverse; the equations are in
//! [`crate::seq2seq`]. Gradients of the mean loss are *added* to `grads`.

use abridge_nn::{CellKind, RnnGradOut};
use abridge_tensor::Float;
use rayon::prelude::*;

use crate::seq2seq::{Forward, Inputs, ModelError, PROB_FLOOR};
use crate::{attention, ModelConfig, Params};

impl<T: Float> Params<T> {
    /// Backpropagation through the last [`Params::forward`] held by `fw`, once: it consumes the
    /// pass (a second call, or one without a forward, is [`abridge_nn::RnnError::NoForward`] and
    /// leaves `grads` untouched).
    pub fn backward(
        &self,
        cfg: &ModelConfig,
        inp: &Inputs<'_>,
        fw: &mut Forward<T>,
        grads: &mut Params<T>,
    ) -> Result<(), ModelError> {
        if !fw.pending {
            return Err(abridge_nn::RnnError::NoForward.into());
        }
        let (b, s, nt) = (inp.batch, inp.src_len, inp.tgt_len);
        let (e, h, ad) = (cfg.emb, cfg.hidden, cfg.attn);
        let rows = nt * b * self.out_hidden.n_out;
        if fw.o_all.len() != rows || fw.steps.len() < nt {
            return Err(ModelError::Shape {
                what: "decoder outputs of the forward pass (backward got other inputs)",
                expected: rows,
                got: fw.o_all.len(),
            });
        }
        fw.pending = false;
        let lstm = cfg.cell == CellKind::Lstm;
        let n = fw.loss.tokens.max(1) as f64;
        let lam = if cfg.coverage { cfg.cov_weight } else { 0.0 };

        // The vocabulary head, unless forward_backward ran it with its forward.
        if !std::mem::take(&mut fw.head_done) {
            self.vocab_head(cfg, inp, fw, Some(grads));
        }
        let no = self.out_hidden.n_out;
        let d_o_all = std::mem::take(&mut fw.d_o_all);
        let pv_y_all = std::mem::take(&mut fw.pv_y);

        let zero = |k: usize| vec![T::ZERO; k];
        let (mut dh_next, mut dc_next) = (zero(b * h), zero(if lstm { b * h } else { 0 }));
        let mut dctx_next = zero(b * 2 * h);
        let mut dcov_next = zero(s * b);
        // Example-major ([B, S, ·]) accumulators the parallel attention kernels write into.
        let mut denc_out_bm = zero(b * s * 2 * h);
        let mut denc_proj_bm = zero(b * s * ad);

        let (enc_out, fw_enc_proj) = (fw.enc.output(), &fw.enc_proj);
        if nt > 1 {
            // The gradient scratch the last backward left with step 0 starts at the last step.
            let (first, rest) = fw.steps.split_at_mut(1);
            first[0].cell.lend_grad_scratch(&mut rest[nt - 2].cell);
        }
        // δctx of every step, `[T, B, 2H]`: the encoder outputs' gradient through the context,
        // `Σ_t a_t,i δctx_t`, is one product per example after the loop instead of a pass over
        // `[B, S, 2H]` at every step (memory-bound: 26 MB a step at the benchmark's shapes).
        let mut dctx_all = zero(nt * b * 2 * h);
        for t in (0..nt).rev() {
            let st = &mut fw.steps[t];
            let mut da = zero(s * b);
            let mut dcov = dcov_next.clone(); // cov_{t+1} = cov_t + a_t
            da.iter_mut().zip(&dcov_next).for_each(|(x, y)| *x += *y);
            let mut dpg = zero(b);
            for bi in 0..b {
                if t >= inp.tgt_lengths[bi] {
                    continue;
                }
                let w = 1.0 / n;
                let y = inp.targets[t * b + bi];
                let p = st.p[bi].to_f64();
                let dp = if p > PROB_FLOOR { -w / p } else { 0.0 };
                if cfg.pointer {
                    let g = st.pg[bi].to_f64();
                    dpg[bi] = T::from_f64(dp * (pv_y_all[t * b + bi] - st.copy[bi].to_f64()));
                    let dcopy = T::from_f64(dp * (1.0 - g));
                    for i in 0..inp.src_lengths[bi] {
                        if inp.src_ext[i * b + bi] == y {
                            da[i * b + bi] += dcopy;
                        }
                    }
                }
                if lam != 0.0 {
                    let g = T::from_f64(lam * w);
                    for i in 0..inp.src_lengths[bi] {
                        let k = i * b + bi;
                        if st.a[k] <= st.cov[k] {
                            da[k] += g;
                        } else {
                            dcov[k] += g;
                        }
                    }
                }
            }
            // Output layer: o = tanh(W_o [s_t; ctx_t] + b_o).
            let mut d_o = d_o_all[t * b * no..(t + 1) * b * no].to_vec();
            if !fw.o_mask.is_empty() {
                let m = &fw.o_mask[t * b * no..(t + 1) * b * no];
                d_o.iter_mut().zip(m).for_each(|(d, m)| *d *= *m);
            }
            d_o.iter_mut()
                .zip(&st.o)
                .for_each(|(d, o)| *d *= T::ONE - *o * *o);
            let mut drin = zero(b * 3 * h);
            self.out_hidden
                .backward(&st.rin, &d_o, b, &mut grads.out_hidden, Some(&mut drin));
            let mut dh = dh_next.clone();
            let mut dctx = dctx_next.clone();
            let mut dx = zero(b * e);
            for bi in 0..b {
                for j in 0..h {
                    dh[bi * h + j] += drin[bi * 3 * h + j];
                }
                for j in 0..2 * h {
                    dctx[bi * 2 * h + j] += drin[bi * 3 * h + h + j];
                }
            }
            // Pointer.
            if cfg.pointer {
                let dz: Vec<T> = dpg
                    .iter()
                    .zip(&st.pg)
                    .map(|(d, g)| *d * *g * (T::ONE - *g))
                    .collect();
                let mut dpin = zero(b * (3 * h + e));
                self.pointer
                    .backward(&st.pin, &dz, b, &mut grads.pointer, Some(&mut dpin));
                let wdt = 3 * h + e;
                for bi in 0..b {
                    let row = &dpin[bi * wdt..(bi + 1) * wdt];
                    dctx[bi * 2 * h..(bi + 1) * 2 * h]
                        .iter_mut()
                        .zip(&row[..2 * h])
                        .for_each(|(a, x)| *a += *x);
                    dh[bi * h..(bi + 1) * h]
                        .iter_mut()
                        .zip(&row[2 * h..3 * h])
                        .for_each(|(a, x)| *a += *x);
                    dx[bi * e..(bi + 1) * e]
                        .iter_mut()
                        .zip(&row[3 * h..])
                        .for_each(|(a, x)| *a += *x);
                }
            }
            dctx_all[t * b * 2 * h..(t + 1) * b * 2 * h].copy_from_slice(&dctx);
            // Context, softmax and scores, examples in parallel (see `crate::attention`).
            let mut dsp = zero(b * ad);
            let mut dv_parts = zero(b * ad);
            let mut dwc_parts = zero(if cfg.coverage { b * ad } else { 0 });
            let mut dcov_bm = zero(b * s);
            {
                let (st_a, st_cov, st_sp) = (&st.a, &st.cov, &st.sp);
                let wc: &[T] = if cfg.coverage { &self.att_cov } else { &[] };
                let dwc_chunks: Vec<&mut [T]> = if cfg.coverage {
                    dwc_parts.chunks_mut(ad).collect()
                } else {
                    (0..b).map(|_| &mut [][..]).collect()
                };
                denc_proj_bm
                    .par_chunks_mut(s * ad)
                    .zip(dsp.par_chunks_mut(ad))
                    .zip(dv_parts.par_chunks_mut(ad))
                    .zip(dcov_bm.par_chunks_mut(s))
                    .zip(dwc_chunks.into_par_iter())
                    .enumerate()
                    .for_each(|(bi, ((((dkeys, dq), dv), dcov_b), dwc))| {
                        let len = inp.src_lengths[bi];
                        let gather =
                            |m: &[T]| -> Vec<T> { (0..len).map(|i| m[i * b + bi]).collect() };
                        let (a_b, da_b) = (gather(st_a), gather(&da));
                        let cov_b = if cfg.coverage {
                            gather(st_cov)
                        } else {
                            Vec::new()
                        };
                        let ex = attention::Example {
                            bi,
                            batch: b,
                            len,
                            keys: fw_enc_proj,
                            values: enc_out,
                            q: &st_sp[bi * ad..(bi + 1) * ad],
                            wc,
                            v: &self.att_v,
                            cov: &cov_b,
                            luong: cfg.attention == crate::AttentionKind::Luong,
                        };
                        let mut th = vec![T::ZERO; len * ad];
                        attention::tanh_rows(&ex, &mut th);
                        let mut g = attention::ExampleGrads {
                            da: &da_b,
                            dvalues: &mut [],
                            dkeys,
                            dq,
                            dv,
                            dwc,
                            dcov: &mut dcov_b[..len],
                        };
                        let mut scratch = vec![T::ZERO; len];
                        attention::backward_one(
                            &ex,
                            &th,
                            &a_b,
                            &dctx[bi * 2 * h..(bi + 1) * 2 * h],
                            &mut g,
                            &mut scratch,
                        );
                    });
            }
            for part in dv_parts.chunks(ad) {
                grads.att_v.iter_mut().zip(part).for_each(|(g, x)| *g += *x);
            }
            for part in dwc_parts.chunks(ad) {
                grads
                    .att_cov
                    .iter_mut()
                    .zip(part)
                    .for_each(|(g, x)| *g += *x);
            }
            for bi in 0..b {
                for i in 0..inp.src_lengths[bi] {
                    dcov[i * b + bi] += dcov_bm[bi * s + i];
                }
            }
            self.att_dec
                .backward(&st.h, &dsp, b, &mut grads.att_dec, Some(&mut dh));
            // Decoder cell.
            let grad_out = RnnGradOut {
                d_output: None,
                d_h_n: Some(&dh),
                d_c_n: lstm.then_some(&dc_next[..]),
            };
            self.decoder
                .backward(&mut st.cell, &grad_out, &mut grads.decoder.params)?;
            dx.iter_mut().zip(st.cell.dx()).for_each(|(a, x)| *a += *x);
            dh_next.copy_from_slice(st.cell.dh0());
            if lstm {
                dc_next.copy_from_slice(st.cell.dc0());
            }
            if t > 0 {
                // One set of per-thread gradient buffers serves every step, not one per step.
                let (before, rest) = fw.steps.split_at_mut(t);
                rest[0].cell.lend_grad_scratch(&mut before[t - 1].cell);
            }
            let st = &mut fw.steps[t];
            // Decoder input: x = W_x [emb; ctx_{t-1}] + b.
            let xw = self.dec_input.n_in;
            let mut dxin = zero(b * xw);
            self.dec_input
                .backward(&st.xin, &dx, b, &mut grads.dec_input, Some(&mut dxin));
            for bi in 0..b {
                let id = inp.dec_in[t * b + bi] as usize;
                let row = &dxin[bi * xw..(bi + 1) * xw];
                let table = if cfg.separate_embeddings {
                    &mut grads.dec_embedding
                } else {
                    &mut grads.embedding
                };
                table[id * e..(id + 1) * e]
                    .iter_mut()
                    .zip(&row[..e])
                    .for_each(|(d, x)| *d += *x);
                if cfg.input_feeding {
                    dctx_next[bi * 2 * h..(bi + 1) * 2 * h].copy_from_slice(&row[e..]);
                }
            }
            dcov_next = dcov;
        }

        {
            let steps = &fw.steps;
            denc_out_bm
                .par_chunks_mut(s * 2 * h)
                .enumerate()
                .for_each(|(bi, dvalues)| {
                    // dvalues [len, 2H] = A_bᵀ [len, T] · δCTX_b [T, 2H]
                    let len = inp.src_lengths[bi];
                    let a_b: Vec<T> = (0..nt)
                        .flat_map(|t| (0..len).map(move |i| steps[t].a[i * b + bi]))
                        .collect();
                    let dctx_b: Vec<T> = (0..nt)
                        .flat_map(|t| dctx_all[(t * b + bi) * 2 * h..][..2 * h].iter().copied())
                        .collect();
                    abridge_tensor::gemm(
                        abridge_tensor::MatMut::new(&mut dvalues[..len * 2 * h], len, 2 * h),
                        abridge_tensor::MatRef::new(&a_b, nt, len).t(),
                        abridge_tensor::MatRef::new(&dctx_b, nt, 2 * h),
                        true,
                        abridge_tensor::Par::Seq,
                    );
                });
        }
        // To time-major ([S, B, ·]), each example-major buffer freed once copied: the encoder's
        // backward, next, is where a training step peaks in memory.
        let to_time_major = |bm: Vec<T>, w: usize| {
            let mut tm = zero(s * b * w);
            for bi in 0..b {
                for i in 0..s {
                    let (k, kb) = (i * b + bi, bi * s + i);
                    tm[k * w..(k + 1) * w].copy_from_slice(&bm[kb * w..(kb + 1) * w]);
                }
            }
            tm
        };
        drop(dctx_all);
        let mut denc_out = to_time_major(denc_out_bm, 2 * h);
        let denc_proj = to_time_major(denc_proj_bm, ad);
        // Bridge.
        let mut d_h_n = zero(cfg.enc_layers * 2 * b * h);
        let mut d_c_n = zero(if lstm { cfg.enc_layers * 2 * b * h } else { 0 });
        let top = (cfg.enc_layers - 1) * 2;
        let bridge = |l: &crate::Linear<T>,
                      g: &mut crate::Linear<T>,
                      out: &[T],
                      dout: &[T],
                      cat: &[T],
                      dn: &mut [T]| {
            let dpre: Vec<T> = dout
                .iter()
                .zip(out)
                .map(|(d, o)| *d * (T::ONE - *o * *o))
                .collect();
            let mut dcat = zero(b * 2 * h);
            l.backward(cat, &dpre, b, g, Some(&mut dcat));
            for bi in 0..b {
                dn[(top * b + bi) * h..][..h].copy_from_slice(&dcat[bi * 2 * h..bi * 2 * h + h]);
                dn[((top + 1) * b + bi) * h..][..h]
                    .copy_from_slice(&dcat[bi * 2 * h + h..(bi + 1) * 2 * h]);
            }
        };
        bridge(
            &self.bridge_h,
            &mut grads.bridge_h,
            &fw.s0_h,
            &dh_next,
            &fw.hcat,
            &mut d_h_n,
        );
        if lstm {
            bridge(
                &self.bridge_c,
                &mut grads.bridge_c,
                &fw.s0_c,
                &dc_next,
                &fw.ccat,
                &mut d_c_n,
            );
        }
        // Attention keys and the encoder.
        self.att_enc.backward(
            enc_out,
            &denc_proj,
            s * b,
            &mut grads.att_enc,
            Some(&mut denc_out),
        );
        drop(denc_proj);
        let grad_out = RnnGradOut {
            d_output: Some(&denc_out),
            d_h_n: Some(&d_h_n),
            d_c_n: lstm.then_some(&d_c_n[..]),
        };
        self.encoder
            .backward(&mut fw.enc, &grad_out, &mut grads.encoder.params)?;
        let dx = fw.enc.dx();
        let mask = &fw.enc_mask;
        for (k, &id) in inp.src.iter().enumerate() {
            let id = id as usize;
            let row = grads.embedding[id * e..(id + 1) * e]
                .iter_mut()
                .zip(&dx[k * e..(k + 1) * e]);
            if mask.is_empty() {
                row.for_each(|(d, x)| *d += *x);
            } else {
                row.zip(&mask[k * e..(k + 1) * e])
                    .for_each(|((d, x), m)| *d += *x * *m);
            }
        }
        fw.d_o_all = d_o_all; // the buffers go back for the next pass
        fw.pv_y = pv_y_all;
        Ok(())
    }
}
