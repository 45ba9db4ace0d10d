//! Pretrained word vectors: GloVe text (no header), word2vec text (a `count dim` header) and binary,
//! and fastText `.vec` (word2vec text); plain, gzip or zstd.
//!
//! [`for_vocab`] streams a file once, keeping only the vocabulary's words, and reports coverage;
//! words not found are initialised from a normal distribution with the found vectors' standard
//! deviation (so they are on the same scale), `<pad>` with zeros. [`Embeddings::neighbors`] ranks
//! words by cosine similarity.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use abridge_tensor::Rng;

use crate::io::{open, IoError};
use crate::vocab::{Vocab, PAD};

/// File layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbFormat {
    /// `word v1 … vD` per line, no header.
    Glove,
    /// A `count dim` header line, then `word v1 … vD` per line (word2vec text, fastText `.vec`).
    Text,
    /// A `count dim` header line, then `word` + space + `D` little-endian f32 per entry.
    Word2VecBinary,
}

impl EmbFormat {
    /// `.bin` → binary; otherwise text, with or without a header (told apart when reading).
    pub fn guess(path: &Path) -> Self {
        if crate::io::base_name(path).ends_with(".bin") {
            EmbFormat::Word2VecBinary
        } else {
            EmbFormat::Glove
        }
    }
}

/// Why an embedding file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EmbError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path}:{line}: {reason}")]
    Bad {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Word vectors, row-major `[N, D]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    pub words: Vec<String>,
    pub dim: usize,
    pub data: Vec<f32>,
}

/// Reads every entry, calling `f(word, vector)`; returns the dimension.
pub fn read(
    path: &Path,
    format: EmbFormat,
    mut f: impl FnMut(&str, &[f32]),
) -> Result<usize, EmbError> {
    let mut r = open(path)?;
    let bad = |line: usize, reason: String| EmbError::Bad {
        path: path.into(),
        line,
        reason,
    };
    let io = |source| {
        EmbError::Io(IoError {
            path: path.into(),
            source,
        })
    };
    let mut buf = Vec::new();
    let mut line = 0usize;
    let mut dim: Option<usize> = None;
    let mut vec = Vec::new();
    if format == EmbFormat::Word2VecBinary {
        r.read_until(b'\n', &mut buf).map_err(io)?;
        let header = String::from_utf8_lossy(&buf).to_string();
        let nums: Vec<usize> = header
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [count, d] = nums[..] else {
            return Err(bad(
                1,
                format!("expected a `count dim` header, found {:?}", header.trim()),
            ));
        };
        let mut bytes = vec![0u8; d * 4];
        for k in 0..count {
            buf.clear();
            r.read_until(b' ', &mut buf).map_err(io)?;
            let word = String::from_utf8_lossy(&buf).trim().to_string();
            if word.is_empty() {
                return Err(bad(
                    k + 2,
                    format!("file ends after {k} of {count} vectors"),
                ));
            }
            r.read_exact(&mut bytes)
                .map_err(|e| bad(k + 2, format!("vector of `{word}` is cut short: {e}")))?;
            vec.clear();
            vec.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap())),
            );
            if vec.iter().any(|x| !x.is_finite()) {
                return Err(bad(
                    k + 2,
                    format!("vector of `{word}` holds a value that is not a finite number"),
                ));
            }
            f(&word, &vec);
        }
        return Ok(d);
    }
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            break;
        }
        line += 1;
        let text = std::str::from_utf8(&buf)
            .map_err(|_| bad(line, "invalid UTF-8".into()))?
            .trim_end();
        if text.is_empty() {
            continue;
        }
        let mut parts = text.split(' ');
        let word = parts.next().unwrap_or("");
        vec.clear();
        for p in parts.by_ref() {
            if p.is_empty() {
                continue;
            }
            let x = p
                .parse::<f32>()
                .map_err(|_| bad(line, format!("`{p}` is not a number")))?;
            if !x.is_finite() {
                return Err(bad(line, format!("`{p}` is not a finite number")));
            }
            vec.push(x);
        }
        if line == 1 && vec.len() == 1 && word.parse::<usize>().is_ok() {
            // A `count dim` header: word2vec text / fastText.
            dim = Some(vec[0] as usize);
            continue;
        }
        if format == EmbFormat::Text && line == 1 {
            return Err(bad(1, "expected a `count dim` header".into()));
        }
        match dim {
            None => dim = Some(vec.len()),
            Some(d) if d != vec.len() => {
                return Err(bad(
                    line,
                    format!("`{word}` has {} values, expected {d}", vec.len()),
                ))
            }
            _ => {}
        }
        f(word, &vec);
    }
    dim.ok_or_else(|| bad(0, "no vectors".into()))
}

impl Embeddings {
    /// Loads at most `limit` entries (all when `None`).
    pub fn load(path: &Path, format: EmbFormat, limit: Option<usize>) -> Result<Self, EmbError> {
        let (mut words, mut data) = (Vec::new(), Vec::new());
        let dim = read(path, format, |w, v| {
            if limit.is_none_or(|l| words.len() < l) {
                words.push(w.to_string());
                data.extend_from_slice(v);
            }
        })?;
        Ok(Self { words, dim, data })
    }

    /// The `k` words most similar to `word` by cosine similarity (`None` if `word` is absent).
    pub fn neighbors(&self, word: &str, k: usize) -> Option<Vec<(String, f32)>> {
        let i = self.words.iter().position(|w| w == word)?;
        let row = |j: usize| &self.data[j * self.dim..(j + 1) * self.dim];
        let norm = |v: &[f32]| {
            v.iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE)
        };
        let q = row(i);
        let qn = norm(q);
        let mut sims: Vec<(usize, f32)> = (0..self.words.len())
            .filter(|&j| j != i)
            .map(|j| {
                let v = row(j);
                (
                    j,
                    q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>() / (qn * norm(v)),
                )
            })
            .collect();
        sims.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(
            sims.into_iter()
                .take(k)
                .map(|(j, s)| (self.words[j].clone(), s))
                .collect(),
        )
    }
}

/// How much of a vocabulary a file covered.
#[derive(Clone, Debug, PartialEq)]
pub struct Coverage {
    /// Vocabulary words found (specials excluded).
    pub found: usize,
    /// Vocabulary words looked for (specials excluded).
    pub total: usize,
    /// Found only through lower-casing.
    pub found_lowercased: usize,
    /// Share of the vocabulary's corpus occurrences that are covered.
    pub token_coverage: f64,
    /// A few of the most frequent words not found.
    pub missing_examples: Vec<String>,
}

/// An embedding matrix `[V, D]` for `vocab`, from `path`; see the module doc.
pub fn for_vocab(
    path: &Path,
    format: EmbFormat,
    vocab: &Vocab,
    seed: u64,
) -> Result<(Vec<f32>, usize, Coverage), EmbError> {
    let n = vocab.len();
    let mut rows: Vec<Option<Vec<f32>>> = vec![None; n];
    let mut exact = vec![false; n];
    let dim = read(path, format, |w, v| {
        if let Some(id) = vocab.get(w) {
            rows[id as usize] = Some(v.to_vec());
            exact[id as usize] = true;
        } else if w.chars().any(char::is_uppercase) {
            if let Some(id) = vocab.get(&w.to_lowercase()) {
                if rows[id as usize].is_none() {
                    rows[id as usize] = Some(v.to_vec());
                }
            }
        }
    })?;
    let specials = crate::vocab::SPECIALS.len();
    let found: Vec<&Vec<f32>> = rows.iter().skip(specials).flatten().collect();
    let cnt = (found.len() * dim).max(1) as f64;
    let mean = found
        .iter()
        .flat_map(|v| v.iter())
        .map(|&x| x as f64)
        .sum::<f64>()
        / cnt;
    let var = found
        .iter()
        .flat_map(|v| v.iter())
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / cnt;
    let std = if found.is_empty() { 0.1 } else { var.sqrt() };
    let mut rng = Rng::new(seed);
    let mut matrix = Vec::with_capacity(n * dim);
    let mut missing = Vec::new();
    let (mut covered_tokens, mut all_tokens) = (0u64, 0u64);
    for (id, row) in rows.iter().enumerate() {
        let c = vocab.count(id as u32);
        all_tokens += c;
        match row {
            Some(v) => {
                matrix.extend_from_slice(v);
                covered_tokens += c;
            }
            None if id as u32 == PAD => matrix.extend(std::iter::repeat_n(0.0, dim)),
            None => {
                if id >= specials && missing.len() < 10 {
                    missing.push(vocab.token(id as u32).unwrap_or("").to_string());
                }
                matrix.extend((0..dim).map(|_| (rng.normal() * std) as f32));
            }
        }
    }
    let coverage = Coverage {
        found: found.len(),
        total: n.saturating_sub(specials),
        found_lowercased: rows
            .iter()
            .zip(&exact)
            .skip(specials)
            .filter(|(r, e)| r.is_some() && !**e)
            .count(),
        token_coverage: if all_tokens == 0 {
            0.0
        } else {
            covered_tokens as f64 / all_tokens as f64
        },
        missing_examples: missing,
    };
    Ok((matrix, dim, coverage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::VocabConfig;

    fn write_formats(dir: &Path) -> Vec<(PathBuf, EmbFormat)> {
        let glove = dir.join("g.txt");
        std::fs::write(
            &glove,
            "king 1 0 0\nqueen 0.9 0.1 0\napple 0 0 1\nKing 5 5 5\n",
        )
        .unwrap();
        let vec = dir.join("f.vec");
        std::fs::write(
            &vec,
            "4 3\nking 1 0 0\nqueen 0.9 0.1 0\napple 0 0 1\nKing 5 5 5\n",
        )
        .unwrap();
        let bin = dir.join("w.bin");
        let mut b = b"4 3\n".to_vec();
        for (w, v) in [
            ("king", [1.0f32, 0.0, 0.0]),
            ("queen", [0.9, 0.1, 0.0]),
            ("apple", [0.0, 0.0, 1.0]),
            ("King", [5.0, 5.0, 5.0]),
        ] {
            b.extend_from_slice(w.as_bytes());
            b.push(b' ');
            v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
            b.push(b'\n');
        }
        std::fs::write(&bin, b).unwrap();
        let zst = dir.join("g.txt.zst");
        std::fs::write(
            &zst,
            zstd::encode_all(&std::fs::read(&glove).unwrap()[..], 3).unwrap(),
        )
        .unwrap();
        vec![
            (glove, EmbFormat::Glove),
            (vec, EmbFormat::Glove),
            (bin, EmbFormat::Word2VecBinary),
            (zst, EmbFormat::Glove),
        ]
    }

    #[test]
    fn every_format_loads_the_same_vectors() {
        let dir = tempfile::tempdir().unwrap();
        for (p, f) in write_formats(dir.path()) {
            let e = Embeddings::load(&p, f, None).unwrap();
            assert_eq!(e.dim, 3, "{}", p.display());
            assert_eq!(e.words, ["king", "queen", "apple", "King"]);
            assert_eq!(&e.data[3..6], &[0.9, 0.1, 0.0]);
            let nn = e.neighbors("king", 2).unwrap();
            assert_eq!(nn[0].0, "queen");
            assert!(e.neighbors("zebra", 2).is_none());
        }
    }

    #[test]
    fn vocabulary_matrix_reports_coverage_and_fills_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (p, f) = write_formats(dir.path()).remove(0);
        let counts = [("king", 10u64), ("apple", 5), ("zebra", 1)]
            .iter()
            .map(|(w, c)| (w.to_string(), *c))
            .collect();
        let v = Vocab::from_counts(&counts, VocabConfig::default());
        let (m, d, cov) = for_vocab(&p, f, &v, 1).unwrap();
        assert_eq!((d, m.len()), (3, v.len() * 3));
        assert_eq!((cov.found, cov.total), (2, 3));
        assert_eq!(cov.missing_examples, ["zebra"]);
        assert!((cov.token_coverage - 15.0 / 16.0).abs() < 1e-12);
        let row = |w: &str| &m[v.id(w) as usize * 3..v.id(w) as usize * 3 + 3];
        assert_eq!(
            row("king"),
            &[1.0, 0.0, 0.0],
            "the exact-case entry wins over `King`"
        );
        assert_eq!(&m[..3], &[0.0; 3], "<pad> is zero");
        assert!(row("zebra").iter().any(|&x| x != 0.0));
    }

    #[test]
    fn malformed_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.txt");
        std::fs::write(&p, "a 1 2\nb 1 x\n").unwrap();
        assert_eq!(
            Embeddings::load(&p, EmbFormat::Glove, None)
                .unwrap_err()
                .to_string(),
            format!("{}:2: `x` is not a number", p.display())
        );
        // NaN or infinite values would make every batch non-finite: refused by line.
        for v in ["nan", "inf", "-inf", "1e99"] {
            std::fs::write(&p, format!("a 1 2\nb 1 2\nc 1 {v}\n")).unwrap();
            let e = Embeddings::load(&p, EmbFormat::Glove, None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(":3: `{v}` is not a finite number")),
                "{e}"
            );
        }
        let b = dir.path().join("nan.bin");
        let mut bytes = b"1 2\nking ".to_vec();
        bytes.extend(1.0f32.to_le_bytes());
        bytes.extend(f32::NAN.to_le_bytes());
        std::fs::write(&b, bytes).unwrap();
        assert!(Embeddings::load(&b, EmbFormat::Word2VecBinary, None)
            .unwrap_err()
            .to_string()
            .contains("`king` holds a value that is not a finite number"));
        std::fs::write(&p, "a 1 2\nb 1 2 3\n").unwrap();
        assert!(Embeddings::load(&p, EmbFormat::Glove, None)
            .unwrap_err()
            .to_string()
            .contains(":2: `b` has 3 values, expected 2"));
        let b = dir.path().join("cut.bin");
        std::fs::write(&b, b"2 3\nking \x00\x00").unwrap();
        assert!(Embeddings::load(&b, EmbFormat::Word2VecBinary, None)
            .unwrap_err()
            .to_string()
            .contains("cut short"));
    }
}
