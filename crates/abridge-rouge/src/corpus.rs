//! Many pairs at once: reading them, scoring them in parallel, and aggregating the scores.
//!
//! Input formats:
//! * JSON Lines, one pair per line: `{"id": ..., "hyp": "...", "ref": "..."}` or `"refs": [...]`;
//!   `id` is optional (the line number is used). Sentences are separated by `\n` inside the strings.
//!   `summary`, `reference` and `references` (what `abridge eval --out` writes) stand for `hyp`,
//!   `ref` and `refs` when those are absent.
//! * Two line-aligned text files, one summary per line (a line is one sentence).
//! * Two directories: files matched by name, each file one summary, one sentence per line.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use crate::bootstrap::{perl155_corpus, rouge_score_bootstrap, Interval, PerlAverage};
use crate::rouge155::{self, Prf, Rouge155Options};
use crate::rouge_score::{RougeScorer, RougeType, Score};

/// One hypothesis and its references.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub id: String,
    pub hyp: String,
    pub refs: Vec<String>,
}

/// Why an input could not be read; always names the file (and line where there is one).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid UTF-8")]
    Utf8 { path: PathBuf, line: usize },
    #[error("{path}:{line}: invalid JSON: {msg}")]
    Json {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{path}:{line}: {msg}")]
    Field {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{hyp} has {n_hyp} summaries but {reference} has {n_ref}")]
    Count {
        hyp: PathBuf,
        reference: PathBuf,
        n_hyp: usize,
        n_ref: usize,
    },
    #[error("{path}: no summary file named {name} (it is in {other})")]
    Missing {
        path: PathBuf,
        name: String,
        other: PathBuf,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|source| InputError::Io {
        path: path.into(),
        source,
    })
}

/// Lines of a file as UTF-8 strings (a final empty line is dropped; `\r\n` endings are kept as `\r`,
/// which both tokenizers treat as a separator).
fn utf8_lines(path: &Path) -> Result<Vec<String>, InputError> {
    let bytes = read(path)?;
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            String::from_utf8(l.to_vec()).map_err(|_| InputError::Utf8 {
                path: path.into(),
                line: i + 1,
            })
        })
        .collect()
}

/// Reads JSON Lines pairs; blank lines are skipped.
pub fn read_jsonl(path: &Path) -> Result<Vec<Pair>, InputError> {
    Ok(read_jsonl_indexed(path)?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

/// [`read_jsonl`], with each line's `index` (a whole number; `abridge eval --out` and batch
/// `summarize --out` write the pair's number in their input) where it has one.
pub fn read_jsonl_indexed(path: &Path) -> Result<Vec<(Option<u64>, Pair)>, InputError> {
    let mut out = Vec::new();
    for (i, line) in utf8_lines(path)?.into_iter().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let field_err = |msg: String| InputError::Field {
            path: path.into(),
            line: n,
            msg,
        };
        let v: Value = serde_json::from_str(&line).map_err(|e| InputError::Json {
            path: path.into(),
            line: n,
            msg: e.to_string(),
        })?;
        let obj = v
            .as_object()
            .ok_or_else(|| field_err("expected a JSON object".into()))?;
        let id = match obj.get("id") {
            None | Some(Value::Null) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        // `abridge eval --out` names them `summary`, `reference` and (several) `references`.
        let named = |ours: &str, eval: &str| obj.get(ours).or_else(|| obj.get(eval));
        let hyp = match named("hyp", "summary") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(field_err("field `hyp` must be a string".into())),
            None => return Err(field_err("missing field `hyp` (or `summary`)".into())),
        };
        let (one, many) = match (obj.get("ref"), obj.get("refs")) {
            (None, None) if obj.contains_key("references") => (None, obj.get("references")),
            (None, None) => (obj.get("reference"), None),
            given => given,
        };
        let refs = match (one, many) {
            (Some(Value::String(s)), None) => vec![s.clone()],
            (None, Some(Value::Array(a))) if !a.is_empty() => a
                .iter()
                .map(|r| {
                    r.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| field_err("every entry of `refs` must be a string".into()))
                })
                .collect::<Result<_, _>>()?,
            (None, Some(Value::Array(_))) => return Err(field_err("`refs` is empty".into())),
            (Some(_), Some(_)) => {
                return Err(field_err("give either `ref` or `refs`, not both".into()))
            }
            (None, None) => return Err(field_err("missing field `ref` (or `refs`)".into())),
            _ => {
                return Err(field_err(
                    "`ref` must be a string and `refs` a list of strings".into(),
                ))
            }
        };
        out.push((
            obj.get("index").and_then(Value::as_u64),
            Pair { id, hyp, refs },
        ));
    }
    Ok(out)
}

/// Reads hypotheses and references from two line-aligned files or two directories.
pub fn read_hyp_ref(hyp: &Path, reference: &Path) -> Result<Vec<Pair>, InputError> {
    if hyp.is_dir() && reference.is_dir() {
        let list = |d: &Path| -> Result<Vec<String>, InputError> {
            let mut names: Vec<String> = std::fs::read_dir(d)
                .map_err(|source| InputError::Io {
                    path: d.into(),
                    source,
                })?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            Ok(names)
        };
        let whole = |p: PathBuf| -> Result<String, InputError> {
            String::from_utf8(read(&p)?).map_err(|e| {
                let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                InputError::Utf8 {
                    path: p.clone(),
                    line,
                }
            })
        };
        let names = list(hyp)?;
        let ref_names = list(reference)?;
        if names.len() != ref_names.len() {
            return Err(InputError::Count {
                hyp: hyp.into(),
                reference: reference.into(),
                n_hyp: names.len(),
                n_ref: ref_names.len(),
            });
        }
        return names
            .into_iter()
            .map(|name| {
                let rp = reference.join(&name);
                if !rp.is_file() {
                    return Err(InputError::Missing {
                        path: reference.into(),
                        name,
                        other: hyp.into(),
                    });
                }
                Ok(Pair {
                    hyp: whole(hyp.join(&name))?,
                    refs: vec![whole(rp)?],
                    id: name,
                })
            })
            .collect();
    }
    let (h, r) = (utf8_lines(hyp)?, utf8_lines(reference)?);
    if h.len() != r.len() {
        return Err(InputError::Count {
            hyp: hyp.into(),
            reference: reference.into(),
            n_hyp: h.len(),
            n_ref: r.len(),
        });
    }
    Ok(h.into_iter()
        .zip(r)
        .enumerate()
        .map(|(i, (hyp, r))| Pair {
            id: (i + 1).to_string(),
            hyp,
            refs: vec![r],
        })
        .collect())
}

/// rouge-score on every pair, in parallel, in input order.
pub fn score_all(scorer: &RougeScorer, pairs: &[Pair]) -> Vec<Vec<(RougeType, Score)>> {
    pairs
        .par_iter()
        .map(|p| {
            if p.refs.len() == 1 {
                scorer.score(&p.refs[0], &p.hyp)
            } else {
                let refs: Vec<&str> = p.refs.iter().map(String::as_str).collect();
                scorer.score_multi(&refs, &p.hyp)
            }
        })
        .collect()
}

/// ROUGE-1.5.5 on every pair, in parallel, in input order.
pub fn score_all_155(opts: &Rouge155Options, pairs: &[Pair]) -> Vec<Vec<(String, Prf)>> {
    pairs
        .par_iter()
        .map(|p| {
            let refs: Vec<&str> = p.refs.iter().map(String::as_str).collect();
            rouge155::score(&p.hyp, &refs, opts)
        })
        .collect()
}

/// Corpus summary of one rouge-score type.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeSummary {
    pub rouge_type: RougeType,
    pub mean: Score,
    pub interval: Interval,
}

/// Means and bootstrap intervals (`np.random.seed(seed)` then `aggregate()`); `None` for no pairs.
pub fn summarize(
    types: &[RougeType],
    per_pair: &[Vec<(RougeType, Score)>],
    seed: u32,
    n_samples: usize,
    confidence: f64,
) -> Option<Vec<TypeSummary>> {
    if per_pair.is_empty() {
        return None;
    }
    let rows: Vec<Vec<[f64; 3]>> = (0..types.len())
        .map(|k| {
            per_pair
                .iter()
                .map(|p| [p[k].1.precision, p[k].1.recall, p[k].1.fmeasure])
                .collect()
        })
        .collect();
    let intervals = rouge_score_bootstrap(&rows, seed, n_samples, confidence);
    Some(
        types
            .iter()
            .zip(rows.iter().zip(intervals))
            .map(|(&t, (r, interval))| {
                let n = r.len() as f64;
                let sum = |k: usize| r.iter().map(|x| x[k]).sum::<f64>() / n;
                TypeSummary {
                    rouge_type: t,
                    mean: Score {
                        precision: sum(0),
                        recall: sum(1),
                        fmeasure: sum(2),
                    },
                    interval,
                }
            })
            .collect(),
    )
}

/// Corpus summary of one ROUGE-1.5.5 metric: printed average and interval of R, P, F.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSummary155 {
    pub name: String,
    pub r: PerlAverage,
    pub p: PerlAverage,
    pub f: PerlAverage,
}

/// ROUGE-1.5.5's corpus averages. A metric missing from any pair (ROUGE-W with an empty reference)
/// is left out, as the script would have died.
pub fn summarize_155(
    names: &[String],
    per_pair: &[Vec<(String, Prf)>],
    resamples: usize,
    confidence: f64,
) -> Vec<MetricSummary155> {
    names
        .iter()
        .filter_map(|name| {
            let vals: Option<Vec<[f64; 3]>> = per_pair
                .iter()
                .map(|p| {
                    p.iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| [v.R, v.P, v.F])
                })
                .collect();
            let vals = vals?;
            let [r, p, f] = perl155_corpus(&vals, resamples, confidence);
            Some(MetricSummary155 {
                name: name.clone(),
                r,
                p,
                f,
            })
        })
        .collect()
}
