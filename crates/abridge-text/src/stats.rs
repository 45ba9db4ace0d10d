//! One streaming pass over a corpus: token counts for building vocabularies and length
//! statistics, with tokenization on all threads.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::corpus::{Corpus, Example, ReadError, ReadStats};
use crate::tokenize::Tokenizer;

/// What one pass collects.
#[derive(Clone, Debug, Default)]
pub struct CorpusCounts {
    /// Token counts of the documents and of the summaries.
    pub text: FxHashMap<String, u64>,
    pub summary: FxHashMap<String, u64>,
    /// Tokens per document and per summary, in file order.
    pub text_lengths: Vec<u32>,
    pub summary_lengths: Vec<u32>,
    /// Bytes of text and summary read (UTF-8).
    pub bytes: u64,
    pub read: ReadStats,
}

impl CorpusCounts {
    /// Document and summary counts added together (for a shared vocabulary).
    pub fn combined(&self) -> FxHashMap<String, u64> {
        let mut all = self.text.clone();
        for (t, c) in &self.summary {
            *all.entry(t.clone()).or_insert(0) += c;
        }
        all
    }
}

#[derive(Default)]
struct Local<'a> {
    text: FxHashMap<&'a str, u64>,
    summary: FxHashMap<&'a str, u64>,
    owned_text: FxHashMap<String, u64>,
    owned_summary: FxHashMap<String, u64>,
}

fn tally<'a>(
    tok: &Tokenizer,
    s: &'a str,
    borrowed: &mut FxHashMap<&'a str, u64>,
    owned: &mut FxHashMap<String, u64>,
    buf: &mut Vec<String>,
) -> u32 {
    if tok.pretokenized && !(tok.lowercase && s.chars().any(char::is_uppercase)) {
        let mut n = 0;
        for w in s.split_whitespace() {
            *borrowed.entry(w).or_insert(0) += 1;
            n += 1;
        }
        return n;
    }
    buf.clear();
    tok.tokenize_into(s, buf);
    for w in buf.iter() {
        match owned.get_mut(w.as_str()) {
            Some(c) => *c += 1,
            None => {
                owned.insert(w.clone(), 1);
            }
        }
    }
    buf.len() as u32
}

fn merge(
    into: &mut FxHashMap<String, u64>,
    borrowed: FxHashMap<&str, u64>,
    owned: FxHashMap<String, u64>,
) {
    for (w, c) in borrowed {
        match into.get_mut(w) {
            Some(x) => *x += c,
            None => {
                into.insert(w.to_string(), c);
            }
        }
    }
    for (w, c) in owned {
        *into.entry(w).or_insert(0) += c;
    }
}

/// Reads `corpus` once, tokenizing documents and summaries on the rayon pool.
pub fn count(corpus: &Corpus, tok: &Tokenizer, strict: bool) -> Result<CorpusCounts, ReadError> {
    let mut out = CorpusCounts::default();
    let read = corpus.for_each_chunk(strict, 2048, |chunk: Vec<Example>| {
        let (local, lengths) = chunk
            .par_chunks(64)
            .map(|exs| {
                let mut l = Local::default();
                let mut buf = Vec::new();
                let lens: Vec<(u32, u32)> = exs
                    .iter()
                    .map(|e| {
                        let a = tally(tok, &e.text, &mut l.text, &mut l.owned_text, &mut buf);
                        let b = tally(
                            tok,
                            &e.summary,
                            &mut l.summary,
                            &mut l.owned_summary,
                            &mut buf,
                        );
                        (a, b)
                    })
                    .collect();
                (l, lens)
            })
            .reduce(
                || (Local::default(), Vec::new()),
                |(mut a, mut la), (b, lb)| {
                    for (k, v) in b.text {
                        *a.text.entry(k).or_insert(0) += v;
                    }
                    for (k, v) in b.summary {
                        *a.summary.entry(k).or_insert(0) += v;
                    }
                    for (k, v) in b.owned_text {
                        *a.owned_text.entry(k).or_insert(0) += v;
                    }
                    for (k, v) in b.owned_summary {
                        *a.owned_summary.entry(k).or_insert(0) += v;
                    }
                    la.extend(lb);
                    (a, la)
                },
            );
        merge(&mut out.text, local.text, local.owned_text);
        merge(&mut out.summary, local.summary, local.owned_summary);
        for (a, b) in lengths {
            out.text_lengths.push(a);
            out.summary_lengths.push(b);
        }
        out.bytes += chunk
            .iter()
            .map(|e| (e.text.len() + e.summary.len()) as u64)
            .sum::<u64>();
    })?;
    out.read = read;
    Ok(out)
}

/// The `p`-th percentile (nearest rank) of `values`; 0 for none.
pub fn percentile(values: &[u32], p: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Fields;

    #[test]
    fn counts_and_lengths_match_a_serial_count() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.jsonl");
        let mut s = String::new();
        for i in 0..500 {
            s += &format!(
                "{{\"text\": \"The cat {i} sat. The End\", \"summary\": \"cat {}\"}}\n",
                i % 7
            );
        }
        std::fs::write(&p, s).unwrap();
        let c = Corpus::guess(&p, Fields::default()).unwrap();
        for tok in [
            Tokenizer {
                lowercase: true,
                pretokenized: false,
            },
            Tokenizer {
                lowercase: false,
                pretokenized: true,
            },
        ] {
            let counts = count(&c, &tok, true).unwrap();
            assert_eq!(counts.read.examples, 500);
            let the = if tok.lowercase {
                counts.text["the"]
            } else {
                counts.text["The"]
            };
            assert_eq!(the, 1000);
            assert_eq!(counts.summary["cat"], 500);
            assert_eq!(counts.text_lengths.len(), 500);
            assert_eq!(counts.text_lengths[0], if tok.pretokenized { 6 } else { 7 });
            assert_eq!(counts.combined()["cat"], 1000);
        }
        assert_eq!(percentile(&[5, 1, 3], 50.0), 3);
        assert_eq!(percentile(&[5, 1, 3], 100.0), 5);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
