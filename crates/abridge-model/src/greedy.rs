//! Greedy decoding: at each step the most probable word of the final (extended-vocabulary)
//! distribution, fed back as the next input (an out-of-vocabulary copy is fed back as `<unk>`).

use abridge_tensor::Float;

use rayon::prelude::*;

use crate::seq2seq::{Forward, Inputs, ModelError, Step, StepContext, VocabWeights};
use crate::{ModelConfig, Params};

use abridge_text::vocab::{BOS, EOS, UNK};

/// Sources to decode, time-major as in [`Inputs`].
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    pub batch: usize,
    pub src_len: usize,
    pub src: &'a [u32],
    pub src_ext: &'a [u32],
    pub src_lengths: &'a [usize],
}

/// The copy distribution of example `bi` grouped by word: `(w, Σ_{i: x_i = w} a_i)` in increasing
/// `w`, for source ids `src_ext [S, B]` and attention `a [S, B]` over the first `len` positions.
/// `pairs` is a reusable buffer.
pub(crate) fn copy_mass<T: Float>(
    src_ext: &[u32],
    a: &[T],
    batch: usize,
    bi: usize,
    len: usize,
    pairs: &mut Vec<(u32, f64)>,
) -> Vec<(u32, f64)> {
    pairs.clear();
    pairs.extend((0..len).map(|i| (src_ext[i * batch + bi], a[i * batch + bi].to_f64())));
    pairs.sort_unstable_by_key(|&(w, _)| w);
    let mut out: Vec<(u32, f64)> = Vec::with_capacity(pairs.len());
    for &(w, m) in pairs.iter() {
        match out.last_mut() {
            Some(last) if last.0 == w => last.1 += m,
            _ => out.push((w, m)),
        }
    }
    out
}

/// The most probable extended id of `P(w) = p_gen P_vocab(w) + (1 − p_gen) Σ_{i: x_i = w} a_i`
/// for example `bi` (the lowest id among equals), from its vocabulary logits (`[V]`, with
/// `lse = ln Σ exp`), the step's `p_gen` and attention, without building the distribution: away
/// from the source words `P(w) = p_gen P_vocab(w)`, so only the vocabulary's best and the source
/// words need their full probability.
pub(crate) fn argmax_final<T: Float>(
    cfg: &ModelConfig,
    st: &Step<T>,
    logits: &[T],
    lse: T,
    src: &Sources<'_>,
    bi: usize,
) -> u32 {
    let v = cfg.vocab;
    let b = src.batch;
    let mut gen = 0;
    for (w, x) in logits.iter().enumerate() {
        if *x > logits[gen] {
            gen = w;
        }
    }
    if !cfg.pointer {
        return gen as u32;
    }
    let pv = |w: usize| (logits[w] - lse).to_f64().exp();
    let g = st.pg[bi].to_f64();
    let mut best = (gen, g * pv(gen));
    let words = copy_mass(
        src.src_ext,
        &st.a,
        b,
        bi,
        src.src_lengths[bi],
        &mut Vec::new(),
    );
    for (w, mass) in words {
        let w = w as usize;
        let gen_w = if w < v { g * pv(w) } else { 0.0 };
        let p = gen_w + (1.0 - g) * mass;
        if p > best.1 || (p == best.1 && w < best.0) {
            best = (w, p);
        }
    }
    best.0 as u32
}

impl<T: Float> Params<T> {
    /// Greedy decoding of up to `max_len` tokens per source; returns extended ids, `</s>` excluded.
    pub fn greedy(
        &self,
        cfg: &ModelConfig,
        src: &Sources<'_>,
        max_len: usize,
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        self.greedy_with(cfg, src, max_len, &mut Forward::new())
    }

    /// [`greedy`](Self::greedy) in the buffers of `fw`, kept from call to call (the encoder's
    /// work buffers of a batch are tens of megabytes: allocating them afresh costs page faults on
    /// every call). `fw` may have served any other pass before.
    pub fn greedy_with(
        &self,
        cfg: &ModelConfig,
        src: &Sources<'_>,
        max_len: usize,
        fw: &mut Forward<T>,
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        let b = src.batch;
        let dummy = vec![BOS; max_len.max(1) * b];
        let zeros = vec![0usize; b];
        let inp = Inputs {
            batch: b,
            src_len: src.src_len,
            tgt_len: max_len.max(1),
            src: src.src,
            src_ext: src.src_ext,
            src_lengths: src.src_lengths,
            dec_in: &dummy,
            targets: &dummy,
            tgt_lengths: &zeros,
        };
        inp.validate(cfg)?;
        // Decoding runs without dropout; the caller's setting is put back.
        let dropout = fw.dropout_seed.take();
        let encoded = self.encode(cfg, &inp, fw);
        fw.dropout_seed = dropout;
        encoded?;
        fw.steps.resize_with(max_len, Step::default);
        let mut out = vec![Vec::new(); b];
        let mut done = vec![false; b];
        let mut ids = vec![BOS; b];
        let dec_packed = self.decoder.pack_recurrent();
        // Beyond a few rows the vocabulary product is a GEMM whose crate would repack `W_v` at
        // every step: pack it once for all steps.
        let vocab_packed = if b > 8 { self.pack_vocab() } else { None };
        let w = vocab_packed
            .as_ref()
            .map_or(VocabWeights::Plain, VocabWeights::Packed);
        // One buffer of logits for all steps (each step's is read before the next).
        let (mut logits, mut lse) = (Vec::new(), Vec::new());
        for t in 0..max_len {
            let (before, rest) = fw.steps.split_at_mut(t);
            let ctx = StepContext {
                inp: &inp,
                enc_out: fw.enc.output(),
                enc_proj: &fw.enc_proj,
                enc_cols: None,
                dec_packed: dec_packed.as_ref(),
            };
            let prev = crate::seq2seq::Prev::of(before.last(), &fw.s0_h, &fw.s0_c);
            self.decoder_step(cfg, &ctx, &ids, &prev, &mut rest[0])?;
            let st = &rest[0];
            self.vocab_logits(w, &st.o, b, &mut logits, &mut lse);
            let v = cfg.vocab;
            let picks: Vec<u32> = (0..b)
                .into_par_iter()
                .map(|bi| argmax_final(cfg, st, &logits[bi * v..(bi + 1) * v], lse[bi], src, bi))
                .collect();
            for (bi, &best) in picks.iter().enumerate() {
                if !done[bi] {
                    if best == EOS {
                        done[bi] = true;
                    } else {
                        out[bi].push(best);
                    }
                }
                ids[bi] = if (best as usize) < cfg.vocab {
                    best
                } else {
                    UNK
                };
            }
            if done.iter().all(|&d| d) {
                break;
            }
        }
        Ok(out)
    }
}
