//! Beam search on hand-built log-probability tables (as OpenNMT's beam tests do).

use abridge_decode::{
    beam_search, beam_search_observed, greedy, BeamConfig, Candidate, CoveragePenalty, Fate,
    LengthPenalty, Observer, StepModel, StepOutput,
};

const BOS: u32 = 1;
const EOS: u32 = 2;
const V: usize = 6;

/// A model whose next-token distribution is a function of the prefix; it keeps the prefixes of
/// the live hypotheses, reordered by `parents` as a real decoder state would be.
type AttentionFn = Box<dyn Fn(&[u32]) -> Vec<f32>>;

struct Table<F: Fn(&[u32]) -> [f32; V]> {
    prefixes: Vec<Vec<u32>>,
    probs: F,
    attention: Option<AttentionFn>,
}

impl<F: Fn(&[u32]) -> [f32; V]> Table<F> {
    fn new(probs: F) -> Self {
        Self {
            prefixes: vec![vec![]],
            probs,
            attention: None,
        }
    }
}

impl<F: Fn(&[u32]) -> [f32; V]> StepModel for Table<F> {
    fn step(&mut self, parents: &[usize], tokens: &[u32]) -> StepOutput {
        let prev = std::mem::take(&mut self.prefixes);
        self.prefixes = parents
            .iter()
            .zip(tokens)
            .map(|(&p, &t)| {
                let mut x = prev.get(p).cloned().unwrap_or_default();
                if t != BOS {
                    x.push(t);
                }
                x
            })
            .collect();
        let mut out = StepOutput::default();
        for p in &self.prefixes {
            out.log_probs.extend((self.probs)(p).iter().map(|x| x.ln()));
            if let Some(a) = &self.attention {
                out.attention.extend(a(p));
            }
        }
        out
    }
    fn vocab(&self) -> usize {
        V
    }
}

fn cfg(beam: usize) -> BeamConfig {
    BeamConfig {
        beam,
        bos: BOS,
        eos: EOS,
        max_len: 10,
        ..Default::default()
    }
}

#[test]
fn beam_finds_the_sequence_greedy_misses() {
    // First step: 3 (0.5) beats 4 (0.4); after 3 everything is flat, after 4 </s> is 0.9.
    let probs = |p: &[u32]| match p {
        [] => [0.0, 0.0, 0.05, 0.5, 0.4, 0.05],
        [3, ..] => [0.0, 0.0, 0.25, 0.25, 0.25, 0.25],
        _ => [0.0, 0.0, 0.9, 0.05, 0.0, 0.05],
    };
    let g = greedy(&mut Table::new(probs), &cfg(1));
    assert_eq!(g.tokens[0], 3);
    let b = beam_search(&mut Table::new(probs), &cfg(2));
    assert_eq!(b[0].tokens, vec![4]);
    assert!(b[0].ended);
    assert!((b[0].log_prob - (0.4f64 * 0.9).ln()).abs() < 1e-6);
    assert!(b.windows(2).all(|w| w[0].score >= w[1].score), "best first");
}

#[test]
fn eos_is_forbidden_before_min_length() {
    let probs = |_: &[u32]| [0.0, 0.0, 0.9, 0.1, 0.0, 0.0];
    let short = beam_search(&mut Table::new(probs), &cfg(2));
    assert!(short[0].tokens.is_empty() && short[0].ended);
    let c = BeamConfig {
        min_len: 3,
        ..cfg(2)
    };
    let b = beam_search(&mut Table::new(probs), &c);
    assert_eq!(b[0].tokens, vec![3, 3, 3]);
    assert!(b[0].ended);
    let g = greedy(&mut Table::new(probs), &c);
    assert_eq!(g.tokens, vec![3, 3, 3]);
}

#[test]
fn repeated_ngrams_are_blocked() {
    // The model loves to say "3 4 3 4 ...".
    let probs = |p: &[u32]| {
        if p.last() == Some(&3) {
            [0.0, 0.0, 0.01, 0.01, 0.9, 0.08]
        } else {
            [0.0, 0.0, 0.01, 0.9, 0.01, 0.08]
        }
    };
    let c = BeamConfig {
        block_ngram: 2,
        max_len: 6,
        ..cfg(3)
    };
    let b = beam_search(&mut Table::new(probs), &c);
    for h in &b {
        let bigrams: Vec<_> = h.tokens.windows(2).collect();
        let mut uniq = bigrams.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(
            uniq.len(),
            bigrams.len(),
            "repeated bigram in {:?}",
            h.tokens
        );
    }
    // Greedy: "3 4 3", then 4 would repeat (3, 4): the next best, 5.
    let g = greedy(&mut Table::new(probs), &c);
    assert_eq!(&g.tokens[..4], &[3, 4, 3, 5]);
}

#[test]
fn blocking_never_leaves_a_hypothesis_without_a_token() {
    // Only token 3 is possible, and after "3 3" the bigram (3, 3) is blocked: fall back, don't stop.
    let probs = |_: &[u32]| [0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let c = BeamConfig {
        block_ngram: 2,
        max_len: 5,
        ..cfg(2)
    };
    let b = beam_search(&mut Table::new(probs), &c);
    assert_eq!(b[0].tokens, vec![3; 5]);
    assert!(!b[0].ended, "finished by the length limit");
    assert_eq!(greedy(&mut Table::new(probs), &c).tokens, vec![3; 5]);
}

#[test]
fn beam_of_one_is_greedy() {
    // Pseudo-random tables as a function of the prefix.
    for seed in 0..50u64 {
        let probs = move |p: &[u32]| {
            let mut h = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for &t in p {
                h = (h ^ t as u64).wrapping_mul(0x100_0000_01B3);
            }
            let mut row = [0.0f32; V];
            for x in row.iter_mut().skip(2) {
                h = h
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *x = 0.05 + ((h >> 40) % 1000) as f32 / 1000.0;
            }
            let z: f32 = row.iter().sum();
            row.map(|x| x / z)
        };
        for c in [
            cfg(1),
            BeamConfig {
                min_len: 2,
                block_ngram: 2,
                ..cfg(1)
            },
        ] {
            let g = greedy(&mut Table::new(probs), &c);
            let b = beam_search(&mut Table::new(probs), &c);
            assert_eq!(b[0].tokens, g.tokens, "seed {seed}");
            assert!((b[0].log_prob - g.log_prob).abs() < 1e-9);
        }
    }
}

#[test]
fn length_normalisation_stops_favouring_short_outputs() {
    // Ending now: 0.45 (log −0.80). Going on: 0.55 · 0.8³ · 0.9 (log −1.37 over 5 tokens).
    let probs = |p: &[u32]| match p.len() {
        0 => [0.0, 0.0, 0.45, 0.55, 0.0, 0.0],
        1..=3 => [0.0, 0.0, 0.2, 0.8, 0.0, 0.0],
        _ => [0.0, 0.0, 0.9, 0.1, 0.0, 0.0],
    };
    let raw = beam_search(&mut Table::new(probs), &cfg(2));
    assert!(
        raw[0].tokens.is_empty(),
        "without normalisation the empty summary wins: {:?}",
        raw[0]
    );
    let avg = beam_search(
        &mut Table::new(probs),
        &BeamConfig {
            length_penalty: LengthPenalty::Average,
            ..cfg(2)
        },
    );
    assert_eq!(avg[0].tokens.len(), 4, "{avg:?}");
    let gnmt = beam_search(
        &mut Table::new(probs),
        &BeamConfig {
            length_penalty: LengthPenalty::Gnmt(2.0),
            ..cfg(2)
        },
    );
    assert_eq!(gnmt[0].tokens.len(), 4, "{gnmt:?}");
}

#[test]
fn summary_coverage_penalty_prefers_hypotheses_that_do_not_re_attend() {
    // Two equally likely continuations; token 3 attends source word 0 again, token 4 attends word 1.
    let probs = |p: &[u32]| match p.len() {
        0 => [0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        1 => [0.0, 0.0, 0.0, 0.5, 0.5, 0.0],
        _ => [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    };
    let mut m = Table::new(probs);
    m.attention = Some(Box::new(|p: &[u32]| match p.last() {
        Some(4) => vec![0.0, 1.0],
        _ => vec![1.0, 0.0],
    }));
    let c = BeamConfig {
        coverage_penalty: CoveragePenalty::Summary(1.0),
        ..cfg(2)
    };
    let b = beam_search(&mut m, &c);
    assert_eq!(b[0].tokens, vec![3, 4], "{b:?}");
}

/// Records every step's candidates; stops after `stop_after` steps.
struct Recorder {
    steps: Vec<Vec<Candidate>>,
    stop_after: usize,
}

impl Observer for Recorder {
    fn step(&mut self, step: usize, c: &[Candidate]) -> bool {
        assert_eq!(step, self.steps.len());
        self.steps.push(c.to_vec());
        self.steps.len() < self.stop_after
    }
}

#[test]
fn the_observer_sees_kept_finished_and_pruned_candidates_with_their_penalties() {
    let probs = |p: &[u32]| match p {
        [] => [0.0, 0.0, 0.05, 0.5, 0.4, 0.05],
        [3, ..] => [0.0, 0.0, 0.25, 0.25, 0.25, 0.25],
        _ => [0.0, 0.0, 0.9, 0.05, 0.0, 0.05],
    };
    let c = BeamConfig {
        length_penalty: LengthPenalty::Average,
        ..cfg(2)
    };
    let mut rec = Recorder {
        steps: vec![],
        stop_after: usize::MAX,
    };
    let (hyps, stopped) = beam_search_observed(&mut Table::new(probs), &c, &mut rec);
    assert!(!stopped);
    assert_eq!(hyps, beam_search(&mut Table::new(probs), &c));
    let first = &rec.steps[0];
    // Step 0: two candidates from the one start hypothesis, both kept, best first.
    assert_eq!(first.len(), 2);
    assert_eq!((first[0].token, first[0].fate), (3, Fate::Kept(0)));
    assert_eq!((first[1].token, first[1].fate), (4, Fate::Kept(1)));
    for s in &rec.steps {
        for x in s {
            assert!((x.score - (x.log_prob / x.length_penalty - x.coverage_penalty)).abs() < 1e-12);
        }
        assert!(s.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(s.iter().filter(|x| matches!(x.fate, Fate::Kept(_))).count() <= 2);
    }
    // Step 1: 4 → </s> finishes and ends the search.
    let last = rec.steps.last().unwrap();
    assert_eq!(
        (last[0].parent, last[0].token, last[0].fate),
        (1, EOS, Fate::Finished)
    );
}

#[test]
fn an_observer_can_stop_the_search_and_get_the_live_hypotheses() {
    let probs = |_: &[u32]| [0.0, 0.0, 0.01, 0.5, 0.49, 0.0];
    let mut rec = Recorder {
        steps: vec![],
        stop_after: 3,
    };
    let (hyps, stopped) = beam_search_observed(&mut Table::new(probs), &cfg(2), &mut rec);
    assert!(stopped);
    assert_eq!(rec.steps.len(), 3);
    // Two live hypotheses × two extensions each: two kept, two pruned.
    let fates: Vec<Fate> = rec.steps[1].iter().map(|x| x.fate).collect();
    assert_eq!(
        fates,
        [Fate::Kept(0), Fate::Kept(1), Fate::Pruned, Fate::Pruned]
    );
    assert!(!hyps.is_empty());
    assert!(hyps.iter().all(|h| !h.ended && h.tokens.len() == 3));
}
