//! The `rouge155` flavour: `ROUGE-1.5.5.pl` with SPL input (one sentence per `\n`-separated line),
//! as papers run it (`-c 95 -2 -1 -U -r 1000 -n 4 -w 1.2 -a`, with or without `-m`).
//!
//! Per pair, for each reference ("model") and the hypothesis ("peer"):
//! * ROUGE-N: clipped n-gram hits over the lines joined together.
//! * ROUGE-L: summary-level union LCS over the lines, clipped by whole-text unigram counts.
//! * ROUGE-W-1.2: the same over the *weighted* LCS backtrack; hits are `Σ run_len^w`, the model base
//!   `Σ len_i^w` is raised to `w` again and scores are mapped back by `x^(1/w)` (the script's quirks,
//!   kept). A reference with no tokens makes the script die; here ROUGE-W is then left out.
//! * ROUGE-S\* / SU\*: every ordered token pair (no gap limit); SU\* adds the unigrams except the last.
//!
//! `R = round5(hits / model)`, `P = round5(hits / peer)`, `F = round5(P·R / ((1−α)P + αR))` from the
//! rounded values, `round5` being `sprintf("%7.5f")` (round half to even on the binary value).
//! Several references: `-f A` sums hits and counts over references; `-f B` keeps the one with the
//! highest recall.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::lcs::{lcs_indices, mark_weighted_lcs};
use crate::stem::perl_stem;
use crate::tokenize::perl_words;

/// How several references combine (`-f`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiRef {
    /// `-f A`: pool hits and counts over references (the default).
    Average,
    /// `-f B`: the reference with the highest recall.
    Best,
}

/// A length limit on every text, references included (`-l` words or `-b` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthLimit {
    Words(usize),
    Bytes(usize),
}

/// The script's options that change scores.
#[derive(Clone, Debug)]
pub struct Rouge155Options {
    /// `-m`: WordNet exceptions, then Porter, on tokens of 4+ characters.
    pub stem: bool,
    /// `-n`: ROUGE-1 … ROUGE-n.
    pub max_n: usize,
    /// `-w`: ROUGE-W weight; `None` leaves ROUGE-W out.
    pub weight: Option<f64>,
    /// `-2 -1 -U`: ROUGE-S\* and ROUGE-SU\*.
    pub skip_bigrams: bool,
    /// `-p`: α of the F-measure.
    pub alpha: f64,
    /// `-s`: remove SMART stopwords (before stemming).
    pub stopwords: bool,
    /// `-l` / `-b`.
    pub limit: Option<LengthLimit>,
    /// `-f`.
    pub multi: MultiRef,
}

impl Default for Rouge155Options {
    /// `-c 95 -2 -1 -U -r 1000 -n 4 -w 1.2 -a` (the flags papers use), without `-m`.
    fn default() -> Self {
        Self {
            stem: false,
            max_n: 4,
            weight: Some(1.2),
            skip_bigrams: true,
            alpha: 0.5,
            stopwords: false,
            limit: None,
            multi: MultiRef::Average,
        }
    }
}

impl Rouge155Options {
    /// See et al. (2017): `-c 95 -r 1000 -n 2 -m -a` (ROUGE-1, -2, -L).
    pub fn see_et_al() -> Self {
        Self {
            stem: true,
            max_n: 2,
            weight: None,
            skip_bigrams: false,
            ..Self::default()
        }
    }

    /// The metric names this configuration reports, in the script's order.
    pub fn metric_names(&self) -> Vec<String> {
        let mut v: Vec<String> = (1..=self.max_n).map(|n| format!("ROUGE-{n}")).collect();
        v.push("ROUGE-L".into());
        if let Some(w) = self.weight {
            v.push(format!("ROUGE-W-{w}"));
        }
        if self.skip_bigrams {
            v.push("ROUGE-S*".into());
            v.push("ROUGE-SU*".into());
        }
        v
    }
}

/// Recall, precision, F as the script prints them (5 decimals).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
#[allow(non_snake_case)]
pub struct Prf {
    pub R: f64,
    pub P: f64,
    pub F: f64,
}

/// `sprintf("%7.5f", x)` read back as a number.
pub fn round5(x: f64) -> f64 {
    format!("{x:.5}").parse().expect("a formatted float parses")
}

fn smart_stopwords() -> &'static HashSet<&'static str> {
    static S: OnceLock<HashSet<&'static str>> = OnceLock::new();
    S.get_or_init(|| {
        include_str!("../data/smart_common_words.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Perl's `split(/\s+/, $line)`: a leading empty field when the line starts with whitespace,
/// trailing empty fields dropped.
fn perl_split_ws(line: &[u8]) -> Vec<&[u8]> {
    let mut fields: Vec<&[u8]> = line.split(|b| b.is_ascii_whitespace()).collect();
    // Runs of whitespace produce empty fields in the middle; Perl's /\s+/ does not.
    let leading = fields.first().is_some_and(|f| f.is_empty()) && !line.is_empty();
    fields.retain(|f| !f.is_empty());
    if leading {
        fields.insert(0, &[]);
    }
    fields
}

/// Applies a length limit to the lines of one text. `lcs_reader` reproduces the script's
/// `readText_LCS`, whose byte counter is never advanced.
fn limit_lines(lines: &[&[u8]], limit: Option<LengthLimit>, lcs_reader: bool) -> Vec<Vec<u8>> {
    let Some(limit) = limit else {
        return lines.iter().map(|l| l.to_vec()).collect();
    };
    let mut out = Vec::new();
    let mut used = 0usize;
    for line in lines {
        match limit {
            LengthLimit::Words(n) => {
                let fields = perl_split_ws(line);
                if used + fields.len() < n {
                    out.push(line.to_vec());
                    used += fields.len();
                } else {
                    out.push(fields[..n.saturating_sub(used).min(fields.len())].join(&b' '));
                    break;
                }
            }
            LengthLimit::Bytes(n) => {
                if used + line.len() < n {
                    out.push(line.to_vec());
                    if !lcs_reader {
                        used += line.len();
                    }
                } else {
                    out.push(line[..n.saturating_sub(used).min(line.len())].to_vec());
                    break;
                }
            }
        }
    }
    out
}

/// A text as the script sees it: one token list for ROUGE-N/S, one per line for ROUGE-L/W.
#[derive(Clone, Debug)]
pub struct Text {
    pub tokens: Vec<String>,
    pub sentences: Vec<Vec<String>>,
}

impl Text {
    pub fn new(text: &str, opts: &Rouge155Options) -> Self {
        let lines: Vec<&[u8]> = text
            .as_bytes()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let words = |line: &[u8]| -> Vec<String> {
            perl_words(line)
                .into_iter()
                .filter(|w| !(opts.stopwords && smart_stopwords().contains(w.as_str())))
                .map(|w| {
                    if opts.stem && w.len() > 3 {
                        perl_stem(&w)
                    } else {
                        w
                    }
                })
                .collect()
        };
        let tokens = limit_lines(&lines, opts.limit, false)
            .iter()
            .flat_map(|l| words(l))
            .collect();
        let sentences = limit_lines(&lines, opts.limit, true)
            .iter()
            .map(|l| words(l))
            .collect();
        Self { tokens, sentences }
    }
}

type Counts<'a, K> = HashMap<K, i64>;

fn ngrams(tokens: &[String], n: usize) -> Counts<'_, &[String]> {
    let mut m = HashMap::new();
    if tokens.len() >= n {
        for g in tokens.windows(n) {
            *m.entry(g).or_insert(0) += 1;
        }
    }
    m
}

/// Dense ids of `tokens`, new ones numbered in order of first appearance.
fn intern_into<'a>(ids: &mut HashMap<&'a str, u32>, tokens: &'a [String]) -> Vec<u32> {
    tokens
        .iter()
        .map(|t| {
            let n = ids.len() as u32;
            *ids.entry(t.as_str()).or_insert(n)
        })
        .collect()
}

/// Clipped skip-bigram hits of `peer` against `model` (any gap: ROUGE-S*; with `unigrams`, plus
/// the unigrams of every token but the last, the script's ROUGE-SU*), and each text's gram count,
/// without listing the `n²/2` skip-bigrams: they are grouped by first token, and for a first token
/// `a` the count of `(a, b)` is, summed over `b`'s positions, the number of `a`s before it. Memory
/// is linear in the texts, time `O(distinct first tokens × n)` (at most the pairs' `n²`).
fn skip_gram_stats(model: &[String], peer: &[String], unigrams: bool) -> (i64, i64, i64) {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let m = intern_into(&mut ids, model);
    let p = intern_into(&mut ids, peer);
    let v = ids.len();
    let grams = |n: usize| {
        let pairs = n * n.saturating_sub(1) / 2;
        (pairs + if unigrams { n.saturating_sub(1) } else { 0 }) as i64
    };
    // Occurrences of each token as a first token (every position but the last).
    let firsts = |t: &[u32]| {
        let mut c = vec![0i64; v];
        t.iter()
            .take(t.len().saturating_sub(1))
            .for_each(|&x| c[x as usize] += 1);
        c
    };
    let (fm, fp) = (firsts(&m), firsts(&p));
    let mut hits = 0i64;
    if unigrams {
        hits += fm.iter().zip(&fp).map(|(a, b)| *a.min(b)).sum::<i64>();
    }
    let (mut cm, mut cp) = (vec![0i64; v], vec![0i64; v]);
    let mut touched = Vec::new();
    // Adds to `c[b]` the number of `a`s before each position holding `b`.
    let follow = |t: &[u32], a: u32, c: &mut [i64], touched: &mut Vec<u32>| {
        let mut seen = 0i64;
        for &b in t {
            if seen > 0 {
                if c[b as usize] == 0 {
                    touched.push(b);
                }
                c[b as usize] += seen;
            }
            seen += i64::from(b == a);
        }
    };
    for a in 0..v as u32 {
        if fm[a as usize] == 0 || fp[a as usize] == 0 {
            continue;
        }
        follow(&m, a, &mut cm, &mut touched);
        follow(&p, a, &mut cp, &mut touched);
        for &b in &touched {
            let b = b as usize;
            hits += cm[b].min(cp[b]);
            cm[b] = 0;
            cp[b] = 0;
        }
        touched.clear();
    }
    (hits, grams(m.len()), grams(p.len()))
}

fn clipped_hits<K: Eq + std::hash::Hash>(model: &HashMap<K, i64>, peer: &HashMap<K, i64>) -> i64 {
    model
        .iter()
        .map(|(k, c)| (*c).min(peer.get(k).copied().unwrap_or(0)))
        .sum()
}

/// One reference's contribution: hits, model count, peer count, and the score `-f B` ranks by.
#[derive(Clone, Copy)]
struct PerModel {
    hit: f64,
    model: f64,
    peer: f64,
    rank: f64,
}

fn combine(per: &[PerModel], multi: MultiRef) -> (f64, f64, f64) {
    match multi {
        MultiRef::Average => per.iter().fold((0.0, 0.0, 0.0), |a, p| {
            (a.0 + p.hit, a.1 + p.model, a.2 + p.peer)
        }),
        MultiRef::Best => {
            let (mut best, mut out) = (-1.0, (0.0, 0.0, 0.0));
            for p in per {
                if p.rank > best {
                    best = p.rank;
                    out = (p.hit, p.model, p.peer);
                }
            }
            out
        }
    }
}

fn prf((hit, model, peer): (f64, f64, f64), alpha: f64, inv: Option<f64>) -> Prf {
    let g = |x: f64| inv.map_or(x, |w| x.powf(1.0 / w));
    let r = if model != 0.0 {
        round5(g(hit / model))
    } else {
        0.0
    };
    let p = if peer != 0.0 {
        round5(g(hit / peer))
    } else {
        0.0
    };
    let d = (1.0 - alpha) * p + alpha * r;
    let f = if d > 0.0 { round5(p * r / d) } else { 0.0 };
    Prf { R: r, P: p, F: f }
}

/// Union-LCS (plain or weighted) hits of one model against the peer, with the script's
/// bookkeeping; returns `(hits, base)`.
fn lcs_model(model: &Text, peer: &Text, weight: Option<f64>) -> (f64, f64) {
    let mut m1: HashMap<&str, i64> = HashMap::new();
    model
        .tokens
        .iter()
        .for_each(|t| *m1.entry(t.as_str()).or_insert(0) += 1);
    let mut p1: HashMap<&str, i64> = HashMap::new();
    peer.tokens
        .iter()
        .for_each(|t| *p1.entry(t.as_str()).or_insert(0) += 1);
    let (mut hit, mut base) = (0.0, 0.0);
    for ms in &model.sentences {
        let mut mask = vec![false; ms.len()];
        match weight {
            None => {
                base += ms.len() as f64;
                if !ms.is_empty() {
                    for ps in &peer.sentences {
                        lcs_indices(ms, ps).into_iter().for_each(|i| mask[i] = true);
                    }
                }
            }
            Some(w) => {
                base += (ms.len() as f64).powf(w);
                for ps in &peer.sentences {
                    mark_weighted_lcs(ms, ps, &mut mask, w);
                }
            }
        }
        let mut run = 0usize;
        for (j, tok) in ms.iter().enumerate() {
            let t = tok.as_str();
            if mask[j] && m1.get(t).copied().unwrap_or(0) > 0 && p1.get(t).copied().unwrap_or(0) > 0
            {
                *m1.get_mut(t).unwrap() -= 1;
                *p1.get_mut(t).unwrap() -= 1;
                match weight {
                    None => hit += 1.0,
                    Some(w) => {
                        // The script's run bookkeeping, its bug included: a run whose last marked
                        // token was clipped is dropped.
                        run += 1;
                        if (j + 1 < ms.len() && !mask[j + 1]) || j + 1 == ms.len() {
                            hit += (run as f64).powf(w);
                            run = 0;
                        }
                    }
                }
            }
        }
    }
    (hit, base)
}

/// A clipped-count metric (ROUGE-N, S*, SU*) of the peer's grams against each model's; `-f B`
/// ranks references by their rounded recall.
fn clipped_metric<K: Eq + std::hash::Hash>(
    pg: &HashMap<K, i64>,
    models: &[HashMap<K, i64>],
    opts: &Rouge155Options,
) -> Prf {
    let pc: i64 = pg.values().sum();
    let per: Vec<(i64, i64)> = models
        .iter()
        .map(|mg| (clipped_hits(mg, pg), mg.values().sum::<i64>()))
        .collect();
    clipped_prf(&per, pc, opts)
}

/// A clipped-count metric from each model's `(hits, model count)` and the peer's count.
fn clipped_prf(per_model: &[(i64, i64)], pc: i64, opts: &Rouge155Options) -> Prf {
    let per: Vec<PerModel> = per_model
        .iter()
        .map(|&(h, mc)| {
            let rank = if mc != 0 {
                round5(h as f64 / mc as f64)
            } else {
                0.0
            };
            PerModel {
                hit: h as f64,
                model: mc as f64,
                peer: pc as f64,
                rank,
            }
        })
        .collect();
    prf(combine(&per, opts.multi), opts.alpha, None)
}

/// Scores of one hypothesis against its references, in [`Rouge155Options::metric_names`] order.
/// ROUGE-W is left out when a reference has no tokens (the script dies there).
pub fn score(hypothesis: &str, references: &[&str], opts: &Rouge155Options) -> Vec<(String, Prf)> {
    let peer = Text::new(hypothesis, opts);
    let models: Vec<Text> = references.iter().map(|r| Text::new(r, opts)).collect();
    score_texts(&peer, &models, opts)
}

/// [`score`] on already tokenized texts.
pub fn score_texts(peer: &Text, models: &[Text], opts: &Rouge155Options) -> Vec<(String, Prf)> {
    let mut out = Vec::new();
    for n in 1..=opts.max_n {
        let grams: Vec<_> = models.iter().map(|m| ngrams(&m.tokens, n)).collect();
        out.push((
            format!("ROUGE-{n}"),
            clipped_metric(&ngrams(&peer.tokens, n), &grams, opts),
        ));
    }
    let per: Vec<PerModel> = models
        .iter()
        .map(|m| {
            let (h, base) = lcs_model(m, peer, None);
            PerModel {
                hit: h,
                model: base,
                peer: peer.tokens.len() as f64,
                rank: if base != 0.0 { h / base } else { 0.0 },
            }
        })
        .collect();
    out.push((
        "ROUGE-L".into(),
        prf(combine(&per, opts.multi), opts.alpha, None),
    ));
    if let Some(w) = opts.weight {
        let per: Option<Vec<PerModel>> = models
            .iter()
            .map(|m| {
                let (h, base) = lcs_model(m, peer, Some(w));
                (base != 0.0).then(|| PerModel {
                    hit: h,
                    model: base.powf(w),
                    peer: (peer.tokens.len() as f64).powf(w),
                    rank: (h / base).powf(1.0 / w),
                })
            })
            .collect();
        if let Some(per) = per {
            out.push((
                format!("ROUGE-W-{w}"),
                prf(combine(&per, opts.multi), opts.alpha, Some(w)),
            ));
        }
    }
    if opts.skip_bigrams {
        for (name, uni) in [("ROUGE-S*", false), ("ROUGE-SU*", true)] {
            let stats: Vec<_> = models
                .iter()
                .map(|m| skip_gram_stats(&m.tokens, &peer.tokens, uni))
                .collect();
            let per: Vec<(i64, i64)> = stats.iter().map(|&(h, mc, _)| (h, mc)).collect();
            let pc = stats.first().map_or(0, |s| s.2);
            out.push((name.into(), clipped_prf(&per, pc, opts)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round5_is_half_even_on_the_binary_value() {
        assert_eq!(round5(1.0 / 64.0), 0.01562);
        assert_eq!(round5(0.123456), 0.12346);
        assert_eq!(round5(2.0 / 3.0), 0.66667);
    }

    #[test]
    fn word_limit_counts_fields_and_stops() {
        let lines: Vec<&[u8]> = vec![b"a b c", b"d, e f", b"g"];
        let cut = limit_lines(&lines, Some(LengthLimit::Words(5)), false);
        assert_eq!(cut, vec![b"a b c".to_vec(), b"d, e".to_vec()]);
        // A leading space is an empty field.
        let cut = limit_lines(&[b" a b".as_slice()], Some(LengthLimit::Words(2)), false);
        assert_eq!(cut, vec![b" a".to_vec()]);
    }

    #[test]
    fn byte_limit_and_the_lcs_reader_bug() {
        let lines: Vec<&[u8]> = vec![b"abcd", b"efgh", b"ijklmnop"];
        assert_eq!(
            limit_lines(&lines, Some(LengthLimit::Bytes(6)), false),
            vec![b"abcd".to_vec(), b"ef".to_vec()]
        );
        assert_eq!(
            limit_lines(&lines, Some(LengthLimit::Bytes(6)), true),
            vec![b"abcd".to_vec(), b"efgh".to_vec(), b"ijklmn".to_vec()]
        );
    }

    #[test]
    fn stopwords_are_removed_before_stemming() {
        let opts = Rouge155Options {
            stopwords: true,
            stem: true,
            ..Default::default()
        };
        let t = Text::new("The children were running", &opts);
        assert_eq!(t.tokens, vec!["child", "run"]);
    }

    /// The skip-bigram listing the script does (every pair and, for SU, every unigram but the
    /// last, counted in a map): the reference [`skip_gram_stats`] must agree with.
    fn skip_grams_listed(tokens: &[String], unigrams: bool) -> HashMap<(&str, Option<&str>), i64> {
        let mut m = HashMap::new();
        for i in 0..tokens.len().saturating_sub(1) {
            if unigrams {
                *m.entry((tokens[i].as_str(), None)).or_insert(0) += 1;
            }
            for j in i + 1..tokens.len() {
                *m.entry((tokens[i].as_str(), Some(tokens[j].as_str())))
                    .or_insert(0) += 1;
            }
        }
        m
    }

    #[test]
    fn skip_gram_counts_match_the_listing() {
        let mut x = 12345u64;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for _ in 0..300 {
            let alphabet = 1 + next() % 8;
            let (lm, lp) = (next() % 40, next() % 40);
            let m: Vec<String> = (0..lm).map(|_| format!("w{}", next() % alphabet)).collect();
            let p: Vec<String> = (0..lp).map(|_| format!("w{}", next() % alphabet)).collect();
            for uni in [false, true] {
                let (mg, pg) = (skip_grams_listed(&m, uni), skip_grams_listed(&p, uni));
                let want = (
                    clipped_hits(&mg, &pg),
                    mg.values().sum::<i64>(),
                    pg.values().sum::<i64>(),
                );
                assert_eq!(skip_gram_stats(&m, &p, uni), want, "{m:?} {p:?} {uni}");
            }
        }
    }

    #[test]
    fn su_skips_the_last_unigram_and_single_tokens_score_zero() {
        let s = score("cat", &["cat"], &Rouge155Options::default());
        let su = s.iter().find(|(n, _)| n == "ROUGE-SU*").unwrap().1;
        assert_eq!(su, Prf::default());
        let r1 = s.iter().find(|(n, _)| n == "ROUGE-1").unwrap().1;
        assert_eq!(
            r1,
            Prf {
                R: 1.0,
                P: 1.0,
                F: 1.0
            }
        );
    }
}
