//! Greedy decoding: at each step the most probable word of the final (extended-vocabulary)
//! distribution, fed back as the next input (an out-of-vocabulary copy is fed back as `<unk>`).

use abridge_tensor::Float;

use crate::seq2seq::{Forward, Inputs, ModelError, Step, StepContext};
use crate::{ModelConfig, Params};

/// Vocabulary id of `<unk>`, `<s>`, `</s>` (as `abridge_text::vocab` numbers them).
const UNK: u32 = 1;
const BOS: u32 = 2;
const EOS: u32 = 3;

/// Sources to decode, time-major as in [`Inputs`].
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    pub batch: usize,
    pub src_len: usize,
    pub src: &'a [u32],
    pub src_ext: &'a [u32],
    pub src_lengths: &'a [usize],
}

/// `P(w)` over `V + n_oov` for example `bi` of a computed step.
pub(crate) fn final_distribution<T: Float>(
    cfg: &ModelConfig,
    st: &Step<T>,
    src: &Sources<'_>,
    bi: usize,
    n_oov: usize,
) -> Vec<f64> {
    let v = cfg.vocab;
    let b = src.batch;
    let mut p: Vec<f64> = st.pv[bi * v..(bi + 1) * v]
        .iter()
        .map(|x| x.to_f64())
        .collect();
    p.resize(v + n_oov, 0.0);
    if cfg.pointer {
        let g = st.pg[bi].to_f64();
        p.iter_mut().for_each(|x| *x *= g);
        for i in 0..src.src_lengths[bi] {
            let w = src.src_ext[i * b + bi] as usize;
            if w < p.len() {
                p[w] += (1.0 - g) * st.a[i * b + bi].to_f64();
            }
        }
    }
    p
}

impl<T: Float> Params<T> {
    /// Greedy decoding of up to `max_len` tokens per source; returns extended ids, `</s>` excluded.
    pub fn greedy(
        &self,
        cfg: &ModelConfig,
        src: &Sources<'_>,
        max_len: usize,
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        let b = src.batch;
        let n_oov = src
            .src_ext
            .iter()
            .map(|&x| (x as usize + 1).saturating_sub(cfg.vocab))
            .max()
            .unwrap_or(0);
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
        let mut fw = Forward::new();
        self.encode(cfg, &inp, &mut fw)?;
        fw.steps.resize_with(max_len, Step::default);
        let mut out = vec![Vec::new(); b];
        let mut done = vec![false; b];
        let mut ids = vec![BOS; b];
        for t in 0..max_len {
            let (before, rest) = fw.steps.split_at_mut(t);
            let ctx = StepContext {
                inp: &inp,
                enc_out: fw.enc.output(),
                enc_proj: &fw.enc_proj,
            };
            let prev = crate::seq2seq::Prev::of(before.last(), &fw.s0_h, &fw.s0_c);
            self.decoder_step(cfg, &ctx, &ids, &prev, &mut rest[0])?;
            let st = &mut rest[0];
            self.vocab_softmax(&st.o, b, &mut st.pv);
            for bi in 0..b {
                let p = final_distribution(cfg, &rest[0], src, bi, n_oov);
                let best = p
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |m, (i, &x)| if x > m.1 { (i, x) } else { m },
                    )
                    .0 as u32;
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
