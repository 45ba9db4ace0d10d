//! Reading (document, summary) pairs from corpora of any size, in chunks.
//!
//! Formats (compression is detected by content, see [`crate::io`]):
//! * JSON Lines, one object per line, fields named by [`Fields`] (default `text` / `summary`);
//! * CSV or TSV with a header row naming the columns;
//! * two line-aligned files, `X.source` and `X.target` (pass the `.source` one).
//!
//! Reading is split in two so that the expensive part runs in parallel: [`Corpus::chunks`] reads
//! raw records sequentially (bytes, with line numbers), and [`Corpus::parse`] turns one into an
//! [`Example`] or a [`BadRecord`] naming the file, the line and the reason. [`Corpus::for_each_chunk`]
//! does both, parsing on the rayon pool, and either stops at the first bad record (`strict`) or skips
//! and counts them.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use crate::io::{base_name, open, IoError};

/// Field (or column) names of the document and the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub text: String,
    pub summary: String,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            text: "text".into(),
            summary: "summary".into(),
        }
    }
}

/// How a corpus file is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    JsonLines(Fields),
    /// CSV (`b','`) or TSV (`b'\t'`) with a header row.
    Delimited {
        delimiter: u8,
        fields: Fields,
    },
    /// This file holds documents, one per line; `target` holds the summaries, line-aligned.
    LinePair {
        target: PathBuf,
    },
}

impl Format {
    /// Guesses from the name: `.jsonl`/`.json` → JSON Lines, `.csv`, `.tsv`, `.source` (with its
    /// `.target` beside it); compression suffixes are ignored. `None` when the name says nothing.
    pub fn guess(path: &Path, fields: Fields) -> Option<Format> {
        let name = base_name(path);
        if name.ends_with(".jsonl") || name.ends_with(".json") {
            Some(Format::JsonLines(fields))
        } else if name.ends_with(".csv") {
            Some(Format::Delimited {
                delimiter: b',',
                fields,
            })
        } else if name.ends_with(".tsv") {
            Some(Format::Delimited {
                delimiter: b'\t',
                fields,
            })
        } else if let Some(stem) = name.strip_suffix(".source") {
            let dir = path.parent().unwrap_or(Path::new(""));
            let full = path.file_name().unwrap().to_string_lossy();
            let suffix = &full[name.len()..];
            Some(Format::LinePair {
                target: dir.join(format!("{stem}.target{suffix}")),
            })
        } else {
            None
        }
    }
}

/// One training pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub summary: String,
    /// 1-based line (or CSV record start line) it came from.
    pub line: usize,
    /// The record's own `id` (JSON Lines: a string or a number), if it has one.
    pub id: Option<String>,
    /// Further reference summaries (JSON Lines: a `references` list of strings), besides `summary`.
    pub references: Vec<String>,
}

impl Example {
    /// The record's `id`, else its line number.
    pub fn name(&self) -> String {
        self.id.clone().unwrap_or_else(|| self.line.to_string())
    }

    /// Every reference: `summary`, then the `references` that differ from it.
    pub fn all_references(&self) -> Vec<&str> {
        let mut out = vec![self.summary.as_str()];
        for r in &self.references {
            if !out.contains(&r.as_str()) {
                out.push(r);
            }
        }
        out
    }
}

/// A record that could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct BadRecord {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0} (strict mode stops at the first bad record)")]
    Bad(BadRecord),
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// A record as read, before parsing.
#[derive(Clone, Debug)]
pub struct RawRecord {
    pub line: usize,
    kind: RawKind,
}

#[derive(Clone, Debug)]
enum RawKind {
    Json(Vec<u8>),
    Pair(Vec<u8>, Vec<u8>),
    Bad(String),
}

/// Counts from one pass over a corpus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub examples: usize,
    pub bad: usize,
    /// The first few bad records, for the message.
    pub first_bad: Vec<BadRecord>,
}

/// An opened corpus description (cheap; files are opened by each pass).
#[derive(Clone, Debug)]
pub struct Corpus {
    pub path: PathBuf,
    pub format: Format,
}

fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, path: &Path) -> Result<bool, IoError> {
    buf.clear();
    let n = r.read_until(b'\n', buf).map_err(|source| IoError {
        path: path.into(),
        source,
    })?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(n > 0)
}

impl Corpus {
    pub fn new(path: impl Into<PathBuf>, format: Format) -> Self {
        Self {
            path: path.into(),
            format,
        }
    }

    /// A corpus whose format is guessed from its name ([`Format::guess`]).
    pub fn guess(path: impl Into<PathBuf>, fields: Fields) -> Result<Self, ReadError> {
        let path = path.into();
        let format = Format::guess(&path, fields).ok_or_else(|| ReadError::Format {
            path: path.clone(),
            reason: "cannot tell the format from the name: use .jsonl, .csv, .tsv or .source/.target (optionally .gz/.zst)".into(),
        })?;
        Ok(Self { path, format })
    }

    /// Reads raw records sequentially and hands them over `chunk` at a time; `f` returns whether
    /// to go on.
    pub fn chunks(
        &self,
        chunk: usize,
        mut f: impl FnMut(Vec<RawRecord>) -> Result<bool, ReadError>,
    ) -> Result<(), ReadError> {
        let chunk = chunk.max(1);
        let mut out = Vec::with_capacity(chunk);
        let mut stopped = false;
        let mut emit = |rec: RawRecord, out: &mut Vec<RawRecord>| -> Result<bool, ReadError> {
            out.push(rec);
            if out.len() >= chunk && !f(std::mem::take(out))? {
                stopped = true;
                return Ok(false);
            }
            Ok(true)
        };
        match &self.format {
            Format::JsonLines(_) => {
                let mut r = open(&self.path)?;
                let (mut buf, mut line) = (Vec::new(), 0);
                while read_line(&mut *r, &mut buf, &self.path)? {
                    line += 1;
                    // A UTF-8 byte order mark (Windows editors write one) is not content.
                    if line == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
                        buf.drain(..3);
                    }
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if !emit(
                        RawRecord {
                            line,
                            kind: RawKind::Json(buf.clone()),
                        },
                        &mut out,
                    )? {
                        return Ok(());
                    }
                }
            }
            Format::LinePair { target } => {
                let mut src = open(&self.path)?;
                let mut tgt = open(target)?;
                let (mut a, mut b, mut line) = (Vec::new(), Vec::new(), 0);
                loop {
                    let (more_a, more_b) = (
                        read_line(&mut *src, &mut a, &self.path)?,
                        read_line(&mut *tgt, &mut b, target)?,
                    );
                    if !more_a && !more_b {
                        break;
                    }
                    line += 1;
                    if more_a != more_b {
                        let (short, long) = if more_a {
                            (target, &self.path)
                        } else {
                            (&self.path, target)
                        };
                        return Err(ReadError::Format {
                            path: short.clone(),
                            reason: format!(
                                "ends at line {} but {} goes on (the files must be line-aligned)",
                                line - 1,
                                long.display()
                            ),
                        });
                    }
                    if !emit(
                        RawRecord {
                            line,
                            kind: RawKind::Pair(a.clone(), b.clone()),
                        },
                        &mut out,
                    )? {
                        return Ok(());
                    }
                }
            }
            Format::Delimited { delimiter, fields } => {
                let r = open(&self.path)?;
                let mut rdr = csv::ReaderBuilder::new()
                    .delimiter(*delimiter)
                    .has_headers(true)
                    .flexible(true)
                    .from_reader(r);
                let headers = rdr
                    .byte_headers()
                    .map_err(|e| ReadError::Format {
                        path: self.path.clone(),
                        reason: format!("reading the header: {e}"),
                    })?
                    .clone();
                let col = |name: &str| -> Result<usize, ReadError> {
                    headers
                        .iter()
                        .position(|h| h == name.as_bytes())
                        .ok_or_else(|| ReadError::Format {
                            path: self.path.clone(),
                            reason: format!(
                                "the header has no column `{name}` (it has: {})",
                                headers
                                    .iter()
                                    .map(|h| String::from_utf8_lossy(h).into_owned())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        })
                };
                let (ti, si) = (col(&fields.text)?, col(&fields.summary)?);
                let mut rec = csv::ByteRecord::new();
                loop {
                    match rdr.read_byte_record(&mut rec) {
                        Ok(false) => break,
                        Ok(true) => {
                            let line = rec.position().map_or(0, |p| p.line() as usize);
                            let kind = match (rec.get(ti), rec.get(si)) {
                                (Some(t), Some(s)) => RawKind::Pair(t.to_vec(), s.to_vec()),
                                _ => RawKind::Bad(format!(
                                    "the record has {} fields, fewer than the header",
                                    rec.len()
                                )),
                            };
                            if !emit(RawRecord { line, kind }, &mut out)? {
                                return Ok(());
                            }
                        }
                        Err(e) => {
                            let line = e.position().map_or(0, |p| p.line() as usize);
                            if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                                return Err(ReadError::Format {
                                    path: self.path.clone(),
                                    reason: e.to_string(),
                                });
                            }
                            if !emit(
                                RawRecord {
                                    line,
                                    kind: RawKind::Bad(format!("malformed record: {e}")),
                                },
                                &mut out,
                            )? {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        if !out.is_empty() && !stopped {
            f(out)?;
        }
        Ok(())
    }

    /// Parses one raw record.
    pub fn parse(&self, raw: RawRecord) -> Result<Example, BadRecord> {
        let bad = |reason: String| BadRecord {
            path: self.path.clone(),
            line: raw.line,
            reason,
        };
        let utf8 = |b: Vec<u8>, what: &str| {
            String::from_utf8(b).map_err(|e| {
                bad(format!(
                    "invalid UTF-8 in {what} at byte {}",
                    e.utf8_error().valid_up_to()
                ))
            })
        };
        let (mut id, mut references) = (None, Vec::new());
        let (text, summary) = match (raw.kind.clone(), &self.format) {
            (RawKind::Bad(reason), _) => return Err(bad(reason)),
            (RawKind::Json(bytes), Format::JsonLines(fields)) => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    if std::str::from_utf8(&bytes).is_err() {
                        bad("invalid UTF-8".into())
                    } else {
                        bad(format!("invalid JSON: {e}"))
                    }
                })?;
                let get = |name: &str| -> Result<String, BadRecord> {
                    match v.get(name) {
                        Some(Value::String(s)) => Ok(s.clone()),
                        Some(other) if !other.is_null() => {
                            Err(bad(format!("field `{name}` is not a string")))
                        }
                        _ => Err(bad(format!("missing field `{name}`"))),
                    }
                };
                id = match v.get("id") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                match v.get("references") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(list)) => {
                        for (i, r) in list.iter().enumerate() {
                            match r {
                                Value::String(r) if !r.trim().is_empty() => {
                                    references.push(r.clone())
                                }
                                Value::String(_) => {}
                                _ => return Err(bad(format!("`references[{i}]` is not a string"))),
                            }
                        }
                    }
                    Some(_) => return Err(bad("field `references` is not a list".into())),
                }
                (get(&fields.text)?, get(&fields.summary)?)
            }
            (RawKind::Pair(a, b), _) => (utf8(a, "the text")?, utf8(b, "the summary")?),
            (RawKind::Json(_), _) => unreachable!("JSON records come only from JSON Lines"),
        };
        if text.trim().is_empty() {
            return Err(bad("empty text".into()));
        }
        if summary.trim().is_empty() {
            return Err(bad("empty summary".into()));
        }
        Ok(Example {
            text,
            summary,
            line: raw.line,
            id,
            references,
        })
    }

    /// Reads every example, parsing `chunk` records at a time on the rayon pool, and calls `f` on
    /// each chunk of good examples in file order. Bad records stop the pass (`strict`) or are counted.
    pub fn for_each_chunk(
        &self,
        strict: bool,
        chunk: usize,
        mut f: impl FnMut(Vec<Example>),
    ) -> Result<ReadStats, ReadError> {
        self.for_each_chunk_while(strict, chunk, |c| {
            f(c);
            true
        })
    }

    /// [`Corpus::for_each_chunk`] that stops reading as soon as `f` returns `false`.
    pub fn for_each_chunk_while(
        &self,
        strict: bool,
        chunk: usize,
        mut f: impl FnMut(Vec<Example>) -> bool,
    ) -> Result<ReadStats, ReadError> {
        let mut stats = ReadStats::default();
        self.chunks(chunk, |raws| {
            let parsed: Vec<Result<Example, BadRecord>> =
                raws.into_par_iter().map(|r| self.parse(r)).collect();
            let mut good = Vec::with_capacity(parsed.len());
            for p in parsed {
                match p {
                    Ok(e) => good.push(e),
                    Err(b) if strict => return Err(ReadError::Bad(b)),
                    Err(b) => {
                        stats.bad += 1;
                        if stats.first_bad.len() < 5 {
                            stats.first_bad.push(b);
                        }
                    }
                }
            }
            stats.examples += good.len();
            Ok(f(good))
        })?;
        Ok(stats)
    }

    /// Every good example in memory (small corpora and tests).
    pub fn read_all(&self, strict: bool) -> Result<(Vec<Example>, ReadStats), ReadError> {
        let mut all = Vec::new();
        let stats = self.for_each_chunk(strict, 4096, |c| all.extend(c))?;
        Ok((all, stats))
    }
}
