//! Greedy and beam search.

use crate::penalties::{CoveragePenalty, LengthPenalty};

/// Scores of one step for every live hypothesis.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepOutput {
    /// `[K, V']` log-probabilities of the next token.
    pub log_probs: Vec<f32>,
    /// `[K, S]` attention over the source (empty when the model has none; coverage penalties then
    /// count as zero).
    pub attention: Vec<f32>,
    /// `[K]` the probability that each row's next token is generated rather than copied (a
    /// pointer-generator's `p_gen`; empty when the model has none). Carried into
    /// [`Hypothesis::p_gen`].
    pub p_gen: Vec<f32>,
}

/// A model the search can drive.
pub trait StepModel {
    /// Advances the hypotheses: hypothesis `k` of this step extends hypothesis `parents[k]` of the
    /// previous step (reorder the decoder state accordingly) with token `tokens[k]`. At the first
    /// call `parents = [0]` and `tokens = [bos]`.
    fn step(&mut self, parents: &[usize], tokens: &[u32]) -> StepOutput;
    /// `V'`, the width of a `log_probs` row.
    fn vocab(&self) -> usize;
}

/// Search settings.
#[derive(Clone, Debug, PartialEq)]
pub struct BeamConfig {
    /// `K` (1 = greedy).
    pub beam: usize,
    pub bos: u32,
    pub eos: u32,
    /// Fewest tokens before `</s>` may be chosen (not counting `</s>`).
    pub min_len: usize,
    /// Most tokens (not counting `</s>`); a hypothesis reaching it is finished.
    pub max_len: usize,
    pub length_penalty: LengthPenalty,
    pub coverage_penalty: CoveragePenalty,
    /// Forbid repeating any n-gram of this size within a hypothesis (0 = off).
    pub block_ngram: usize,
}

impl Default for BeamConfig {
    fn default() -> Self {
        Self {
            beam: 4,
            bos: 2,
            eos: 3,
            min_len: 0,
            max_len: 100,
            length_penalty: LengthPenalty::None,
            coverage_penalty: CoveragePenalty::None,
            block_ngram: 0,
        }
    }
}

/// A finished hypothesis.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// Tokens, without `<s>` and `</s>`.
    pub tokens: Vec<u32>,
    /// `Σ log P` of the tokens (and of `</s>` when it ended with one).
    pub log_prob: f64,
    /// The ranking score: `log_prob / lp − cp`.
    pub score: f64,
    /// Whether it ended with `</s>` (rather than at `max_len`).
    pub ended: bool,
    /// `p_gen` at the step that produced each token (empty when the model reports none).
    pub p_gen: Vec<f32>,
}

#[derive(Clone, Debug)]
struct Live {
    tokens: Vec<u32>,
    log_prob: f64,
    coverage: Vec<f32>,
    p_gen: Vec<f32>,
}

/// Tokens that would complete an n-gram already present in `tokens`.
fn blocked(tokens: &[u32], n: usize) -> Vec<u32> {
    match n {
        0 => Vec::new(),
        1 => tokens.to_vec(),
        _ if tokens.len() < n - 1 => Vec::new(),
        _ => {
            let prefix = &tokens[tokens.len() - (n - 1)..];
            (0..tokens.len() - (n - 1))
                .filter(|&i| &tokens[i..i + n - 1] == prefix)
                .map(|i| tokens[i + n - 1])
                .collect()
        }
    }
}

/// The step's row for one hypothesis with the length and n-gram rules applied. If the rules leave
/// no legal token, n-gram blocking is dropped for this step (the hypothesis is not cut short).
fn legal_row(row: &[f32], tokens: &[u32], cfg: &BeamConfig) -> Vec<f32> {
    let mut r = row.to_vec();
    if tokens.len() < cfg.min_len {
        if let Some(x) = r.get_mut(cfg.eos as usize) {
            *x = f32::NEG_INFINITY;
        }
    }
    let banned = blocked(tokens, cfg.block_ngram);
    if banned.is_empty() {
        return r;
    }
    let kept: Vec<(usize, f32)> = banned
        .iter()
        .filter_map(|&w| r.get(w as usize).map(|&x| (w as usize, x)))
        .collect();
    for &(w, _) in &kept {
        r[w] = f32::NEG_INFINITY;
    }
    if r.iter().all(|x| *x == f32::NEG_INFINITY) {
        // Blocking would leave nothing legal: lift it for this step.
        for &(w, x) in &kept {
            r[w] = x;
        }
    }
    r
}

fn finish(h: Live, eos_logp: Option<f32>, cfg: &BeamConfig) -> Hypothesis {
    let log_prob = h.log_prob + eos_logp.map_or(0.0, |x| x as f64);
    let len = h.tokens.len() + usize::from(eos_logp.is_some());
    let score = rank(log_prob, len, &h.coverage, cfg);
    Hypothesis {
        tokens: h.tokens,
        log_prob,
        score,
        ended: eos_logp.is_some(),
        p_gen: h.p_gen,
    }
}

fn add(cov: &[f32], attn: &[f32]) -> Vec<f32> {
    if cov.is_empty() {
        attn.to_vec()
    } else {
        cov.iter().zip(attn).map(|(a, b)| a + b).collect()
    }
}

/// The `k` best legal tokens of a hypothesis's row: [`top_k`] of [`legal_row`], without copying
/// the row (the rules remove a handful of tokens; they are looked up only for entries good
/// enough to enter the selection).
fn legal_top_k(row: &[f32], tokens: &[u32], cfg: &BeamConfig, k: usize) -> Vec<usize> {
    let eos = (tokens.len() < cfg.min_len).then_some(cfg.eos as usize);
    let banned = blocked(tokens, cfg.block_ngram);
    let best = top_k_where(row, k, |w| Some(w) != eos && !banned.contains(&(w as u32)));
    if best.is_empty() && !banned.is_empty() {
        // Blocking would leave nothing legal: lift it for this step.
        return top_k_where(row, k, |w| Some(w) != eos);
    }
    best
}

/// Indices of the `k` largest finite entries, largest first (ties: lower index first); a partial
/// selection, not a sort of the whole vocabulary.
#[cfg(test)]
fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    top_k_where(row, k, |_| true)
}

/// [`top_k`] among the entries whose index `allowed` accepts.
fn top_k_where(row: &[f32], k: usize, allowed: impl Fn(usize) -> bool) -> Vec<usize> {
    // One pass keeping the best `k` in order: a new entry only enters when it beats the current
    // `k`-th, which after the first few hundred entries is rare, so blocks of 16 whose maximum
    // does not beat it are skipped after a vectorisable maximum (NaN never beats anything).
    const L: usize = 16;
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (c, block) in row.chunks(L).enumerate() {
        if best.len() == k {
            let mut m = [f32::NEG_INFINITY; L];
            for (m, &x) in m.iter_mut().zip(block) {
                *m = if x > *m { x } else { *m };
            }
            let bar = row[best[k - 1]];
            if !m.iter().any(|&x| x > bar) {
                continue;
            }
        }
        for (i, &x) in block.iter().enumerate() {
            let w = c * L + i;
            if x == f32::NEG_INFINITY || x.is_nan() {
                continue;
            }
            if best.len() == k && x <= row[best[k - 1]] {
                continue;
            }
            if !allowed(w) {
                continue;
            }
            // After the last entry ≥ x: equal values keep index order.
            let at = best.partition_point(|&b| row[b] >= x);
            best.insert(at, w);
            best.truncate(k);
        }
    }
    best
}

/// The ranking score of a hypothesis of `len` tokens: `log_prob / lp(len) − cp(coverage)`.
fn rank(log_prob: f64, len: usize, coverage: &[f32], cfg: &BeamConfig) -> f64 {
    log_prob / cfg.length_penalty.lp(len) - cfg.coverage_penalty.cp(coverage)
}

/// One candidate extension considered at a search step, as an [`Observer`] sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Index of the extended hypothesis among the step's live ones.
    pub parent: usize,
    pub token: u32,
    /// `log P` of `token` given the hypothesis.
    pub token_log_prob: f32,
    /// `Σ log P` of the extended hypothesis.
    pub log_prob: f64,
    /// The length penalty divisor `lp(|Y|)` applied to `log_prob`.
    pub length_penalty: f64,
    /// The coverage penalty `cp` subtracted.
    pub coverage_penalty: f64,
    /// `log_prob / length_penalty − coverage_penalty`.
    pub score: f64,
    /// What the search did with it.
    pub fate: Fate,
}

/// What became of a [`Candidate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Kept alive for the next step (its index there).
    Kept(usize),
    /// Finished (with `</s>` or at `max_len`).
    Finished,
    /// Ranked below the beam.
    Pruned,
}

/// Watches a search step by step, and may stop it (e.g. at a deadline).
pub trait Observer {
    /// Called after each step with every candidate considered, best first. Returning `false`
    /// stops the search: the live hypotheses are then returned as unfinished ones.
    fn step(&mut self, step: usize, candidates: &[Candidate]) -> bool;
}

/// Observes nothing and never stops.
impl Observer for () {
    fn step(&mut self, _: usize, _: &[Candidate]) -> bool {
        true
    }
}

/// Beam search; returns the finished hypotheses, best first (at least one).
///
/// Each step extends every live hypothesis by its `K` best legal tokens and keeps the `K` best
/// candidates by ranking score (length- and coverage-penalised, so the beam itself is not biased
/// towards short outputs); a candidate ending in `</s>` is finished. The search stops when the
/// best candidate of a step is a finished one, or at `max_len`.
pub fn beam_search<M: StepModel>(model: &mut M, cfg: &BeamConfig) -> Vec<Hypothesis> {
    beam_search_observed(model, cfg, &mut ()).0
}

/// [`beam_search`] reporting every step to `obs`; the flag is `true` when `obs` stopped it.
pub fn beam_search_observed<M: StepModel, O: Observer + ?Sized>(
    model: &mut M,
    cfg: &BeamConfig,
    obs: &mut O,
) -> (Vec<Hypothesis>, bool) {
    let mut beam = Beam::new(cfg);
    while !beam.done {
        let out = model.step(&beam.parents, &beam.last);
        let v = model.vocab();
        let rows = beam.parents.len();
        let s = out.attention.len() / rows;
        beam.advance(&out.log_probs, v, &out.attention, s, &out.p_gen, cfg, obs);
    }
    beam.into_result()
}

/// Beam search over several documents at once, batched: every step advances the live hypotheses
/// of all unfinished documents in one [`StepModel::step`], so the model's products run over all
/// their rows together (throughput; each document's search is exactly [`beam_search`]'s).
///
/// The model starts with one row per document (document `d` is row `d`), and rows keep their
/// document through `parents`; `src_lens[d]` is document `d`'s source length (attention rows are
/// cut to it before the coverage penalty sees them). Returns each document's hypotheses, best first.
pub fn beam_search_batch<M: StepModel>(
    model: &mut M,
    src_lens: &[usize],
    cfg: &BeamConfig,
) -> Vec<Vec<Hypothesis>> {
    let mut beams: Vec<Beam> = src_lens.iter().map(|_| Beam::new(cfg)).collect();
    // Row of the model's last output where each document's hypotheses start.
    let mut start: Vec<usize> = (0..src_lens.len()).collect();
    loop {
        let (mut parents, mut tokens, mut segs) = (Vec::new(), Vec::new(), Vec::new());
        for (d, b) in beams.iter().enumerate().filter(|(_, b)| !b.done) {
            segs.push((d, parents.len(), b.parents.len()));
            parents.extend(b.parents.iter().map(|&p| start[d] + p));
            tokens.extend_from_slice(&b.last);
        }
        if segs.is_empty() {
            break;
        }
        let out = model.step(&parents, &tokens);
        let v = model.vocab();
        let s_all = out.attention.len() / parents.len();
        for (d, row0, n) in segs {
            let s = if s_all == 0 {
                0
            } else {
                src_lens[d].min(s_all)
            };
            let attention: Vec<f32> = (row0..row0 + n)
                .flat_map(|r| out.attention[r * s_all..r * s_all + s].iter().copied())
                .collect();
            let lp = &out.log_probs[row0 * v..(row0 + n) * v];
            let pg = out.p_gen.get(row0..row0 + n).unwrap_or(&[]);
            beams[d].advance(lp, v, &attention, s, pg, cfg, &mut ());
            start[d] = row0;
        }
    }
    beams.into_iter().map(|b| b.into_result().0).collect()
}

/// One document's search: live hypotheses, finished ones, and what the next step extends.
struct Beam {
    alive: Vec<Live>,
    /// Per live hypothesis, its row in the last step's output and its last token.
    parents: Vec<usize>,
    last: Vec<u32>,
    finished: Vec<Hypothesis>,
    step: usize,
    done: bool,
    stopped: bool,
}

impl Beam {
    fn new(cfg: &BeamConfig) -> Self {
        Self {
            alive: vec![Live {
                tokens: Vec::new(),
                log_prob: 0.0,
                coverage: Vec::new(),
                p_gen: Vec::new(),
            }],
            parents: vec![0],
            last: vec![cfg.bos],
            finished: Vec::new(),
            step: 0,
            done: false,
            stopped: false,
        }
    }

    /// One step, given this document's rows of the model output: `log_probs [K, v]` and
    /// `attention [K, s]` (`s` = 0 without attention), `p_gen [K]` (or empty).
    #[allow(clippy::too_many_arguments)]
    fn advance<O: Observer + ?Sized>(
        &mut self,
        log_probs: &[f32],
        v: usize,
        attention: &[f32],
        s: usize,
        p_gen: &[f32],
        cfg: &BeamConfig,
        obs: &mut O,
    ) {
        let k = cfg.beam.max(1);
        let alive = &self.alive;
        // Candidates: the best k legal extensions of every live hypothesis.
        struct Cand {
            score: f64,
            hyp: usize,
            token: u32,
            log_prob: f32,
            coverage: Vec<f32>,
            lp: f64,
            cp: f64,
        }
        let mut cands: Vec<Cand> = Vec::new();
        for (hi, h) in alive.iter().enumerate() {
            let row = &log_probs[hi * v..(hi + 1) * v];
            let idx = legal_top_k(row, &h.tokens, cfg, k);
            let attn = if s == 0 {
                &[][..]
            } else {
                &attention[hi * s..(hi + 1) * s]
            };
            let coverage = add(&h.coverage, attn);
            for w in idx {
                let total = h.log_prob + row[w] as f64;
                let lp = cfg.length_penalty.lp(h.tokens.len() + 1);
                let cp = cfg.coverage_penalty.cp(&coverage);
                cands.push(Cand {
                    score: total / lp - cp,
                    hyp: hi,
                    token: w as u32,
                    log_prob: row[w],
                    coverage: coverage.clone(),
                    lp,
                    cp,
                });
            }
        }
        cands.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.hyp.cmp(&b.hyp))
                .then(a.token.cmp(&b.token))
        });
        let top_finished = cands.first().is_some_and(|c| c.token == cfg.eos);
        let mut next = Vec::new();
        let (mut next_parents, mut next_last) = (Vec::new(), Vec::new());
        let mut seen: Vec<Candidate> = Vec::with_capacity(cands.len());
        for c in cands {
            let h = &alive[c.hyp];
            seen.push(Candidate {
                parent: c.hyp,
                token: c.token,
                token_log_prob: c.log_prob,
                log_prob: h.log_prob + c.log_prob as f64,
                length_penalty: c.lp,
                coverage_penalty: c.cp,
                score: c.score,
                fate: Fate::Pruned,
            });
            if next.len() == k {
                continue;
            }
            let fate = &mut seen.last_mut().expect("just pushed").fate;
            if c.token == cfg.eos {
                *fate = Fate::Finished;
                self.finished.push(finish(
                    Live {
                        tokens: h.tokens.clone(),
                        log_prob: h.log_prob,
                        coverage: c.coverage,
                        p_gen: h.p_gen.clone(),
                    },
                    Some(c.log_prob),
                    cfg,
                ));
            } else {
                let mut tokens = h.tokens.clone();
                tokens.push(c.token);
                let mut pg = h.p_gen.clone();
                pg.extend(p_gen.get(c.hyp));
                if tokens.len() >= cfg.max_len {
                    // At the length limit: finished without `</s>`.
                    *fate = Fate::Finished;
                    self.finished.push(finish(
                        Live {
                            tokens,
                            log_prob: h.log_prob + c.log_prob as f64,
                            coverage: c.coverage,
                            p_gen: pg,
                        },
                        None,
                        cfg,
                    ));
                    continue;
                }
                *fate = Fate::Kept(next.len());
                next.push(Live {
                    tokens,
                    log_prob: h.log_prob + c.log_prob as f64,
                    coverage: c.coverage,
                    p_gen: pg,
                });
                next_parents.push(c.hyp);
                next_last.push(c.token);
            }
        }
        let go_on = obs.step(self.step, &seen);
        self.step += 1;
        if top_finished || next.is_empty() {
            self.done = true;
            return;
        }
        self.alive = next;
        self.parents = next_parents;
        self.last = next_last;
        if !go_on {
            self.stopped = true;
            self.done = true;
            let cfg_alive = std::mem::take(&mut self.alive);
            self.finished
                .extend(cfg_alive.into_iter().map(|h| finish(h, None, cfg)));
        }
    }

    fn into_result(mut self) -> (Vec<Hypothesis>, bool) {
        self.finished.sort_by(|a, b| b.score.total_cmp(&a.score));
        (self.finished, self.stopped)
    }
}

/// Greedy search: the most probable legal token at every step.
pub fn greedy<M: StepModel>(model: &mut M, cfg: &BeamConfig) -> Hypothesis {
    let v = model.vocab();
    let mut h = Live {
        tokens: Vec::new(),
        log_prob: 0.0,
        coverage: Vec::new(),
        p_gen: Vec::new(),
    };
    let mut last = cfg.bos;
    loop {
        let out = model.step(&[0], &[last]);
        let row = legal_row(&out.log_probs[..v], &h.tokens, cfg);
        let w = (0..v).fold(0, |best, w| if row[w] > row[best] { w } else { best });
        h.coverage = add(&h.coverage, &out.attention);
        if w as u32 == cfg.eos {
            return finish(h, Some(row[w]), cfg);
        }
        h.tokens.push(w as u32);
        h.p_gen.extend(out.p_gen.first());
        h.log_prob += row[w] as f64;
        if h.tokens.len() >= cfg.max_len {
            return finish(h, None, cfg);
        }
        last = w as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_selects_in_order_with_ties_by_index() {
        let row = [0.1, f32::NEG_INFINITY, 0.5, 0.5, -1.0, 0.3];
        assert_eq!(top_k(&row, 3), vec![2, 3, 5]);
        assert_eq!(top_k(&row, 10), vec![2, 3, 5, 0, 4]);
        assert_eq!(top_k(&row, 1), vec![2]);
    }

    /// A small deterministic generator of `u32`s for the randomised tests.
    fn lcg(mut x: u64) -> impl FnMut() -> u32 {
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u32
        }
    }

    /// The one-pass selection against a full sort, on rows with ties, −∞ and NaN.
    #[test]
    fn top_k_equals_sorting_the_finite_entries() {
        let mut next = lcg(12345);
        for _ in 0..500 {
            // Up to 13 blocks of 16, so that whole blocks are skipped.
            let n = 1 + next() as usize % 200;
            let row: Vec<f32> = (0..n)
                .map(|_| match next() % 10 {
                    0 => f32::NEG_INFINITY,
                    1 => f32::NAN,
                    v => (v % 4) as f32 * 0.5 - (next() % 3) as f32,
                })
                .collect();
            let k = 1 + next() as usize % 8;
            let mut want: Vec<usize> = (0..n)
                .filter(|&w| row[w] > f32::NEG_INFINITY && !row[w].is_nan())
                .collect();
            want.sort_by(|a, b| row[*b].total_cmp(&row[*a]).then(a.cmp(b)));
            want.truncate(k);
            assert_eq!(top_k(&row, k), want, "{row:?} k={k}");
        }
    }

    /// The selection that skips the rules' tokens against selecting from the rewritten row,
    /// min length and n-gram blocking on, including rows where blocking must be lifted.
    #[test]
    fn legal_top_k_equals_top_k_of_the_legal_row() {
        let mut next = lcg(777);
        let mut lifted = 0;
        for _ in 0..2000 {
            let n = 4 + next() as usize % 100;
            let sparse = next().is_multiple_of(4); // few finite entries: blocking may leave none
            let row: Vec<f32> = (0..n)
                .map(|_| {
                    if sparse && !next().is_multiple_of(8) {
                        f32::NEG_INFINITY
                    } else {
                        -((next() % 50) as f32) * 0.25
                    }
                })
                .collect();
            let tokens: Vec<u32> = (0..next() % 12).map(|_| next() % 6).collect();
            let cfg = BeamConfig {
                eos: next() % 6,
                min_len: next() as usize % 10,
                block_ngram: next() as usize % 4,
                ..Default::default()
            };
            let k = 1 + next() as usize % 6;
            let legal = legal_row(&row, &tokens, &cfg);
            let want = top_k(&legal, k);
            assert_eq!(
                legal_top_k(&row, &tokens, &cfg, k),
                want,
                "{row:?} {tokens:?}"
            );
            let banned = blocked(&tokens, cfg.block_ngram);
            lifted +=
                usize::from(!want.is_empty() && want.iter().any(|w| banned.contains(&(*w as u32))));
        }
        assert!(lifted > 0, "no row needed blocking lifted");
    }

    #[test]
    fn blocked_tokens_complete_repeated_ngrams() {
        assert_eq!(blocked(&[5, 6, 7, 5, 6], 3), vec![7]);
        assert_eq!(blocked(&[5, 6, 5], 2), vec![6]);
        assert_eq!(blocked(&[5, 6], 3), Vec::<u32>::new());
        assert_eq!(blocked(&[4, 4], 1), vec![4, 4]);
        assert_eq!(blocked(&[1, 2, 3], 0), Vec::<u32>::new());
    }
}
