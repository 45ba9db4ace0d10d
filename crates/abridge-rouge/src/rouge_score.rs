//! The `rouge-score` flavour: Google's rouge-score 0.1.2, as HF `evaluate` uses it.
//!
//! * ROUGE-N: clipped n-gram overlap over the whole token sequence, `P = hits / max(#hyp n-grams, 1)`,
//!   `R = hits / max(#ref n-grams, 1)`, `F = 2PR / (P + R)` (0 when `P + R = 0`).
//! * rougeL: one LCS over the whole texts; `P = LCS/|hyp|`, `R = LCS/|ref|`; 0 if either is empty.
//! * rougeLsum: sentences split on `\n` only (empty ones dropped), union LCS per reference sentence,
//!   hits clipped by whole-text unigram counts ([`crate::lcs::union_lcs_hits`]).
//! * Several references: per type, the reference with the highest F (the first on a tie).

use crate::intern::{with_interner, Interner};
use crate::lcs::{lcs_len, union_lcs_hits};
use crate::stem::nltk_stem;
use crate::tokenize::rouge_score_words;

/// One ROUGE type of this flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RougeType {
    /// `rouge{n}`, n ≥ 1.
    N(usize),
    /// `rougeL`
    L,
    /// `rougeLsum`
    Lsum,
}

impl RougeType {
    pub fn name(&self) -> String {
        match self {
            RougeType::N(n) => format!("rouge{n}"),
            RougeType::L => "rougeL".into(),
            RougeType::Lsum => "rougeLsum".into(),
        }
    }

    /// Parses `rouge1`, `rouge2`, …, `rougeL`, `rougeLsum`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rougeL" => Some(RougeType::L),
            "rougeLsum" => Some(RougeType::Lsum),
            _ => s
                .strip_prefix("rouge")
                .and_then(|n| n.parse().ok())
                .filter(|&n| n >= 1)
                .map(RougeType::N),
        }
    }

    /// rouge1, rouge2, rougeL, rougeLsum.
    pub fn defaults() -> Vec<RougeType> {
        vec![
            RougeType::N(1),
            RougeType::N(2),
            RougeType::L,
            RougeType::Lsum,
        ]
    }
}

/// Precision, recall and F1 of one type.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl Score {
    fn from_pr(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// `RougeScorer(rouge_types, use_stemmer)`.
#[derive(Clone, Debug)]
pub struct RougeScorer {
    pub types: Vec<RougeType>,
    pub stem: bool,
}

/// Counts matches between two sorted lists (the clipped overlap of two multisets).
fn sorted_overlap<K: Ord>(a: &[K], b: &[K]) -> usize {
    let (mut i, mut j, mut hits) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                hits += 1;
                i += 1;
                j += 1;
            }
        }
    }
    hits
}

fn sorted_windows(t: &[u32], n: usize) -> Vec<&[u32]> {
    let mut v: Vec<&[u32]> = if t.len() >= n {
        t.windows(n).collect()
    } else {
        Vec::new()
    };
    v.sort_unstable();
    v
}

/// Clipped n-gram hits by sort and merge (exact, and cheaper than hashing for summary lengths);
/// unigrams and bigrams are packed into one `u64` each.
fn ngram_score(reference: &[u32], hyp: &[u32], n: usize) -> Score {
    let count = |t: &[u32]| t.len().saturating_sub(n - 1);
    let hits = if n <= 2 {
        let packed = |t: &[u32]| -> Vec<u64> {
            let mut v: Vec<u64> = if n == 1 {
                t.iter().map(|&x| x as u64).collect()
            } else {
                t.windows(2)
                    .map(|w| ((w[0] as u64) << 32) | w[1] as u64)
                    .collect()
            };
            v.sort_unstable();
            v
        };
        sorted_overlap(&packed(reference), &packed(hyp))
    } else {
        sorted_overlap(&sorted_windows(reference, n), &sorted_windows(hyp, n))
    };
    Score::from_pr(
        hits as f64 / count(hyp).max(1) as f64,
        hits as f64 / count(reference).max(1) as f64,
    )
}

/// A text tokenized once: all tokens in order, and where each `\n`-separated non-empty sentence
/// ends. Since `\n` is itself a separator, the whole-text tokens are the sentences' concatenated.
struct Tokens {
    all: Vec<u32>,
    ends: Vec<usize>,
}

impl Tokens {
    fn sentences(&self) -> Vec<&[u32]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&e| {
                let s = &self.all[start..e];
                start = e;
                s
            })
            .collect()
    }
}

fn tokens(text: &str, stem: bool, it: &mut Interner) -> Tokens {
    let mut all = Vec::new();
    let mut ends = Vec::new();
    for s in text.split('\n').filter(|s| !s.is_empty()) {
        rouge_score_words(s, |w| {
            all.push(if stem && w.len() > 3 {
                it.stemmed_id(w, nltk_stem)
            } else {
                it.id(w)
            })
        });
        ends.push(all.len());
    }
    Tokens { all, ends }
}

impl RougeScorer {
    pub fn new(types: Vec<RougeType>, stem: bool) -> Self {
        Self { types, stem }
    }

    /// `score(target, prediction)`: the reference comes first.
    pub fn score(&self, reference: &str, hypothesis: &str) -> Vec<(RougeType, Score)> {
        with_interner(|it| {
            let (r, h) = (
                tokens(reference, self.stem, it),
                tokens(hypothesis, self.stem, it),
            );
            self.types
                .iter()
                .map(|&ty| (ty, score_tokens(ty, &r, &h)))
                .collect()
        })
    }

    /// `score_multi(targets, prediction)`: per type, the reference with the highest F.
    /// With no references every score is zero.
    pub fn score_multi(&self, references: &[&str], hypothesis: &str) -> Vec<(RougeType, Score)> {
        let per: Vec<Vec<(RougeType, Score)>> = references
            .iter()
            .map(|r| self.score(r, hypothesis))
            .collect();
        (0..self.types.len())
            .map(|k| {
                let mut best: Option<(RougeType, Score)> = None;
                for p in &per {
                    if best.is_none_or(|b| p[k].1.fmeasure > b.1.fmeasure) {
                        best = Some(p[k]);
                    }
                }
                best.unwrap_or((self.types[k], Score::default()))
            })
            .collect()
    }
}

fn score_tokens(ty: RougeType, r: &Tokens, h: &Tokens) -> Score {
    match ty {
        RougeType::N(n) => ngram_score(&r.all, &h.all, n),
        RougeType::L => {
            if r.all.is_empty() || h.all.is_empty() {
                Score::default()
            } else {
                let l = lcs_len(&r.all, &h.all) as f64;
                Score::from_pr(l / h.all.len() as f64, l / r.all.len() as f64)
            }
        }
        RougeType::Lsum => {
            if r.all.is_empty() || h.all.is_empty() {
                Score::default()
            } else {
                let hits = union_lcs_hits(&r.sentences(), &h.sentences()) as f64;
                Score::from_pr(hits / h.all.len() as f64, hits / r.all.len() as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_rouge1_and_l() {
        // ref: the cat sat on the mat (6); hyp: the cat on the mat (5)
        // unigram hits: the×2, cat, on, mat = 5 → P = 5/5, R = 5/6; LCS = 5.
        let s = RougeScorer::new(RougeType::defaults(), false)
            .score("the cat sat on the mat", "the cat on the mat");
        assert_eq!(s[0].1.precision, 1.0);
        assert!((s[0].1.recall - 5.0 / 6.0).abs() < 1e-15);
        // bigrams: ref {the cat, cat sat, sat on, on the, the mat}, hyp {the cat, cat on, on the, the mat}: 3 hits
        assert!(
            (s[1].1.precision - 3.0 / 4.0).abs() < 1e-15
                && (s[1].1.recall - 3.0 / 5.0).abs() < 1e-15
        );
        assert_eq!(s[2].1, s[0].1);
        assert_eq!(s[3].1, s[2].1);
    }

    #[test]
    fn parse_names() {
        assert_eq!(RougeType::parse("rouge3"), Some(RougeType::N(3)));
        assert_eq!(RougeType::parse("rougeLsum"), Some(RougeType::Lsum));
        assert_eq!(RougeType::parse("rouge0"), None);
        assert_eq!(RougeType::parse("bleu"), None);
    }
}
