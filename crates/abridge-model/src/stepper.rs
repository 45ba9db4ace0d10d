//! The summarizer as a [`StepModel`], so that `abridge-decode`'s beam search can drive it: the
//! documents are encoded once (together), and every live hypothesis carries its decoder state,
//! context, coverage and last attention, reordered by the search's `parents` at each step. Rows
//! belong to a document (at the start row `d` is document `d`; a row inherits its parent's), so
//! one stepper can decode several documents in one batch (`abridge_decode::beam_search_batch`).

use abridge_decode::{StepModel, StepOutput};

use crate::greedy::copy_mass;
use crate::seq2seq::{Forward, Inputs, ModelError, Prev, Step, StepContext, VocabWeights};
use crate::{ModelConfig, Params};

use abridge_text::vocab::UNK;

/// Documents being decoded.
pub struct Stepper<'m> {
    params: &'m Params<f32>,
    cfg: &'m ModelConfig,
    /// `S`, the longest source, and each document's own length.
    src_len: usize,
    lens: Vec<usize>,
    /// Extended-vocabulary size beyond `V` (the most of any document).
    n_oov: usize,
    enc: Forward<f32>,
    /// Current rows (hypotheses), the document of each (the rows' column in the encoder's
    /// `[S, D, ·]` outputs, which the rows share), and their sources gathered (`[S, K]`).
    k: usize,
    row_doc: Vec<usize>,
    src_k: Vec<u32>,
    src_ext_k: Vec<u32>,
    lens_k: Vec<usize>,
    prev: Option<Step<f32>>,
    /// `[S, D]` time-major, padded with 0 past each document's length.
    src: Vec<u32>,
    src_ext: Vec<u32>,
    /// `W_v` in f16 (decoding streams it once per token; half the bytes).
    half: Option<&'m abridge_tensor::HalfMatrix>,
    /// `[S, D]`: 1 where the pointer may copy from (see [`Stepper::with_copy_mask`]); empty = all.
    copy_mask: Vec<f32>,
    /// `[S, K]` the copy distribution of the current step when masked.
    a_copy: Vec<f32>,
}

fn gather_rows(m: &[f32], width: usize, parents: &[usize]) -> Vec<f32> {
    parents
        .iter()
        .flat_map(|&p| m[p * width..(p + 1) * width].iter().copied())
        .collect()
}

fn gather_cols(m: &[f32], rows: usize, old_k: usize, parents: &[usize]) -> Vec<f32> {
    let k = parents.len();
    let mut out = vec![0.0; rows * k];
    for i in 0..rows {
        for (j, &p) in parents.iter().enumerate() {
            out[i * k + j] = m[i * old_k + p];
        }
    }
    out
}

impl<'m> Stepper<'m> {
    /// Encodes one source: vocabulary ids `src [S]` and extended ids `src_ext [S]` (`S ≥ 1`).
    pub fn new(
        params: &'m Params<f32>,
        cfg: &'m ModelConfig,
        src: &[u32],
        src_ext: &[u32],
    ) -> Result<Self, ModelError> {
        Self::new_batch(params, cfg, &[(src, src_ext)])
    }

    /// Encodes several sources in one batch (`(src, src_ext)` each, any lengths ≥ 1); row `d` of
    /// the first step is document `d`.
    pub fn new_batch(
        params: &'m Params<f32>,
        cfg: &'m ModelConfig,
        docs: &[(&[u32], &[u32])],
    ) -> Result<Self, ModelError> {
        let d = docs.len();
        for (src, src_ext) in docs {
            if src.is_empty() || src_ext.len() != src.len() {
                return Err(ModelError::Shape {
                    what: "src_ext",
                    expected: src.len().max(1),
                    got: src_ext.len(),
                });
            }
        }
        if d == 0 {
            return Err(ModelError::Shape {
                what: "documents",
                expected: 1,
                got: 0,
            });
        }
        let lens: Vec<usize> = docs.iter().map(|(s, _)| s.len()).collect();
        let s = *lens.iter().max().expect("d > 0");
        let n_oov = docs
            .iter()
            .flat_map(|(_, e)| e.iter())
            .map(|&x| (x as usize + 1).saturating_sub(cfg.vocab))
            .max()
            .unwrap_or(0);
        let (mut src, mut src_ext) = (vec![0u32; s * d], vec![0u32; s * d]);
        for (j, (ds, de)) in docs.iter().enumerate() {
            for i in 0..ds.len() {
                src[i * d + j] = ds[i];
                src_ext[i * d + j] = de[i];
            }
        }
        let dummy = vec![2u32; d];
        let zero = vec![0usize; d];
        let inp = Inputs {
            batch: d,
            src_len: s,
            tgt_len: 1,
            src: &src,
            src_ext: &src_ext,
            src_lengths: &lens,
            dec_in: &dummy,
            targets: &dummy,
            tgt_lengths: &zero,
        };
        inp.validate(cfg)?;
        let mut enc = Forward::new();
        params.encode(cfg, &inp, &mut enc)?;
        let mut st = Self {
            params,
            cfg,
            src_len: s,
            lens,
            n_oov,
            enc,
            k: 0,
            row_doc: vec![],
            src_k: vec![],
            src_ext_k: vec![],
            lens_k: vec![],
            prev: None,
            src,
            src_ext,
            half: None,
            copy_mask: Vec::new(),
            a_copy: Vec::new(),
        };
        st.set_rows((0..d).collect());
        Ok(st)
    }

    /// Uses `w` (from [`Params::half_vocab`] of the same parameters) for the vocabulary
    /// projection: half the memory traffic per token; equal results for weights that are
    /// f16-exact (exported models), within f16 rounding otherwise.
    pub fn with_half_vocab(mut self, w: &'m abridge_tensor::HalfMatrix) -> Self {
        self.half = Some(w);
        self
    }

    /// Bottom-up copy attention (Gehrmann et al. 2018): the pointer copies only from source
    /// positions `i` of document `d` with `keep[d][i]` (a content selector's `q_i ≥ ε`). The copy
    /// distribution is the step's attention times the mask, renormalised,
    /// `ã_i = a_i m_i / Σ_j a_j m_j`; the context vector, coverage and `p_gen` still come from the
    /// whole attention (the decoder's state evolves as it was trained). A row whose attention
    /// falls entirely on masked positions copies with its unmasked attention. `keep[d]` is as long
    /// as document `d` (a shorter mask leaves the rest copyable).
    pub fn with_copy_mask(mut self, keep: &[Vec<bool>]) -> Self {
        self.set_copy_mask(keep);
        self
    }

    /// [`Stepper::with_copy_mask`] on a stepper already made (before its first step).
    pub fn set_copy_mask(&mut self, keep: &[Vec<bool>]) {
        let d = self.lens.len();
        self.copy_mask = vec![1.0; self.src_len * d];
        for (j, m) in keep.iter().enumerate().take(d) {
            for (i, &k) in m.iter().enumerate().take(self.src_len) {
                self.copy_mask[i * d + j] = if k { 1.0 } else { 0.0 };
            }
        }
    }

    /// The encoder's outputs `[S, D, 2H]` (time-major, documents side by side, zero past each
    /// document's length): what a feature-input content selector reads.
    pub fn encoder_output(&self) -> &[f32] {
        self.enc.enc.output()
    }

    /// With a copy mask, writes this step's copy distribution `[S, K]` (the attention `a`, masked
    /// and renormalised per row) into `a_copy` and returns true.
    fn mask_copy_attention(&mut self, a: &[f32]) -> bool {
        if self.copy_mask.is_empty() {
            return false;
        }
        let (s, k, d) = (self.src_len, self.k, self.lens.len());
        self.a_copy.clear();
        self.a_copy.resize(s * k, 0.0);
        for (bi, &doc) in self.row_doc.iter().enumerate() {
            let z: f32 = (0..s)
                .map(|i| a[i * k + bi] * self.copy_mask[i * d + doc])
                .sum();
            for i in 0..s {
                self.a_copy[i * k + bi] = if z > 0.0 {
                    a[i * k + bi] * self.copy_mask[i * d + doc] / z
                } else {
                    a[i * k + bi]
                };
            }
        }
        true
    }

    /// Gathers the sources of each row's document (`row_doc[r]`).
    fn set_rows(&mut self, row_doc: Vec<usize>) {
        let (s, d) = (self.src_len, self.lens.len());
        let ids = |v: &[u32]| -> Vec<u32> {
            (0..s)
                .flat_map(|i| row_doc.iter().map(move |&doc| v[i * d + doc]))
                .collect()
        };
        self.src_k = ids(&self.src);
        self.src_ext_k = ids(&self.src_ext);
        self.lens_k = row_doc.iter().map(|&doc| self.lens[doc]).collect();
        self.k = row_doc.len();
        self.row_doc = row_doc;
    }
}

/// What the decoder did at the last step for one hypothesis (for `abridge explain`).
#[derive(Clone, Debug, PartialEq)]
pub struct StepDetails {
    /// `[S]` attention over the source.
    pub attention: Vec<f32>,
    /// `[S]` coverage the attention saw: the sum of the attention of the steps before (zeros
    /// without coverage).
    pub coverage: Vec<f32>,
    /// `p_gen`: the probability of generating from the vocabulary rather than copying (None
    /// without the pointer).
    pub p_gen: Option<f32>,
    /// Decoder cell gate activations `[G·H]` (LSTM `i, f, g, o`; GRU `r, z, n`) and the memory
    /// after the step (LSTM cell state, GRU hidden state) `[H]`.
    pub gates: Vec<f32>,
    pub memory: Vec<f32>,
}

impl Stepper<'_> {
    /// Details of the last [`StepModel::step`] for hypothesis `k`; `None` before the first step.
    pub fn last_step_details(&self, k: usize) -> Option<StepDetails> {
        let st = self.prev.as_ref()?;
        if k >= self.k {
            return None;
        }
        let s = self.src_len;
        let col = |m: &[f32]| -> Vec<f32> {
            if m.is_empty() {
                vec![0.0; s]
            } else {
                (0..s).map(|i| m[i * self.k + k]).collect()
            }
        };
        let (gates, memory) = st.cell.trace(0, 0, k)?.pop()?;
        Some(StepDetails {
            attention: col(&st.a),
            coverage: col(&st.cov),
            p_gen: st.pg.get(k).copied(),
            gates,
            memory,
        })
    }

    /// Per step of the source, the encoder's gate activations and memory (see
    /// [`abridge_nn::RnnCache::trace`]) of layer `layer`, direction `dir` (1 = right to left).
    pub fn encoder_trace(&self, layer: usize, dir: usize) -> Option<Vec<(Vec<f32>, Vec<f32>)>> {
        self.enc.enc.trace(layer, dir, 0)
    }
}

impl StepModel for Stepper<'_> {
    fn vocab(&self) -> usize {
        self.cfg.vocab + self.n_oov
    }

    fn step(&mut self, parents: &[usize], tokens: &[u32]) -> StepOutput {
        let (k, s, h) = (parents.len(), self.src_len, self.cfg.hidden);
        let old_k = self.k;
        let rows: Vec<usize> = parents.iter().map(|&p| self.row_doc[p]).collect();
        if rows != self.row_doc {
            self.set_rows(rows);
        }
        // The state each new hypothesis starts from, gathered from its parent.
        let (hs, cs, ctx, cov, a) = match &self.prev {
            None => {
                let c = if self.enc.s0_c.is_empty() {
                    vec![]
                } else {
                    gather_rows(&self.enc.s0_c, h, parents)
                };
                (gather_rows(&self.enc.s0_h, h, parents), c, None, None, None)
            }
            Some(p) => {
                let c = if p.cell.c_n().is_empty() {
                    vec![]
                } else {
                    gather_rows(p.cell.c_n(), h, parents)
                };
                (
                    gather_rows(p.cell.h_n(), h, parents),
                    c,
                    Some(gather_rows(&p.ctx, 2 * h, parents)),
                    Some(gather_cols(&p.cov, s, old_k, parents)),
                    Some(gather_cols(&p.a, s, old_k, parents)),
                )
            }
        };
        let prev = Prev {
            h: &hs,
            c: &cs,
            ctx: ctx.as_deref(),
            cov: cov.as_deref().zip(a.as_deref()),
        };
        let dummy = vec![2u32; k];
        let zeros = vec![0usize; k];
        let inp = Inputs {
            batch: k,
            src_len: s,
            tgt_len: 1,
            src: &self.src_k,
            src_ext: &self.src_ext_k,
            src_lengths: &self.lens_k,
            dec_in: &dummy,
            targets: &dummy,
            tgt_lengths: &zeros,
        };
        let sctx = StepContext {
            inp: &inp,
            enc_out: self.enc.enc.output(),
            enc_proj: &self.enc.enc_proj,
            enc_cols: Some(&self.row_doc),
            dec_packed: None,
        };
        let ids: Vec<u32> = tokens
            .iter()
            .map(|&t| {
                if (t as usize) < self.cfg.vocab {
                    t
                } else {
                    UNK
                }
            })
            .collect();
        let mut st = Step::default();
        self.params
            .decoder_step(self.cfg, &sctx, &ids, &prev, &mut st)
            .expect("shapes are built here and were validated in Stepper::new");
        // `st.pv` holds the logits here, `log P_vocab = logit − lse` (read once, below).
        let mut lse = Vec::new();
        let w = self.half.map_or(VocabWeights::Plain, VocabWeights::Half);
        self.params.vocab_logits(w, &st.o, k, &mut st.pv, &mut lse);
        let v = self.cfg.vocab;
        let mut out = StepOutput::default();
        out.log_probs.reserve(k * (v + self.n_oov));
        let mut pairs = Vec::with_capacity(s);
        let a_copy = if self.cfg.pointer && self.mask_copy_attention(&st.a) {
            &self.a_copy
        } else {
            &st.a
        };
        for (bi, &lse) in lse.iter().enumerate() {
            let row_start = out.log_probs.len();
            let logits = &st.pv[bi * v..(bi + 1) * v];
            // log P(w) = log(p_gen P_vocab(w) + (1 − p_gen) copy(w)); away from the source words
            // that is log p_gen + log P_vocab(w) = logit_w − (lse − log p_gen): no logarithm per
            // vocabulary entry.
            let g = if self.cfg.pointer { st.pg[bi] } else { 1.0 };
            let shift = lse - g.ln();
            out.log_probs.extend(logits.iter().map(|&x| x - shift));
            out.log_probs
                .resize(row_start + v + self.n_oov, f32::NEG_INFINITY);
            if self.cfg.pointer {
                for (w, mass) in copy_mass(&self.src_ext_k, a_copy, k, bi, s, &mut pairs) {
                    let gen = if (w as usize) < v {
                        g * (logits[w as usize] - lse).exp()
                    } else {
                        0.0
                    };
                    let p = gen + (1.0 - g) * mass as f32;
                    if p > 0.0 {
                        out.log_probs[row_start + w as usize] = p.ln();
                    }
                }
                // With the pointer, an unknown source word is copied as itself: never emit `<unk>`.
                out.log_probs[row_start + UNK as usize] = f32::NEG_INFINITY;
            }
            out.attention.extend((0..s).map(|i| st.a[i * k + bi]));
        }
        if self.cfg.pointer {
            out.p_gen.extend_from_slice(&st.pg[..k]);
        }
        self.prev = Some(st);
        out
    }
}
