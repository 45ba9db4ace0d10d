//! All parameters of the summarizer (the same struct holds their gradients), under stable names.

use abridge_nn::{CellKind, Rnn, RnnConfig, RnnParams};
use abridge_tensor::{Float, Rng};

use crate::{Linear, ModelConfig};

/// Parameters; shapes in terms of `V, E, H, A` of [`ModelConfig`].
#[derive(Clone, Debug)]
pub struct Params<T> {
    /// `[V, E]`, the encoder's input table, and the decoder's unless `dec_embedding` is used.
    pub embedding: Vec<T>,
    /// `[V, E]`, the decoder's own input table with `separate_embeddings` (empty otherwise).
    pub dec_embedding: Vec<T>,
    /// Bidirectional `E → H` stack.
    pub encoder: Rnn<T>,
    /// `2H → H`: decoder `h0 = tanh(W [h_fw; h_bw] + b)` (See et al.'s reduce-state).
    pub bridge_h: Linear<T>,
    /// `2H → H`: decoder `c0` likewise (LSTM; `0 × 0` for GRU).
    pub bridge_c: Linear<T>,
    /// `E + 2H → E`: decoder input `x_t = W [emb(y_{t-1}); ctx_{t-1}] + b`.
    pub dec_input: Linear<T>,
    /// One-layer, one-direction `E → H` cell.
    pub decoder: Rnn<T>,
    /// `2H → A` with bias: `W_h h_i + b_attn`.
    pub att_enc: Linear<T>,
    /// `H → A`, no bias: `W_s s_t`.
    pub att_dec: Linear<T>,
    /// `[A]`: `w_c`, coverage weight in the attention.
    pub att_cov: Vec<T>,
    /// `[A]`: `v`, attention score vector.
    pub att_v: Vec<T>,
    /// `3H → O`: `o_t = tanh(W [s_t; ctx_t] + b)`, `O = H` (or `E` with a tied output).
    pub out_hidden: Linear<T>,
    /// `O → V`: vocabulary logits (with a tied output its weight is `embedding`, and `w` is
    /// empty).
    pub out_vocab: Linear<T>,
    /// `2H + H + E → 1`: `p_gen = σ(w [ctx_t; s_t; x_t] + b)`.
    pub pointer: Linear<T>,
}

fn init_vec<T: Float>(n: usize, k: f64, rng: &mut Rng) -> Vec<T> {
    (0..n).map(|_| T::from_f64(rng.uniform(-k, k))).collect()
}

impl<T: Float> Params<T> {
    /// Random initialisation: PyTorch's defaults for the layers, embeddings uniform in ±0.1.
    pub fn init(cfg: &ModelConfig, rng: &mut Rng) -> Self {
        let (v, e, h, a) = (cfg.vocab, cfg.emb, cfg.hidden, cfg.attn);
        let lstm = cfg.cell == CellKind::Lstm;
        let enc_cfg = RnnConfig::new(cfg.cell, e, h)
            .with_layers(cfg.enc_layers)
            .with_bidirectional(true);
        Self {
            embedding: init_vec(v * e, 0.1, rng),
            dec_embedding: if cfg.separate_embeddings {
                init_vec(v * e, 0.1, rng)
            } else {
                Vec::new()
            },
            encoder: Rnn::new(RnnParams::init_uniform(enc_cfg, rng)),
            bridge_h: Linear::init(2 * h, h, true, rng),
            bridge_c: if lstm {
                Linear::init(2 * h, h, true, rng)
            } else {
                Linear::zeros(0, 0, false)
            },
            dec_input: Linear::init(if cfg.input_feeding { e + 2 * h } else { e }, e, true, rng),
            decoder: Rnn::new(RnnParams::init_uniform(RnnConfig::new(cfg.cell, e, h), rng)),
            att_enc: Linear::init(2 * h, a, true, rng),
            att_dec: Linear::init(h, a, false, rng),
            att_cov: if cfg.coverage {
                init_vec(a, 1.0 / (a as f64).sqrt(), rng)
            } else {
                vec![]
            },
            att_v: init_vec(a, 1.0 / (a as f64).sqrt(), rng),
            out_hidden: Linear::init(3 * h, cfg.out_size(), true, rng),
            out_vocab: if cfg.tie_output {
                let mut l = Linear::init(e, v, true, rng);
                l.w = Vec::new();
                l
            } else {
                Linear::init(h, v, true, rng)
            },
            pointer: if cfg.pointer {
                Linear::init(2 * h + h + e, 1, true, rng)
            } else {
                Linear::zeros(0, 0, false)
            },
        }
    }

    /// Sets every value to zero, keeping the allocations (reuse one gradient buffer across steps).
    pub fn fill_zero(&mut self) {
        self.for_each_mut(|_, v| v.iter_mut().for_each(|x| *x = T::ZERO));
    }

    /// Zeros of the same shapes (a gradient accumulator).
    pub fn zeros_like(&self) -> Self {
        let mut z = self.clone();
        z.for_each_mut(|_, v| v.iter_mut().for_each(|x| *x = T::ZERO));
        z
    }

    /// Every tensor as `(name, shape, values)`, in a fixed order (the checkpoint and optimizer order).
    /// Names follow PyTorch's modules (`encoder.weight_ih_l0_reverse`, `bridge_h.weight`, …).
    pub fn tensors_mut(&mut self) -> Vec<(String, Vec<usize>, &mut [T])> {
        let (v, e) = (
            self.embedding.len() / self.dec_input.n_out.max(1),
            self.dec_input.n_out,
        );
        let mut out: Vec<(String, Vec<usize>, &mut [T])> = vec![(
            "embedding.weight".into(),
            vec![v, e],
            &mut self.embedding[..],
        )];
        if !self.dec_embedding.is_empty() {
            out.push((
                "dec_embedding.weight".into(),
                vec![v, e],
                &mut self.dec_embedding[..],
            ));
        }
        out.extend(
            self.encoder
                .params
                .tensors_mut()
                .into_iter()
                .map(|t| (format!("encoder.{}", t.name), t.shape, t.data)),
        );
        fn lin<'a, T>(
            out: &mut Vec<(String, Vec<usize>, &'a mut [T])>,
            name: &str,
            l: &'a mut Linear<T>,
        ) {
            let (o, i) = (l.n_out, l.n_in);
            if l.w.is_empty() && o * i > 0 {
                // A tied weight: stored once, under its owner's name.
                let nb = l.b.len();
                out.push((format!("{name}.bias"), vec![nb], &mut l.b[..]));
                return;
            }
            out.push((format!("{name}.weight"), vec![o, i], &mut l.w[..]));
            let nb = l.b.len();
            out.push((format!("{name}.bias"), vec![nb], &mut l.b[..]));
        }
        lin(&mut out, "bridge_h", &mut self.bridge_h);
        lin(&mut out, "bridge_c", &mut self.bridge_c);
        lin(&mut out, "dec_input", &mut self.dec_input);
        out.extend(self.decoder.params.tensors_mut().into_iter().map(|t| {
            (
                format!("decoder.{}", abridge_nn::Cell::<T>::cell_name(&t.name)),
                t.shape,
                t.data,
            )
        }));
        lin(&mut out, "attention.enc", &mut self.att_enc);
        let (ao, ai) = (self.att_dec.n_out, self.att_dec.n_in);
        out.push((
            "attention.dec.weight".into(),
            vec![ao, ai],
            &mut self.att_dec.w[..],
        ));
        let (nc, nv) = (self.att_cov.len(), self.att_v.len());
        out.push(("attention.coverage".into(), vec![nc], &mut self.att_cov[..]));
        out.push(("attention.v".into(), vec![nv], &mut self.att_v[..]));
        lin(&mut out, "out_hidden", &mut self.out_hidden);
        lin(&mut out, "out_vocab", &mut self.out_vocab);
        lin(&mut out, "pointer", &mut self.pointer);
        out
    }

    /// Calls `f(name, values)` for every tensor, in [`Params::tensors_mut`] order.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&str, &mut [T])) {
        for (name, _, t) in self.tensors_mut() {
            f(&name, t);
        }
    }

    /// Number of scalar parameters.
    pub fn count(&mut self) -> usize {
        self.tensors_mut().iter().map(|(_, _, t)| t.len()).sum()
    }
}
