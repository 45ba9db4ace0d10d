//! Content selection (Gehrmann, Deng & Rush 2018, "Bottom-Up Abstractive Summarization"): a
//! bidirectional recurrent tagger that gives every source token the probability `q_i` that a
//! summary copies it. At decoding time the pointer's copy distribution is restricted to tokens
//! with `q_i ≥ ε` (see [`crate::Stepper::with_copy_mask`]); alone, it ranks sentences for an
//! extractive summary.
//!
//! Shapes (time-major, like the summarizer's encoder), `S` source steps, `B` documents:
//!
//! ```text
//! x = E[ids]                 [S, B, E]      E: [V, E] embedding table (input "words")
//!   or x = f                 [S, B, F]      given features (input "features": the
//!                                           summarizer's encoder states, F = 2H)
//! h = BiRNN(x, lengths)      [S, B, 2H]     LSTM or GRU, L layers, both directions
//! z = h w + b                [S, B]         w: [1, 2H], b: [1]
//! q = σ(z)                   [S, B]
//! ```
//!
//! Loss: the mean binary cross-entropy over the positions inside each document's length `N`,
//! `L = −(1/N) Σ [y log q + (1 − y) log(1 − q)]`, so `∂L/∂z = (q − y) / N` (0 past a length).
//! Backward: `δw = Σ δz h`, `δb = Σ δz`, `δh = δz w` → BPTT through the stack → `δx`, whose rows
//! are added into the rows of `δE` their ids name.
//!
//! Labels ([`copy_labels`]) follow the paper's alignment of the reference to the source.

use abridge_nn::{CellKind, Rnn, RnnCache, RnnConfig, RnnError, RnnGradOut, RnnInput, RnnParams};
use abridge_tensor::{Float, Rng};

use crate::Linear;

/// Sizes of a selector. `vocab` must be the summarizer's vocabulary (ids are shared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SelectorConfig {
    pub cell: CellKind,
    pub vocab: usize,
    pub emb: usize,
    pub hidden: usize,
    pub layers: usize,
    /// `F > 0`: the tagger reads `F` given features per token (the summarizer's encoder states)
    /// instead of its own word embeddings (then absent); 0: word embeddings of size `emb`.
    #[serde(default)]
    pub features: usize,
}

impl SelectorConfig {
    /// Width of a token's input to the stack.
    pub fn input_size(&self) -> usize {
        if self.features > 0 {
            self.features
        } else {
            self.emb
        }
    }

    fn rnn(&self) -> RnnConfig {
        RnnConfig::new(self.cell, self.input_size(), self.hidden)
            .with_layers(self.layers)
            .with_bidirectional(true)
    }

    /// Sizes that cannot build a selector, named.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v, max) in [
            ("vocab", self.vocab, 10_000_000),
            ("emb", self.emb, 4096),
            ("hidden", self.hidden, 4096),
            ("layers", self.layers, 8),
            ("input", self.input_size(), 8192),
        ] {
            if v == 0 || v > max {
                return Err(format!("selector `{name}` is {v}, outside 1..={max}"));
            }
        }
        Ok(())
    }
}

/// The tagger's parameters (the same struct holds their gradients).
#[derive(Clone, Debug)]
pub struct Selector<T> {
    pub cfg: SelectorConfig,
    /// `[V, E]` (empty with feature input)
    pub embedding: Vec<T>,
    /// Bidirectional `E → H` stack, `L` layers.
    pub rnn: Rnn<T>,
    /// `2H → 1`.
    pub out: Linear<T>,
}

/// What can be wrong with a selector's batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("selector: `{what}` has {got} entries, expected {expected}")]
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("selector: id {id} is outside the vocabulary of {limit}")]
    Id { id: u32, limit: usize },
    #[error("selector: length {len} of document {index} exceeds the {steps} steps of the batch")]
    Length {
        index: usize,
        len: usize,
        steps: usize,
    },
    #[error("selector: backward without a forward pass")]
    NoForward,
    #[error(transparent)]
    Rnn(#[from] RnnError),
}

/// A batch: ids `[S, B]` time-major (anything past a document's length is ignored), and with
/// feature input the features `[S, B, F]`.
#[derive(Clone, Copy, Debug)]
pub struct SelectorBatch<'a, T> {
    pub ids: &'a [u32],
    pub features: Option<&'a [T]>,
    pub steps: usize,
    pub batch: usize,
    pub lengths: &'a [usize],
}

/// Buffers of one forward pass, kept for backward and reused across calls.
pub struct SelectorCache<T> {
    x: Vec<T>,
    rnn: RnnCache<T>,
    /// `[S, B]` logits.
    z: Vec<T>,
    dh: Vec<T>,
    ids: Vec<u32>,
    lengths: Vec<usize>,
    steps: usize,
    batch: usize,
    live: bool,
}

impl<T: Float> Default for SelectorCache<T> {
    fn default() -> Self {
        Self {
            x: Vec::new(),
            rnn: RnnCache::new(),
            z: Vec::new(),
            dh: Vec::new(),
            ids: Vec::new(),
            lengths: Vec::new(),
            steps: 0,
            batch: 0,
            live: false,
        }
    }
}

impl<T: Float> SelectorCache<T> {
    /// `[S, B]` logits of the last forward pass (meaningless past a length).
    pub fn logits(&self) -> &[T] {
        &self.z
    }

    /// Per document, `q_i = σ(z_i)` for the positions inside its length.
    pub fn probs(&self) -> Vec<Vec<f32>> {
        let b = self.batch;
        self.lengths
            .iter()
            .enumerate()
            .map(|(j, &len)| {
                (0..len)
                    .map(|i| self.z[i * b + j].sigmoid().to_f64() as f32)
                    .collect()
            })
            .collect()
    }
}

impl<T: Float> Selector<T> {
    /// Random initialisation: PyTorch's defaults for the layers, embeddings uniform in ±0.1.
    pub fn init(cfg: SelectorConfig, rng: &mut Rng) -> Self {
        let table = if cfg.features > 0 {
            0
        } else {
            cfg.vocab * cfg.emb
        };
        Self {
            cfg,
            embedding: (0..table)
                .map(|_| T::from_f64(rng.uniform(-0.1, 0.1)))
                .collect(),
            rnn: Rnn::new(RnnParams::init_uniform(cfg.rnn(), rng)),
            out: Linear::init(2 * cfg.hidden, 1, true, rng),
        }
    }

    /// Zeros of the same shapes (a gradient accumulator).
    pub fn zeros(cfg: SelectorConfig) -> Self {
        let table = if cfg.features > 0 {
            0
        } else {
            cfg.vocab * cfg.emb
        };
        Self {
            cfg,
            embedding: vec![T::ZERO; table],
            rnn: Rnn::new(RnnParams::zeros(cfg.rnn())),
            out: Linear::zeros(2 * cfg.hidden, 1, true),
        }
    }

    /// Every tensor as `(name, shape, values)` in a fixed order (file and optimizer order), under
    /// PyTorch-style names: `embedding.weight`, `rnn.weight_ih_l0_reverse`, `out.weight`, ….
    pub fn tensors_mut(&mut self) -> Vec<(String, Vec<usize>, &mut [T])> {
        let (v, e, h) = (self.cfg.vocab, self.cfg.emb, self.cfg.hidden);
        let mut out: Vec<(String, Vec<usize>, &mut [T])> = Vec::new();
        if !self.embedding.is_empty() {
            out.push((
                "embedding.weight".into(),
                vec![v, e],
                &mut self.embedding[..],
            ));
        }
        out.extend(
            self.rnn
                .params
                .tensors_mut()
                .into_iter()
                .map(|t| (format!("rnn.{}", t.name), t.shape, t.data)),
        );
        out.push(("out.weight".into(), vec![1, 2 * h], &mut self.out.w[..]));
        out.push(("out.bias".into(), vec![1], &mut self.out.b[..]));
        out
    }

    /// Sets every value to zero, keeping the allocations.
    pub fn fill_zero(&mut self) {
        for (_, _, t) in self.tensors_mut() {
            t.iter_mut().for_each(|x| *x = T::ZERO);
        }
    }

    /// Forward pass over a batch; the logits are in `cache.logits()`.
    pub fn forward(
        &self,
        b: &SelectorBatch<'_, T>,
        cache: &mut SelectorCache<T>,
    ) -> Result<(), SelectorError> {
        let (s, n, e, v) = (b.steps, b.batch, self.cfg.emb, self.cfg.vocab);
        let f = self.cfg.features;
        let shape = |what, expected, got| SelectorError::Shape {
            what,
            expected,
            got,
        };
        if b.ids.len() != s * n {
            return Err(shape("ids", s * n, b.ids.len()));
        }
        if b.lengths.len() != n {
            return Err(shape("lengths", n, b.lengths.len()));
        }
        if let Some((index, &len)) = b.lengths.iter().enumerate().find(|(_, &l)| l > s) {
            return Err(SelectorError::Length {
                index,
                len,
                steps: s,
            });
        }
        if let Some(&id) = b.ids.iter().find(|&&id| id as usize >= v) {
            return Err(SelectorError::Id { id, limit: v });
        }
        cache.x.clear();
        if f > 0 {
            let x = b.features.unwrap_or(&[]);
            if x.len() != s * n * f {
                return Err(shape("features", s * n * f, x.len()));
            }
            cache.x.extend_from_slice(x);
        } else {
            cache.x.reserve(s * n * e);
            for &id in b.ids {
                let id = id as usize;
                cache
                    .x
                    .extend_from_slice(&self.embedding[id * e..(id + 1) * e]);
            }
        }
        self.rnn.forward(
            &RnnInput {
                lengths: Some(b.lengths),
                ..RnnInput::new(&cache.x, s, n)
            },
            &mut cache.rnn,
        )?;
        cache.z.clear();
        cache.z.resize(s * n, T::ZERO);
        self.out.forward(cache.rnn.output(), s * n, &mut cache.z);
        cache.ids.clear();
        cache.ids.extend_from_slice(b.ids);
        cache.lengths.clear();
        cache.lengths.extend_from_slice(b.lengths);
        (cache.steps, cache.batch, cache.live) = (s, n, true);
        Ok(())
    }

    /// The mean binary cross-entropy of the last forward pass against `labels [S, B]` (1 =
    /// selected), and `∂L/∂z` (`[S, B]`, 0 past each length). A batch of no positions has loss 0.
    pub fn loss(cache: &SelectorCache<T>, labels: &[T]) -> Result<(f64, Vec<T>), SelectorError> {
        let (s, n) = (cache.steps, cache.batch);
        if labels.len() != s * n {
            return Err(SelectorError::Shape {
                what: "labels",
                expected: s * n,
                got: labels.len(),
            });
        }
        let count: usize = cache.lengths.iter().sum();
        let inv = 1.0 / count.max(1) as f64;
        let mut dz = vec![T::ZERO; s * n];
        let mut loss = 0.0;
        for (j, &len) in cache.lengths.iter().enumerate() {
            for i in 0..len {
                let (z, y) = (cache.z[i * n + j].to_f64(), labels[i * n + j].to_f64());
                // −[y log σ(z) + (1−y) log(1−σ(z))] = softplus(z) − y z, computed stably.
                loss += z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z;
                let q = 1.0 / (1.0 + (-z).exp());
                dz[i * n + j] = T::from_f64((q - y) * inv);
            }
        }
        Ok((loss * inv, dz))
    }

    /// Backward from `dz [S, B]` through the last forward pass (consumed); gradients are added to
    /// `grads`.
    pub fn backward(
        &self,
        cache: &mut SelectorCache<T>,
        dz: &[T],
        grads: &mut Selector<T>,
    ) -> Result<(), SelectorError> {
        if !cache.live {
            return Err(SelectorError::NoForward);
        }
        let (s, n, e, h2) = (cache.steps, cache.batch, self.cfg.emb, 2 * self.cfg.hidden);
        if dz.len() != s * n {
            return Err(SelectorError::Shape {
                what: "dz",
                expected: s * n,
                got: dz.len(),
            });
        }
        cache.live = false;
        cache.dh.clear();
        cache.dh.resize(s * n * h2, T::ZERO);
        self.out.backward(
            cache.rnn.output(),
            dz,
            s * n,
            &mut grads.out,
            Some(&mut cache.dh),
        );
        self.rnn.backward(
            &mut cache.rnn,
            &RnnGradOut {
                d_output: Some(&cache.dh),
                ..Default::default()
            },
            &mut grads.rnn.params,
        )?;
        if self.cfg.features > 0 {
            return Ok(());
        }
        let dx = cache.rnn.dx();
        for (j, &len) in cache.lengths.iter().enumerate() {
            for i in 0..len {
                let id = cache.ids[i * n + j] as usize;
                let row = &dx[(i * n + j) * e..(i * n + j + 1) * e];
                grads.embedding[id * e..(id + 1) * e]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(g, d)| *g += *d);
            }
        }
        Ok(())
    }

    /// Selection probabilities of each document (`docs[d]` non-empty vocabulary ids), encoded
    /// together; with feature input, `features` is `[S, D, F]` (`S` the longest document).
    pub fn predict(
        &self,
        docs: &[&[u32]],
        features: Option<&[T]>,
    ) -> Result<Vec<Vec<f32>>, SelectorError> {
        let n = docs.len();
        let s = docs.iter().map(|d| d.len()).max().unwrap_or(0);
        if n == 0 || s == 0 {
            return Ok(docs.iter().map(|_| Vec::new()).collect());
        }
        let mut ids = vec![0u32; s * n];
        for (j, d) in docs.iter().enumerate() {
            for (i, &id) in d.iter().enumerate() {
                ids[i * n + j] = id;
            }
        }
        let lengths: Vec<usize> = docs.iter().map(|d| d.len()).collect();
        let mut cache = SelectorCache::default();
        self.forward(
            &SelectorBatch {
                ids: &ids,
                features,
                steps: s,
                batch: n,
                lengths: &lengths,
            },
            &mut cache,
        )?;
        Ok(cache.probs())
    }
}

/// Which source tokens a reference copies: walking the reference left to right, at position
/// `j` take the longest run `reference[j..j+n]` that occurs contiguously in the source (the
/// earliest occurrence among equals), mark those `n` source tokens selected and continue at
/// `j + n`; a reference token found nowhere in the source is skipped. This is Gehrmann et al.'s
/// rule: a token is selected when it is part of the longest possible subsequence copied from the
/// source into the reference. One refinement: a run of a single token for which `trivial` holds
/// (a function word or punctuation mark, which any summary repeats) selects nothing, so the
/// labels mark content rather than the first `the` of the article.
pub fn copy_labels<S: PartialEq>(
    src: &[S],
    reference: &[S],
    trivial: impl Fn(&S) -> bool,
) -> Vec<bool> {
    let mut sel = vec![false; src.len()];
    let mut j = 0;
    while j < reference.len() {
        let (mut best, mut at) = (0, 0);
        for i in 0..src.len() {
            let mut k = 0;
            while i + k < src.len() && j + k < reference.len() && src[i + k] == reference[j + k] {
                k += 1;
            }
            if k > best {
                (best, at) = (k, i);
            }
        }
        if best == 0 {
            j += 1;
            continue;
        }
        if best > 1 || !trivial(&src[at]) {
            sel[at..at + best].iter_mut().for_each(|s| *s = true);
        }
        j += best;
    }
    sel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_take_the_longest_runs() {
        let src: Vec<&str> = "the cat sat on the mat . the dog sat on the cat"
            .split(' ')
            .collect();
        let r: Vec<&str> = "a dog sat on the mat today".split(' ').collect();
        // "dog sat on the" (4, at 8) is longer than any run through the first "sat on the";
        // then "mat" alone (at 5); "a" and "today" are not in the source.
        let got = copy_labels(&src, &r, |_| false);
        let want: Vec<usize> = vec![5, 8, 9, 10, 11];
        let sel: Vec<usize> = got
            .iter()
            .enumerate()
            .filter(|(_, &s)| s)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(sel, want);
        assert_eq!(copy_labels::<&str>(&[], &r, |_| false), Vec::<bool>::new());
        assert!(copy_labels(&src, &[], |_| false).iter().all(|&s| !s));
        // A lone trivial token selects nothing; inside a longer run it does.
        let t = copy_labels(&src, &r, |w| *w == "mat" || *w == "on");
        assert_eq!(t.iter().filter(|&&s| s).count(), 4, "{t:?}");
        assert!(t[10] && !t[5]);
    }
}
