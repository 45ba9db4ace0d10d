//! From tokenized pairs to padded, time-major batches.
//!
//! Shapes (`S` longest source in the batch, `T` longest target + 1, `B` batch):
//! | field | shape | content |
//! |---|---|---|
//! | `src`, `src_ext` | `[S, B]` | vocabulary ids / extended ids ([`crate::vocab::Extended`]); [`PAD`] past each length |
//! | `src_lengths` | `[B]` | the `lengths` argument of the recurrent layers |
//! | `src_mask` | `[S, B]` | 1.0 on real tokens, 0.0 on padding |
//! | `dec_in` | `[T, B]` | `<s> y_1 … y_n` (vocabulary ids; OOV → `<unk>`) |
//! | `dec_out`, `dec_out_ext` | `[T, B]` | `y_1 … y_n </s>` (vocabulary / extended ids) |
//! | `tgt_lengths`, `tgt_mask` | `[B]`, `[T, B]` | |
//!
//! Targets longer than `max_tgt_len` are cut and get no `</s>` (as in See et al.'s code).
//! Batching is deterministic given the seed: examples are shuffled, cut into pools of
//! `batch_size × pool_batches`, sorted by source length within a pool (so a batch pads little),
//! batched, and the batches shuffled.

use abridge_tensor::Rng;

use crate::vocab::{Extended, Vocab, BOS, EOS, PAD};

/// Batching settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    pub batch_size: usize,
    /// Source tokens kept (See et al.: 400).
    pub max_src_len: usize,
    /// Target tokens kept (See et al.: 100 in training).
    pub max_tgt_len: usize,
    /// Sort by length within pools of this many batches (1 = no bucketing).
    pub pool_batches: usize,
    /// Shuffle examples and batches.
    pub shuffle: bool,
    pub seed: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            batch_size: 16,
            max_src_len: 400,
            max_tgt_len: 100,
            pool_batches: 100,
            shuffle: true,
            seed: 0,
        }
    }
}

/// One example, encoded and truncated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub src: Vec<u32>,
    pub ext: Extended,
    /// Target vocabulary ids and extended ids (truncated, without `</s>`).
    pub tgt: Vec<u32>,
    pub tgt_ext: Vec<u32>,
    /// Whether the target was cut (then it gets no `</s>`).
    pub tgt_truncated: bool,
}

impl Encoded {
    /// Encodes token sequences with one vocabulary for both sides (See et al. share it).
    pub fn new<S: AsRef<str>>(vocab: &Vocab, src: &[S], tgt: &[S], cfg: &BatchConfig) -> Self {
        let src = &src[..src.len().min(cfg.max_src_len)];
        let tgt_truncated = tgt.len() > cfg.max_tgt_len;
        let tgt = &tgt[..tgt.len().min(cfg.max_tgt_len)];
        let ext = Extended::new(vocab, src);
        Self {
            src: vocab.encode(src),
            tgt: vocab.encode(tgt),
            tgt_ext: ext.target(vocab, tgt),
            ext,
            tgt_truncated,
        }
    }

    /// The target tokens the loss is taken over: the summary's, and `</s>` unless it was cut.
    pub fn target_tokens(&self) -> usize {
        self.tgt.len() + usize::from(!self.tgt_truncated)
    }
}

/// A padded batch; see the module doc for shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub batch: usize,
    pub src_len: usize,
    pub tgt_len: usize,
    pub src: Vec<u32>,
    pub src_ext: Vec<u32>,
    pub src_lengths: Vec<usize>,
    pub src_mask: Vec<f32>,
    pub dec_in: Vec<u32>,
    pub dec_out: Vec<u32>,
    pub dec_out_ext: Vec<u32>,
    pub tgt_lengths: Vec<usize>,
    pub tgt_mask: Vec<f32>,
    /// Per example, its OOV words (extended id `V + k` is `oovs[b][k]`).
    pub oovs: Vec<Vec<String>>,
    /// Largest number of OOV words in the batch (the extended vocabulary is `V + max_oovs`).
    pub max_oovs: usize,
    /// Positions of the examples in the input slice.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Pads the examples `idx` of `data` into one batch.
    pub fn new(data: &[Encoded], idx: &[usize]) -> Self {
        let b = idx.len();
        let s = idx.iter().map(|&i| data[i].src.len()).max().unwrap_or(0);
        let t = idx
            .iter()
            .map(|&i| data[i].tgt.len() + 1)
            .max()
            .unwrap_or(0);
        let mut out = Batch {
            batch: b,
            src_len: s,
            tgt_len: t,
            src: vec![PAD; s * b],
            src_ext: vec![PAD; s * b],
            src_lengths: Vec::with_capacity(b),
            src_mask: vec![0.0; s * b],
            dec_in: vec![PAD; t * b],
            dec_out: vec![PAD; t * b],
            dec_out_ext: vec![PAD; t * b],
            tgt_lengths: Vec::with_capacity(b),
            tgt_mask: vec![0.0; t * b],
            oovs: Vec::with_capacity(b),
            max_oovs: 0,
            indices: idx.to_vec(),
        };
        for (col, &i) in idx.iter().enumerate() {
            let e = &data[i];
            for (k, (&id, &ext)) in e.src.iter().zip(&e.ext.src).enumerate() {
                out.src[k * b + col] = id;
                out.src_ext[k * b + col] = ext;
                out.src_mask[k * b + col] = 1.0;
            }
            out.src_lengths.push(e.src.len());
            out.dec_in[col] = BOS;
            for (k, (&id, &ext)) in e.tgt.iter().zip(&e.tgt_ext).enumerate() {
                if k + 1 < t {
                    out.dec_in[(k + 1) * b + col] = id;
                }
                out.dec_out[k * b + col] = id;
                out.dec_out_ext[k * b + col] = ext;
            }
            let n = e.tgt.len();
            if !e.tgt_truncated {
                out.dec_out[n * b + col] = EOS;
                out.dec_out_ext[n * b + col] = EOS;
            }
            let len = e.target_tokens();
            (0..len).for_each(|k| out.tgt_mask[k * b + col] = 1.0);
            out.tgt_lengths.push(len);
            out.max_oovs = out.max_oovs.max(e.ext.oovs.len());
            out.oovs.push(e.ext.oovs.clone());
        }
        out
    }
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

/// The order in which `data` is batched: lists of example indices, deterministic given the config.
pub fn plan(data: &[Encoded], cfg: &BatchConfig) -> Vec<Vec<usize>> {
    let bs = cfg.batch_size.max(1);
    let mut rng = Rng::new(cfg.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    if cfg.shuffle {
        shuffle(&mut order, &mut rng);
    }
    let mut batches = Vec::new();
    for pool in order.chunks_mut(bs * cfg.pool_batches.max(1)) {
        if cfg.pool_batches > 1 {
            // Stable, so ties keep the shuffled order.
            pool.sort_by_key(|&i| std::cmp::Reverse(data[i].src.len()));
        }
        batches.extend(pool.chunks(bs).map(<[usize]>::to_vec));
    }
    if cfg.shuffle {
        shuffle(&mut batches, &mut rng);
    }
    batches
}

/// All batches of `data`, in [`plan`] order.
pub fn make_batches(data: &[Encoded], cfg: &BatchConfig) -> Vec<Batch> {
    plan(data, cfg)
        .iter()
        .map(|idx| Batch::new(data, idx))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::{VocabConfig, UNK};

    fn vocab() -> Vocab {
        let c = ["a", "b", "c", "d"]
            .iter()
            .map(|w| (w.to_string(), 1u64))
            .collect();
        Vocab::from_counts(&c, VocabConfig::default())
    }

    fn enc(v: &Vocab, src: &str, tgt: &str, cfg: &BatchConfig) -> Encoded {
        let s: Vec<&str> = src.split_whitespace().collect();
        let t: Vec<&str> = tgt.split_whitespace().collect();
        Encoded::new(v, &s, &t, cfg)
    }

    #[test]
    fn padding_masks_and_decoder_shift() {
        let v = vocab();
        let cfg = BatchConfig {
            max_tgt_len: 3,
            ..Default::default()
        };
        let data = vec![
            enc(&v, "a b zz", "b zz", &cfg),
            enc(&v, "c", "a b c d", &cfg),
        ];
        let b = Batch::new(&data, &[0, 1]);
        let (a, bb, c, zz) = (v.id("a"), v.id("b"), v.id("c"), v.len() as u32);
        assert_eq!((b.src_len, b.tgt_len, b.batch), (3, 4, 2));
        assert_eq!(b.src, vec![a, c, bb, PAD, UNK, PAD]);
        assert_eq!(b.src_ext, vec![a, c, bb, PAD, zz, PAD]);
        assert_eq!(b.src_mask, vec![1.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(b.src_lengths, vec![3, 1]);
        // Example 0: "b zz" + </s>; example 1 cut to "a b c", so no </s>.
        assert_eq!(b.dec_in, vec![BOS, BOS, bb, a, UNK, bb, PAD, c]);
        assert_eq!(b.dec_out, vec![bb, a, UNK, bb, EOS, c, PAD, PAD]);
        assert_eq!(b.dec_out_ext, vec![bb, a, zz, bb, EOS, c, PAD, PAD]);
        assert_eq!(b.tgt_lengths, vec![3, 3]);
        assert_eq!(b.tgt_mask, vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(b.max_oovs, 1);
    }

    #[test]
    fn plan_is_deterministic_covers_everything_and_buckets() {
        let v = vocab();
        let cfg = BatchConfig {
            batch_size: 4,
            pool_batches: 5,
            seed: 9,
            ..Default::default()
        };
        let data: Vec<Encoded> = (0..50)
            .map(|i| enc(&v, &"a ".repeat(1 + (i * 7) % 23), "b", &cfg))
            .collect();
        let p1 = plan(&data, &cfg);
        assert_eq!(p1, plan(&data, &cfg));
        assert_ne!(p1, plan(&data, &BatchConfig { seed: 10, ..cfg }));
        let mut all: Vec<usize> = p1.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        // Bucketing pads less than random batches.
        let pad = |p: &[Vec<usize>]| -> usize {
            p.iter()
                .map(|b| {
                    let m = b.iter().map(|&i| data[i].src.len()).max().unwrap();
                    b.iter().map(|&i| m - data[i].src.len()).sum::<usize>()
                })
                .sum()
        };
        assert!(
            pad(&p1)
                < pad(&plan(
                    &data,
                    &BatchConfig {
                        pool_batches: 1,
                        ..cfg
                    }
                ))
        );
    }
}
