//! The `rouge-score` flavour: Google's rouge-score 0.1.2, as HF `evaluate` uses it.
//!
//! * ROUGE-N: clipped n-gram overlap over the whole token sequence, `P = hits / max(#hyp n-grams, 1)`,
//!   `R = hits / max(#ref n-grams, 1)`, `F = 2PR / (P + R)` (0 when `P + R = 0`).
//! * rougeL: one LCS over the whole texts; `P = LCS/|hyp|`, `R = LCS/|ref|`; 0 if either is empty.
//! * rougeLsum: sentences split on `\n` only (empty ones dropped), union LCS per reference sentence,
//!   hits clipped by whole-text unigram counts ([`crate::lcs::union_lcs_hits`]).
//! * Several references: per type, the reference with the highest F (the first on a tie).

use std::collections::HashMap;

use crate::lcs::{lcs_len, union_lcs_hits};
use crate::tokenize::rouge_score_tokens;

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

fn grams(t: &[String], n: usize) -> HashMap<&[String], i64> {
    let mut m = HashMap::new();
    if t.len() >= n {
        for g in t.windows(n) {
            *m.entry(g).or_insert(0) += 1;
        }
    }
    m
}

fn ngram_score(reference: &[String], hyp: &[String], n: usize) -> Score {
    let (rg, hg) = (grams(reference, n), grams(hyp, n));
    let hits: i64 = rg
        .iter()
        .map(|(g, c)| (*c).min(hg.get(g).copied().unwrap_or(0)))
        .sum();
    let (nr, nh) = (
        reference.len().saturating_sub(n - 1),
        hyp.len().saturating_sub(n - 1),
    );
    Score::from_pr(
        hits as f64 / nh.max(1) as f64,
        hits as f64 / nr.max(1) as f64,
    )
}

fn sentences(text: &str, stem: bool) -> Vec<Vec<String>> {
    text.split('\n')
        .filter(|s| !s.is_empty())
        .map(|s| rouge_score_tokens(s, stem))
        .collect()
}

impl RougeScorer {
    pub fn new(types: Vec<RougeType>, stem: bool) -> Self {
        Self { types, stem }
    }

    /// `score(target, prediction)`: the reference comes first.
    pub fn score(&self, reference: &str, hypothesis: &str) -> Vec<(RougeType, Score)> {
        let needs_tokens = self.types.iter().any(|t| *t != RougeType::Lsum);
        let (rt, ht) = if needs_tokens {
            (
                rouge_score_tokens(reference, self.stem),
                rouge_score_tokens(hypothesis, self.stem),
            )
        } else {
            (vec![], vec![])
        };
        self.types
            .iter()
            .map(|&ty| {
                let s = match ty {
                    RougeType::N(n) => ngram_score(&rt, &ht, n),
                    RougeType::L => {
                        if rt.is_empty() || ht.is_empty() {
                            Score::default()
                        } else {
                            let l = lcs_len(&rt, &ht) as f64;
                            Score::from_pr(l / ht.len() as f64, l / rt.len() as f64)
                        }
                    }
                    RougeType::Lsum => {
                        let (rs, hs) = (
                            sentences(reference, self.stem),
                            sentences(hypothesis, self.stem),
                        );
                        let (m, n) = (
                            rs.iter().map(Vec::len).sum::<usize>(),
                            hs.iter().map(Vec::len).sum::<usize>(),
                        );
                        if m == 0 || n == 0 {
                            Score::default()
                        } else {
                            let hits = union_lcs_hits(&rs, &hs) as f64;
                            Score::from_pr(hits / n as f64, hits / m as f64)
                        }
                    }
                };
                (ty, s)
            })
            .collect()
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
