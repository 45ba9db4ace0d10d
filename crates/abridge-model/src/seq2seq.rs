//! Forward and backward of the summarizer over one batch (teacher forcing).
//!
//! Legend: `B` batch, `S` source length, `T` target length, `E` embedding, `H` hidden, `A` attention,
//! `V` vocabulary, `V'` extended vocabulary (`V` + the batch's largest number of source OOV words).
//!
//! ```text
//! encoder    h_i = [h→_i; h←_i] = BiRNN(emb(x))_i                         [S, B, 2H]
//! bridge     s_0 = tanh(W_bh [h→_end; h←_0] + b)  (and c_0 likewise, LSTM)  [B, H]
//! step t     x_t = W_x [emb(y_{t-1}); ctx_{t-1}] + b_x,  ctx_{-1} = 0      [B, E]
//!            s_t = Cell(x_t, s_{t-1})                                      [B, H]
//!            e_ti = vᵀ tanh(W_h h_i + W_s s_t + w_c cov_ti + b_attn)       [S, B]
//!            a_t = softmax(e_t) over the source positions i < len          [S, B]
//!            ctx_t = Σ_i a_ti h_i                                          [B, 2H]
//!            P_vocab = softmax(W_v tanh(W_o [s_t; ctx_t] + b_o) + b_v)     [B, V]
//!            p_gen = σ(w_p [ctx_t; s_t; x_t] + b_p)                        [B]
//!            P(w) = p_gen P_vocab(w) + (1 − p_gen) Σ_{i: x_i = w} a_ti     over V'
//!            cov_t = Σ_{t' < t} a_t'  (so cov_0 = 0: coverage sums the steps *before* t)
//!            loss_t = −log max(P(y_t), 1e-12) + λ Σ_i min(a_ti, cov_ti)
//! loss       mean of loss_t over the batch's target tokens (padding excluded)
//! ```
//!
//! Variants: `attention = luong` scores `e_ti = (W_s s_t) · (W_h h_i + b_attn)` (Luong, Pham &
//! Manning 2015, "general", factored through the attention size; no coverage term);
//! `input_feeding = false` drops `ctx_{t-1}` from `x_t` (`x_t = W_x emb(y_{t-1}) + b_x`).
//!
//! With `dropout = p` (training only) the encoder's input embeddings and `o_t` are multiplied
//! by inverted-dropout masks (`0` w.p. `p`, else `1/(1−p)`) drawn from the step's seed.
//!
//! With `separate_embeddings` the decoder reads `emb_dec(y)` from its own table (default: the
//! encoder's). With `tie_output` the vocabulary projection is the (target) embedding, `W_v = E` (Press & Wolf 2017),
//! and `W_o` maps to `E` units instead of `H`.
//!
//! This is See et al. (2017) with Bahdanau attention (additive, Bahdanau, Cho & Bengio 2015) computed
//! from the decoder state after the step, as they do. Without the pointer `P = P_vocab`; without
//! coverage the `w_c` term and the coverage loss vanish. The floor inside the log only matters when
//! `p_gen` saturates to exactly 0 or 1 in floating point; its gradient is then zero.

use abridge_nn::{CellKind, RnnCache, RnnInput};
use abridge_tensor::Float;
use rayon::prelude::*;

use crate::{attention, ModelConfig, Params};

/// Smallest probability the loss takes the log of.
pub const PROB_FLOOR: f64 = 1e-12;

/// How decoding multiplies by `W_v`: as stored (the GEMM crate), packed once for the many steps
/// of a batch ([`Params::pack_vocab`]), or rounded to f16 ([`Params::half_vocab`]).
#[derive(Clone, Copy)]
pub(crate) enum VocabWeights<'a> {
    Plain,
    Packed(&'a abridge_tensor::PackedMatrix),
    Half(&'a abridge_tensor::HalfMatrix),
}

/// One batch, time-major, as `abridge_text::batch::Batch` lays it out.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub batch: usize,
    pub src_len: usize,
    pub tgt_len: usize,
    /// `[S, B]` vocabulary ids of the source (OOV → `<unk>`).
    pub src: &'a [u32],
    /// `[S, B]` extended ids of the source (what the pointer copies).
    pub src_ext: &'a [u32],
    /// `[B]`, each in `1..=S`.
    pub src_lengths: &'a [usize],
    /// `[T, B]` decoder inputs `<s> y_1 …` (vocabulary ids).
    pub dec_in: &'a [u32],
    /// `[T, B]` targets: extended ids with the pointer, vocabulary ids without.
    pub targets: &'a [u32],
    /// `[B]` target lengths; steps at or past them are padding.
    pub tgt_lengths: &'a [usize],
}

/// What can be wrong with a batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("batch: `{what}` has {got} entries, expected {expected}")]
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("batch: source {index} has length {len}, outside 1..={max}")]
    SourceLength {
        index: usize,
        len: usize,
        max: usize,
    },
    #[error("batch: id {id} in `{what}` is outside the vocabulary of {limit}")]
    Id {
        what: &'static str,
        id: u32,
        limit: usize,
    },
    #[error(transparent)]
    Rnn(#[from] abridge_nn::RnnError),
}

/// Loss of a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Loss {
    /// Mean over target tokens of `−log P(y_t)`.
    pub nll: f64,
    /// Mean over target tokens of the coverage loss (before `λ`).
    pub coverage: f64,
    /// `nll + λ · coverage`: what backward differentiates.
    pub total: f64,
    /// Target tokens in the batch.
    pub tokens: usize,
}

#[derive(Default)]
pub(crate) struct Step<T: Float> {
    pub(crate) xin: Vec<T>,
    pub(crate) x: Vec<T>,
    pub(crate) cell: RnnCache<T>,
    pub(crate) h: Vec<T>,
    /// `[B, A]` attention query `W_s s_t` (backward recomputes `tanh(…)` from it).
    pub(crate) sp: Vec<T>,
    pub(crate) a: Vec<T>,
    pub(crate) cov: Vec<T>,
    pub(crate) ctx: Vec<T>,
    pub(crate) rin: Vec<T>,
    pub(crate) o: Vec<T>,
    pub(crate) pv: Vec<T>,
    pub(crate) pin: Vec<T>,
    pub(crate) pg: Vec<T>,
    pub(crate) copy: Vec<T>,
    pub(crate) p: Vec<T>,
}

/// Everything forward keeps for backward (reusable across batches).
#[derive(Default)]
pub struct Forward<T: Float> {
    /// `[T·B, H]` output-layer states of all steps (after dropout).
    pub(crate) o_all: Vec<T>,
    /// `[T·B]` `P_vocab(y)` of every row (see [`crate::head`]).
    pub(crate) pv_y: Vec<f64>,
    /// The head's `[rows, V]` block of logits (scratch).
    pub(crate) head: Vec<T>,
    /// `[T·B, H]` gradient of `o_all`, from the head.
    pub(crate) d_o_all: Vec<T>,
    /// The head's gradients are in `d_o_all` and the caller's gradients already
    /// ([`Params::forward_backward`]); backward starts below the head.
    pub(crate) head_done: bool,
    /// A forward pass is held that no backward has consumed yet.
    pub(crate) pending: bool,
    /// Bytes of the head's block of logits (`None`: [`crate::head::HEAD_BLOCK_BYTES`]).
    pub(crate) head_block_bytes: Option<usize>,
    pub(crate) enc: RnnCache<T>,
    pub(crate) enc_x: Vec<T>,
    pub(crate) enc_proj: Vec<T>,
    pub(crate) hcat: Vec<T>,
    pub(crate) ccat: Vec<T>,
    pub(crate) s0_h: Vec<T>,
    pub(crate) s0_c: Vec<T>,
    pub(crate) steps: Vec<Step<T>>,
    pub(crate) loss: Loss,
    /// Training mode: dropout masks are drawn from this seed (None = no dropout).
    pub(crate) dropout_seed: Option<u64>,
    /// Inverted-dropout masks (`0` or `1/(1−p)`) of the encoder input `[S·B·E]` and of `o_all`.
    pub(crate) enc_mask: Vec<T>,
    pub(crate) o_mask: Vec<T>,
}

/// Fills `mask` with `n` inverted-dropout factors: `0` with probability `p`, else `1/(1−p)`.
fn dropout_mask<T: Float>(rng: &mut abridge_tensor::Rng, p: f64, n: usize, mask: &mut Vec<T>) {
    let keep = T::from_f64(1.0 / (1.0 - p));
    mask.clear();
    mask.extend((0..n).map(|_| {
        if rng.uniform(0.0, 1.0) < p {
            T::ZERO
        } else {
            keep
        }
    }));
}

impl<T: Float> Forward<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Training mode for the next [`Params::forward`]: dropout (if the config has any) with masks
    /// drawn from `seed`; `None` turns it off (evaluation, decoding).
    pub fn set_dropout(&mut self, seed: Option<u64>) {
        self.dropout_seed = seed;
    }
    /// Size of the vocabulary head's `[rows, V]` block (at least one row): memory against speed
    /// (see [`crate::head`]). Results do not depend on it.
    pub fn set_head_block_bytes(&mut self, bytes: usize) {
        self.head_block_bytes = Some(bytes);
    }
    pub fn loss(&self) -> Loss {
        self.loss
    }
    /// `[B, S]`-ordered attention of step `t` (for inspection), as `[S, B]`.
    pub fn attention(&self, t: usize) -> &[T] {
        &self.steps[t].a
    }
    /// `[B]` p_gen of step `t` (empty without the pointer).
    pub fn p_gen(&self, t: usize) -> &[T] {
        &self.steps[t].pg
    }
    /// `[B]` `P(y_t)` of step `t` under the model (what the loss takes the log of; 0 at padding).
    pub fn target_prob(&self, t: usize) -> &[T] {
        &self.steps[t].p
    }
}

fn check(what: &'static str, got: usize, expected: usize) -> Result<(), ModelError> {
    if got == expected {
        Ok(())
    } else {
        Err(ModelError::Shape {
            what,
            expected,
            got,
        })
    }
}

fn sized<T: Float>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    v.clear();
    v.resize(n, T::ZERO);
    v
}

/// `v` at length `n` for a caller that overwrites every entry: kept contents are not zeroed first
/// (a pass over tens of megabytes for the head's block and the attention keys).
fn overwritten<T: Float>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    v.resize(n, T::ZERO);
    v
}

impl<'a> Inputs<'a> {
    pub(crate) fn validate(&self, cfg: &ModelConfig) -> Result<(), ModelError> {
        let (b, s, t) = (self.batch, self.src_len, self.tgt_len);
        check("src", self.src.len(), s * b)?;
        check("src_ext", self.src_ext.len(), s * b)?;
        check("src_lengths", self.src_lengths.len(), b)?;
        check("dec_in", self.dec_in.len(), t * b)?;
        check("targets", self.targets.len(), t * b)?;
        check("tgt_lengths", self.tgt_lengths.len(), b)?;
        if let Some((index, &len)) = self
            .src_lengths
            .iter()
            .enumerate()
            .find(|(_, &l)| l == 0 || l > s)
        {
            return Err(ModelError::SourceLength { index, len, max: s });
        }
        for (what, ids) in [("src", self.src), ("dec_in", self.dec_in)] {
            if let Some(&id) = ids.iter().find(|&&i| i as usize >= cfg.vocab) {
                return Err(ModelError::Id {
                    what,
                    id,
                    limit: cfg.vocab,
                });
            }
        }
        if !cfg.pointer {
            if let Some(&id) = self.targets.iter().find(|&&i| i as usize >= cfg.vocab) {
                return Err(ModelError::Id {
                    what: "targets",
                    id,
                    limit: cfg.vocab,
                });
            }
        }
        Ok(())
    }
}

fn gather_rows<T: Float>(table: &[T], width: usize, ids: &[u32], out: &mut Vec<T>) {
    out.clear();
    for &id in ids {
        out.extend_from_slice(&table[id as usize * width..(id as usize + 1) * width]);
    }
}

impl<T: Float> Params<T> {
    /// Encoder, attention keys and bridge: everything before the first decoder step.
    pub(crate) fn encode(
        &self,
        cfg: &ModelConfig,
        inp: &Inputs<'_>,
        fw: &mut Forward<T>,
    ) -> Result<(), ModelError> {
        let (b, s) = (inp.batch, inp.src_len);
        let (e, h, a_dim) = (cfg.emb, cfg.hidden, cfg.attn);
        let lstm = cfg.cell == CellKind::Lstm;
        // Encoder.
        gather_rows(&self.embedding, e, inp.src, &mut fw.enc_x);
        fw.enc_mask.clear();
        fw.o_mask.clear();
        if let Some(seed) = fw.dropout_seed.filter(|_| cfg.dropout > 0.0) {
            let mut rng = abridge_tensor::Rng::new(seed);
            dropout_mask(&mut rng, cfg.dropout, fw.enc_x.len(), &mut fw.enc_mask);
            fw.enc_x
                .iter_mut()
                .zip(&fw.enc_mask)
                .for_each(|(x, m)| *x *= *m);
            // The output layer's mask, drawn now so that it depends on the seed only.
            let rows = inp.tgt_len * b * self.out_hidden.n_out;
            dropout_mask(&mut rng, cfg.dropout, rows, &mut fw.o_mask);
        }
        let enc_in = RnnInput {
            x: &fw.enc_x,
            steps: s,
            batch: b,
            lengths: Some(inp.src_lengths),
            h0: None,
            c0: None,
        };
        self.encoder.forward(&enc_in, &mut fw.enc)?;
        let enc_out = fw.enc.output();
        self.att_enc
            .forward(enc_out, s * b, overwritten(&mut fw.enc_proj, s * b * a_dim));
        // Bridge from the last layer's final states.
        let top = (cfg.enc_layers - 1) * 2;
        let cat = |states: &[T], out: &mut Vec<T>| {
            out.clear();
            for bi in 0..b {
                out.extend_from_slice(&states[(top * b + bi) * h..][..h]);
                out.extend_from_slice(&states[((top + 1) * b + bi) * h..][..h]);
            }
        };
        cat(fw.enc.h_n(), &mut fw.hcat);
        self.bridge_h
            .forward(&fw.hcat, b, sized(&mut fw.s0_h, b * h));
        fw.s0_h.iter_mut().for_each(|x| *x = x.tanh());
        if lstm {
            cat(fw.enc.c_n(), &mut fw.ccat);
            self.bridge_c
                .forward(&fw.ccat, b, sized(&mut fw.s0_c, b * h));
            fw.s0_c.iter_mut().for_each(|x| *x = x.tanh());
        }
        Ok(())
    }

    /// Teacher-forced forward pass; returns the loss and fills `fw` for [`Params::backward`].
    pub fn forward(
        &self,
        cfg: &ModelConfig,
        inp: &Inputs<'_>,
        fw: &mut Forward<T>,
    ) -> Result<Loss, ModelError> {
        self.forward_with(cfg, inp, fw, None)
    }

    /// [`forward`](Self::forward) then [`backward`](Self::backward) (gradients *added* to
    /// `grads`), with the vocabulary head's forward and backward fused block by block, so that
    /// its `[T·B, V]` distributions are never held at once (see [`crate::head`]). What training
    /// calls; the same gradients as the two calls.
    pub fn forward_backward(
        &self,
        cfg: &ModelConfig,
        inp: &Inputs<'_>,
        fw: &mut Forward<T>,
        grads: &mut Params<T>,
    ) -> Result<Loss, ModelError> {
        let loss = self.forward_with(cfg, inp, fw, Some(grads))?;
        self.backward(cfg, inp, fw, grads)?;
        Ok(loss)
    }

    fn forward_with(
        &self,
        cfg: &ModelConfig,
        inp: &Inputs<'_>,
        fw: &mut Forward<T>,
        head_grads: Option<&mut Params<T>>,
    ) -> Result<Loss, ModelError> {
        inp.validate(cfg)?;
        fw.head_done = false;
        fw.pending = false;
        let (b, nt) = (inp.batch, inp.tgt_len);
        self.encode(cfg, inp, fw)?;
        // Decoder.
        fw.steps.resize_with(nt, Step::default);
        let mut loss = Loss {
            tokens: inp.tgt_lengths.iter().sum(),
            ..Default::default()
        };
        let (mut nll, mut covl) = (0.0f64, 0.0f64);
        let dec_packed = self.decoder.pack_recurrent();
        for t in 0..nt {
            let (done, rest) = fw.steps.split_at_mut(t);
            let st = &mut rest[0];
            let ctx = StepContext {
                inp,
                enc_out: fw.enc.output(),
                enc_proj: &fw.enc_proj,
                enc_cols: None,
                dec_packed: dec_packed.as_ref(),
            };
            let prev = Prev::of(done.last(), &fw.s0_h, &fw.s0_c);
            self.decoder_step(cfg, &ctx, &inp.dec_in[t * b..(t + 1) * b], &prev, st)?;
        }
        // The vocabulary head of every step at once: one [T·B, H]·[H, V] product.
        fw.o_all.clear();
        for st in &fw.steps {
            fw.o_all.extend_from_slice(&st.o);
        }
        if !fw.o_mask.is_empty() {
            fw.o_all
                .iter_mut()
                .zip(&fw.o_mask)
                .for_each(|(x, m)| *x *= *m);
        }
        if cfg.pointer {
            // copy_t = Σ_{i: x_i = y_t} a_ti, which the head's gradient needs.
            for (t, st) in fw.steps.iter_mut().enumerate() {
                for bi in 0..b {
                    let y = inp.targets[t * b + bi];
                    let copy: f64 = (0..inp.src_lengths[bi])
                        .filter(|&i| inp.src_ext[i * b + bi] == y)
                        .map(|i| st.a[i * b + bi].to_f64())
                        .sum();
                    st.copy[bi] = T::from_f64(copy);
                }
            }
        }
        fw.head_done = head_grads.is_some();
        self.vocab_head(cfg, inp, fw, head_grads);
        for (t, st) in fw.steps.iter_mut().enumerate() {
            for bi in 0..b {
                if t >= inp.tgt_lengths[bi] {
                    continue;
                }
                let (_, p) = crate::head::target_prob(cfg.pointer, st, bi, fw.pv_y[t * b + bi]);
                st.p[bi] = T::from_f64(p);
                nll -= p.max(PROB_FLOOR).ln();
                if cfg.coverage {
                    covl += (0..inp.src_lengths[bi])
                        .map(|i| st.a[i * b + bi].to_f64().min(st.cov[i * b + bi].to_f64()))
                        .sum::<f64>();
                }
            }
        }
        let n = loss.tokens.max(1) as f64;
        loss.nll = nll / n;
        loss.coverage = covl / n;
        loss.total = loss.nll
            + if cfg.coverage {
                cfg.cov_weight * loss.coverage
            } else {
                0.0
            };
        fw.loss = loss;
        fw.pending = true;
        Ok(loss)
    }
}

/// The decoder state a step starts from (`[B, H]` states, `[B, 2H]` context, `[S, B]` coverage and
/// attention of the previous step); `ctx` and `cov` are `None` at the first step.
pub(crate) struct Prev<'a, T> {
    pub h: &'a [T],
    pub c: &'a [T],
    pub ctx: Option<&'a [T]>,
    pub cov: Option<(&'a [T], &'a [T])>,
}

impl<'a, T: Float> Prev<'a, T> {
    /// The state after `step`, or the initial state `s0` when there is none.
    pub(crate) fn of(step: Option<&'a Step<T>>, s0_h: &'a [T], s0_c: &'a [T]) -> Self {
        match step {
            Some(p) => Prev {
                h: p.cell.h_n(),
                c: p.cell.c_n(),
                ctx: Some(&p.ctx),
                cov: Some((&p.cov, &p.a)),
            },
            None => Prev {
                h: s0_h,
                c: s0_c,
                ctx: None,
                cov: None,
            },
        }
    }
}

/// What every decoder step reads.
pub(crate) struct StepContext<'a, T> {
    pub inp: &'a Inputs<'a>,
    /// `[S, D, 2H]` encoder outputs and `[S, D, A]` their attention projections, and the
    /// column `d` of each of the `B` rows (`None`: `D = B`, row `b` reads column `b`). Beams of
    /// one document share its columns instead of each reading a copy.
    pub enc_out: &'a [T],
    pub enc_proj: &'a [T],
    pub enc_cols: Option<&'a [usize]>,
    /// The decoder's `W_hhᵀ`, packed once for all steps of this pass (`None`: per call).
    pub dec_packed: Option<&'a abridge_nn::PackedRecurrent>,
}

impl<T: Float> Params<T> {
    /// The decoder's input table: its own with `separate_embeddings`, else the shared one.
    pub(crate) fn target_embedding(&self) -> &[T] {
        if self.dec_embedding.is_empty() {
            &self.embedding
        } else {
            &self.dec_embedding
        }
    }

    /// `W_v [V, O]`: the output layer's own weight, or the (target) embedding when tied.
    pub(crate) fn vocab_weight(&self) -> &[T] {
        if self.out_vocab.w.is_empty() {
            self.target_embedding()
        } else {
            &self.out_vocab.w
        }
    }

    /// `P_vocab = softmax(W_v o + b_v)` for `rows` rows of `o [rows, H]` into `pv [rows, V]`.
    pub(crate) fn vocab_softmax(&self, o: &[T], rows: usize, pv: &mut Vec<T>) {
        let v = self.out_vocab.n_out;
        let y = overwritten(pv, rows * v);
        self.out_vocab.forward_with(self.vocab_weight(), o, rows, y);
        pv.par_chunks_mut(v * 8).for_each(|c| softmax_rows(c, v));
    }

    /// `W_vᵀ` packed for [`abridge_tensor::PackedMatrix::mul_par`], for many products with the
    /// same few dozen rows (greedy decoding of a batch), where the GEMM crate would repack `W_v`
    /// at every step. `None` for f64.
    pub(crate) fn pack_vocab(&self) -> Option<abridge_tensor::PackedMatrix> {
        let (v, n) = (self.out_vocab.n_out, self.out_vocab.n_in);
        let w = T::as_f32(self.vocab_weight())?;
        Some(abridge_tensor::PackedMatrix::new(
            abridge_tensor::MatRef::new(w, v, n).t(),
        ))
    }

    /// Logits `W_v o + b_v` of `rows` rows into `logits [rows, V]` and each row's
    /// `ln Σ_j exp(logit_j)` into `lse [rows]`, so that `log P_vocab(w) = logit_w − lse`: decoding
    /// reads what it needs from these (an argmax, the search's log-probabilities) without a
    /// softmax pass over the vocabulary. `logits` is overwritten, not cleared first.
    pub(crate) fn vocab_logits(
        &self,
        w: VocabWeights<'_>,
        o: &[T],
        rows: usize,
        logits: &mut Vec<T>,
        lse: &mut Vec<T>,
    ) {
        let v = self.out_vocab.n_out;
        let y = overwritten(logits, rows * v);
        let with_bias = match (w, T::as_f32(o)) {
            (VocabWeights::Packed(pk), Some(o32)) => {
                let y32 = T::as_f32_mut(y).expect("T is f32 when `o` is");
                pk.mul_par(o32, rows, y32);
                true
            }
            (VocabWeights::Half(w), _) => {
                let of: Vec<f32>;
                let o32 = match T::as_f32(o) {
                    Some(o) => o,
                    None => {
                        of = o.iter().map(|x| x.to_f64() as f32).collect();
                        &of
                    }
                };
                match T::as_f32_mut(y) {
                    Some(y32) => w.mul_t(o32, rows, y32),
                    None => {
                        let mut y32 = vec![0f32; rows * v];
                        w.mul_t(o32, rows, &mut y32);
                        y.iter_mut()
                            .zip(&y32)
                            .for_each(|(a, b)| *a = T::from_f64(*b as f64));
                    }
                }
                true
            }
            _ => {
                self.out_vocab.forward_with(self.vocab_weight(), o, rows, y);
                false
            }
        };
        let bias: &[T] = if with_bias { &self.out_vocab.b } else { &[] };
        lse.clear();
        lse.resize(rows, T::ZERO);
        logits
            .par_chunks_mut(v * 4)
            .zip(lse.par_chunks_mut(4))
            .for_each(|(y, l)| add_bias_lse_rows(y, v, bias, l));
    }

    /// `W_v` rounded to f16, for [`crate::Stepper::with_half_vocab`].
    pub fn half_vocab(&self) -> abridge_tensor::HalfMatrix {
        let w: Vec<f32> = self
            .vocab_weight()
            .iter()
            .map(|x| x.to_f64() as f32)
            .collect();
        abridge_tensor::HalfMatrix::from_f32(&w, self.out_vocab.n_out, self.out_vocab.n_in)
    }

    /// One decoder step from input ids `ids [B]` (vocabulary ids) and the state it starts from:
    /// fills `st` up to the output layer and `p_gen`.
    pub(crate) fn decoder_step(
        &self,
        cfg: &ModelConfig,
        ctx: &StepContext<'_, T>,
        ids: &[u32],
        prev: &Prev<'_, T>,
        st: &mut Step<T>,
    ) -> Result<(), ModelError> {
        let (b, s) = (ctx.inp.batch, ctx.inp.src_len);
        let (e, h, a_dim) = (cfg.emb, cfg.hidden, cfg.attn);
        debug_assert_eq!(ids.len(), b);
        let lstm = cfg.cell == CellKind::Lstm;
        // x_t = W_x [emb(y_{t-1}); ctx_{t-1}] + b_x
        st.xin.clear();
        for (bi, &id) in ids.iter().enumerate() {
            let id = id as usize;
            st.xin
                .extend_from_slice(&self.target_embedding()[id * e..(id + 1) * e]);
            if !cfg.input_feeding {
                continue;
            }
            match prev.ctx {
                Some(c) => st.xin.extend_from_slice(&c[bi * 2 * h..(bi + 1) * 2 * h]),
                None => st.xin.extend(std::iter::repeat_n(T::ZERO, 2 * h)),
            }
        }
        self.dec_input.forward(&st.xin, b, sized(&mut st.x, b * e));
        let (h_prev, c_prev) = (prev.h, prev.c);
        let cell_in = RnnInput {
            x: &st.x,
            steps: 1,
            batch: b,
            lengths: None,
            h0: Some(h_prev),
            c0: lstm.then_some(c_prev),
        };
        st.cell.set_packed(ctx.dec_packed.cloned());
        self.decoder.forward(&cell_in, &mut st.cell)?;
        st.h.clear();
        st.h.extend_from_slice(st.cell.h_n());
        // Coverage before this step: cov_t = cov_{t-1} + a_{t-1}.
        match prev.cov {
            Some((cov, a)) => {
                st.cov.clear();
                st.cov.extend(cov.iter().zip(a).map(|(c, a)| *c + *a));
            }
            None => drop(sized(&mut st.cov, s * b)),
        }
        // Attention and context, examples in parallel (see `crate::attention`).
        let sp = sized(&mut st.sp, b * a_dim);
        self.att_dec.forward(&st.h, b, sp);
        let sp = &st.sp;
        sized(&mut st.ctx, b * 2 * h);
        let mut a_bm = vec![T::ZERO; b * s];
        {
            let cov_all = &st.cov;
            let wc: &[T] = if cfg.coverage { &self.att_cov } else { &[] };
            a_bm.par_chunks_mut(s)
                .zip(st.ctx.par_chunks_mut(2 * h))
                .enumerate()
                .for_each(|(bi, (a, ctx_b))| {
                    let len = ctx.inp.src_lengths[bi];
                    let cov: Vec<T> = if cfg.coverage {
                        (0..len).map(|i| cov_all[i * b + bi]).collect()
                    } else {
                        Vec::new()
                    };
                    let (col, cols) = match ctx.enc_cols {
                        Some(c) => (c[bi], ctx.enc_proj.len() / (s * a_dim).max(1)),
                        None => (bi, b),
                    };
                    let ex = attention::Example {
                        bi: col,
                        batch: cols,
                        len,
                        keys: ctx.enc_proj,
                        values: ctx.enc_out,
                        q: &sp[bi * a_dim..(bi + 1) * a_dim],
                        wc,
                        v: &self.att_v,
                        cov: &cov,
                        luong: cfg.attention == crate::AttentionKind::Luong,
                    };
                    attention::forward_one(&ex, a, ctx_b);
                });
        }
        sized(&mut st.a, s * b);
        for bi in 0..b {
            for i in 0..ctx.inp.src_lengths[bi] {
                st.a[i * b + bi] = a_bm[bi * s + i];
            }
        }
        // Vocabulary distribution.
        st.rin.clear();
        for bi in 0..b {
            st.rin.extend_from_slice(&st.h[bi * h..(bi + 1) * h]);
            st.rin
                .extend_from_slice(&st.ctx[bi * 2 * h..(bi + 1) * 2 * h]);
        }
        let no = self.out_hidden.n_out;
        self.out_hidden
            .forward(&st.rin, b, sized(&mut st.o, b * no));
        st.o.iter_mut().for_each(|x| *x = x.tanh());
        // Pointer.
        sized(&mut st.pg, if cfg.pointer { b } else { 0 });
        sized(&mut st.copy, b);
        sized(&mut st.p, b);
        if cfg.pointer {
            st.pin.clear();
            for bi in 0..b {
                st.pin
                    .extend_from_slice(&st.ctx[bi * 2 * h..(bi + 1) * 2 * h]);
                st.pin.extend_from_slice(&st.h[bi * h..(bi + 1) * h]);
                st.pin.extend_from_slice(&st.x[bi * e..(bi + 1) * e]);
            }
            self.pointer.forward(&st.pin, b, &mut st.pg);
            st.pg.iter_mut().for_each(|x| *x = x.sigmoid());
        }
        Ok(())
    }
}

/// Maximum of a row with sixteen partial maxima (vectorisable).
#[inline(always)]
fn row_max<T: Float>(row: &[T]) -> T {
    const L: usize = 16;
    let mut m = [row[0]; L];
    let full = row.len() / L * L;
    for c in row[..full].chunks_exact(L) {
        for l in 0..L {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    let mut max = row[0];
    for &v in m.iter().chain(&row[full..]) {
        if v > max {
            max = v;
        }
    }
    max
}

/// `Σ exp(x − shift)` over a row with sixteen partial sums (vectorisable).
#[inline(always)]
fn row_sum_exp<T: Float>(row: &[T], shift: T) -> T {
    const L: usize = 16;
    let mut acc = [T::ZERO; L];
    let full = row.len() / L * L;
    for c in row[..full].chunks_exact(L) {
        for l in 0..L {
            acc[l] += (c[l] - shift).exp();
        }
    }
    let mut z = acc.iter().fold(T::ZERO, |z, v| z + *v);
    for &v in &row[full..] {
        z += (v - shift).exp();
    }
    z
}

abridge_tensor::simd_fn_wide! {
    /// For each `width`-long row of `x`: adds `bias` (when not empty), then writes the row's
    /// `ln Σ exp(x)` (max-shifted) into `lse`.
    pub(crate) fn add_bias_lse_rows<T>(x: &mut [T], width: usize, bias: &[T], lse: &mut [T]) {
        for (row, out) in x.chunks_exact_mut(width).zip(lse.iter_mut()) {
            if !bias.is_empty() {
                row.iter_mut().zip(bias).for_each(|(x, b)| *x += *b);
            }
            let max = row_max(row);
            *out = max + T::from_f64(row_sum_exp(row, max).to_f64().ln());
        }
    }
}

abridge_tensor::simd_fn_wide! {
    /// In-place softmax of each `width`-long row (max-shifted).
    pub(crate) fn softmax_rows<T>(x: &mut [T], width: usize) {
        // Sixteen partial sums: a single running one is a serial chain the vectoriser may not
        // reorder.
        const L: usize = 16;
        for row in x.chunks_exact_mut(width) {
            let max = row_max(row);
            let full = row.len() / L * L;
            row.iter_mut().for_each(|v| *v = (*v - max).exp());
            let mut acc = [T::ZERO; L];
            for c in row[..full].chunks_exact(L) {
                for l in 0..L {
                    acc[l] += c[l];
                }
            }
            let z = acc.iter().chain(&row[full..]).fold(T::ZERO, |z, v| z + *v);
            let inv = T::ONE / z;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}
