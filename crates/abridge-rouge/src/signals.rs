//! Faithfulness signals: what ROUGE does not show about a summary against its own source.
//!
//! All are shares in `[0, 1]`, `None` when the summary has nothing to count (no trigram, no
//! number, …). Tokens are compared lower-cased; the caller tokenizes source and summary alike.
//!
//! | signal | definition |
//! |---|---|
//! | `novel[n-1]` | summary n-grams (n = 1..4, every position) that occur nowhere in the source (See et al. 2017, Fig. 7) |
//! | `verbatim_sentences` | summary sentences that occur in the source as a contiguous run of tokens |
//! | `repeated_trigrams` | summary trigrams equal to an earlier trigram of the same summary |
//! | `numbers_in_source` | summary tokens holding a digit that also occur in the source |
//! | `capitalised_in_source` | summary words written with a capital, not at a sentence start, that occur in the source (`None` for lower-cased output) |

use rustc_hash::FxHashSet;

/// The signals of one summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signals {
    pub novel: [Option<f64>; 4],
    pub verbatim_sentences: Option<f64>,
    pub repeated_trigrams: Option<f64>,
    pub numbers_in_source: Option<f64>,
    pub capitalised_in_source: Option<f64>,
}

fn share(hits: usize, total: usize) -> Option<f64> {
    (total > 0).then(|| hits as f64 / total as f64)
}

/// Whether `needle` (non-empty) occurs contiguously in `hay`.
fn contains_run(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Signals of `summary` (its sentences, in order) against `source`.
pub fn signals<S: AsRef<str>>(source: &[S], summary: &[Vec<S>]) -> Signals {
    let lower = |t: &S| t.as_ref().to_lowercase();
    let src: Vec<String> = source.iter().map(lower).collect();
    let sents: Vec<Vec<String>> = summary
        .iter()
        .map(|s| s.iter().map(lower).collect())
        .collect();
    let flat: Vec<String> = sents.iter().flatten().cloned().collect();
    let mut novel = [None; 4];
    for (n, slot) in novel.iter_mut().enumerate().map(|(i, s)| (i + 1, s)) {
        let grams: FxHashSet<&[String]> = src.windows(n).collect();
        let total = flat.len().saturating_sub(n - 1);
        let miss = flat.windows(n).filter(|g| !grams.contains(g)).count();
        *slot = share(miss, total);
    }
    let verbatim = sents.iter().filter(|s| contains_run(&src, s)).count();
    let mut seen = FxHashSet::default();
    let repeated = flat.windows(3).filter(|g| !seen.insert(*g)).count();
    let src_set: FxHashSet<&str> = src.iter().map(String::as_str).collect();
    let numbers: Vec<&String> = flat
        .iter()
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
        .collect();
    let caps: Vec<String> = summary
        .iter()
        .flat_map(|s| s.iter().skip(1))
        .filter(|t| t.as_ref().chars().next().is_some_and(char::is_uppercase))
        .map(lower)
        .collect();
    Signals {
        novel,
        verbatim_sentences: share(verbatim, sents.iter().filter(|s| !s.is_empty()).count()),
        repeated_trigrams: share(repeated, flat.len().saturating_sub(2)),
        numbers_in_source: share(
            numbers
                .iter()
                .filter(|t| src_set.contains(t.as_str()))
                .count(),
            numbers.len(),
        ),
        capitalised_in_source: share(
            caps.iter().filter(|t| src_set.contains(t.as_str())).count(),
            caps.len(),
        ),
    }
}

/// Means of each signal over many summaries (each over the summaries where it is defined), and
/// of any extra per-summary value such as the mean `p_gen`.
#[derive(Clone, Debug, Default)]
pub struct SignalMeans {
    sums: Vec<(f64, usize)>,
}

/// Names of the columns of [`SignalMeans::means`], in order.
pub const NAMES: [&str; 9] = [
    "novel_1gram",
    "novel_2gram",
    "novel_3gram",
    "novel_4gram",
    "verbatim_sentences",
    "repeated_trigrams",
    "numbers_in_source",
    "capitalised_in_source",
    "mean_p_gen",
];

impl SignalMeans {
    /// Adds one summary's signals and its mean `p_gen` (if the model has a pointer).
    pub fn add(&mut self, s: &Signals, p_gen: Option<f64>) {
        let row = [
            s.novel[0],
            s.novel[1],
            s.novel[2],
            s.novel[3],
            s.verbatim_sentences,
            s.repeated_trigrams,
            s.numbers_in_source,
            s.capitalised_in_source,
            p_gen,
        ];
        self.sums.resize(row.len(), (0.0, 0));
        for (acc, v) in self.sums.iter_mut().zip(row) {
            if let Some(v) = v {
                acc.0 += v;
                acc.1 += 1;
            }
        }
    }

    /// `(name, mean)` of each signal ([`NAMES`] order); `None` where no summary defined it.
    pub fn means(&self) -> Vec<(&'static str, Option<f64>)> {
        NAMES
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let m = self
                    .sums
                    .get(i)
                    .and_then(|&(s, c)| (c > 0).then(|| s / c as f64));
                (n, m)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn signals_of_a_hand_made_pair() {
        let src = toks("Police said John Smith , 42 , was arrested on Monday . He denied it .");
        let sum = vec![
            toks("John Smith , 42 , was arrested ."),
            toks("He was arrested on Monday in Paris with 3 others ."),
            toks("he was arrested on Monday ."),
        ];
        let s = signals(&src, &sum);
        // 25 unigrams; novel: "in", "paris", "with", "3", "others".
        assert_eq!(s.novel[0], Some(5.0 / 25.0));
        // Sentence 1 is not a run of the source ("arrested ." is not); sentence 3 is not either;
        // none verbatim.
        assert_eq!(s.verbatim_sentences, Some(0.0));
        // 23 trigrams over the whole summary; sentence 3 repeats "he was arrested", "was arrested
        // on" and "arrested on monday" of sentence 2, and ". he was" spans both boundaries.
        assert_eq!(s.repeated_trigrams, Some(4.0 / 23.0));
        // Numbers: "42" in the source, "3" not.
        assert_eq!(s.numbers_in_source, Some(0.5));
        // Capitalised after a sentence start: Smith, Monday, Paris, Monday -> 3 of 4 in source.
        assert_eq!(s.capitalised_in_source, Some(0.75));
        let v = signals(&src, &[toks("he denied it .")]);
        assert_eq!(v.verbatim_sentences, Some(1.0));
        assert_eq!(v.novel, [Some(0.0); 4]);
        assert_eq!(v.capitalised_in_source, None);
        let e = signals::<String>(&src, &[]);
        assert_eq!(e, Signals::default());
        let mut m = SignalMeans::default();
        m.add(&s, Some(0.2));
        m.add(&v, None);
        let means = m.means();
        assert_eq!(means[4], ("verbatim_sentences", Some(0.5)));
        assert_eq!(means[8], ("mean_p_gen", Some(0.2)));
        assert_eq!(means[7], ("capitalised_in_source", Some(0.75)));
    }
}
