//! `abridge summarize --out FILE.jsonl [--shard I/N] [--resume]`: batch summarization that
//! streams a corpus, can be split across workers and survives being killed.
//!
//! - **Sharding**: document number `k` of the input (0-based, in input order: JSON Lines records
//!   that parse, files of a directory by name) belongs to shard `k mod N`. Every worker reads the
//!   whole input and summarizes its own documents, so the split needs no coordination and the
//!   union of the shards' outputs is exactly a one-process run's. `--shard auto` takes the index
//!   and count from an MPI launcher (`OMPI_COMM_WORLD_RANK`/`_SIZE`, `PMI_RANK`/`PMI_SIZE`,
//!   `SLURM_PROCID`/`SLURM_NTASKS`); `--shard auto/N` takes the index from Kubernetes
//!   (`JOB_COMPLETION_INDEX`) or one of those.
//! - **Output**: one JSON line per document, keyed by `index` (its number) and `id` (the record's
//!   own `id`, else its line number; a file's name), with the summary, or an `error`. Lines are
//!   written in input order, a chunk at a time, each chunk flushed to the disk before the next.
//!   `{shard}` in the output path becomes the worker's index.
//! - **Resume**: with `--resume`, an existing output is read first: a torn last line (a kill in
//!   the middle of a write) is cut off, the documents it holds are skipped (their ids checked
//!   against the input, so a changed input is an error, not a silent mix), and the rest appended.
//!   Without `--resume` an existing output is refused.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use abridge::Summarizer;
use abridge_text::corpus::{Corpus, Fields};
use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::SummarizeArgs;
use crate::with_threads;

/// Which documents this worker summarizes: those whose number is `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Environment variables giving a worker's index, and the count where the launcher sets one.
const INDEX_VARS: [(&str, Option<&str>); 4] = [
    ("OMPI_COMM_WORLD_RANK", Some("OMPI_COMM_WORLD_SIZE")),
    ("PMI_RANK", Some("PMI_SIZE")),
    ("SLURM_PROCID", Some("SLURM_NTASKS")),
    ("JOB_COMPLETION_INDEX", None),
];

impl Shard {
    /// The whole input.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N`, `auto/N` or `auto` (see the module doc), reading the environment through
    /// `env`.
    pub fn parse(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let num = |s: &str, what: &str| -> Result<usize> {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("--shard {spec}: {what} {s:?} is not a whole number"))
        };
        let from_env = |want_count: bool| -> Result<(usize, Option<usize>, &'static str)> {
            for (var, count_var) in INDEX_VARS {
                if let Some(v) = env(var) {
                    let count = match (count_var, want_count) {
                        (Some(c), _) => env(c).map(|n| num(&n, c)).transpose()?,
                        (None, _) => None,
                    };
                    return Ok((num(&v, var)?, count, var));
                }
            }
            bail!(
                "--shard {spec}: no worker index in the environment (looked for {})",
                INDEX_VARS.map(|(v, _)| v).join(", ")
            )
        };
        let (index, count) = match spec.split_once('/') {
            None if spec == "auto" => {
                let (i, n, var) = from_env(true)?;
                let n = n.with_context(|| {
                    format!("--shard auto: {var} gives the index but nothing gives the count; use --shard auto/N")
                })?;
                (i, n)
            }
            None => bail!("--shard {spec}: expected I/N (e.g. 0/4), auto/N or auto"),
            Some(("auto", n)) => {
                let n = num(n, "the count")?;
                let (i, env_n, var) = from_env(false)?;
                if let Some(m) = env_n.filter(|&m| m != n) {
                    bail!("--shard auto/{n}: the launcher runs {m} workers ({var})");
                }
                (i, n)
            }
            Some((i, n)) => (num(i, "the index")?, num(n, "the count")?),
        };
        if count == 0 || index >= count {
            bail!("--shard {spec}: the index must be below the count (got {index}/{count})");
        }
        Ok(Shard { index, count })
    }

    /// The shard a command's `--shard` names (the whole input without one), reading the
    /// process's environment for `auto`.
    pub fn from_flag(spec: Option<&str>) -> Result<Shard> {
        spec.map_or(Ok(Shard::ALL), |s| {
            Shard::parse(s, |v| std::env::var(v).ok())
        })
    }

    /// `path` with `{shard}` replaced by this shard's index: one command line for every worker,
    /// each writing its own file.
    pub fn path(&self, path: &Path) -> PathBuf {
        PathBuf::from(
            path.to_string_lossy()
                .replace("{shard}", &self.index.to_string()),
        )
    }

    /// `I/N` when the input is split, for messages.
    pub fn label(&self) -> Option<String> {
        (self.count > 1).then(|| format!("{}/{}", self.index, self.count))
    }

    pub fn owns(&self, number: usize) -> bool {
        number % self.count == self.index
    }
}

/// What an existing output already holds: each document's number and id.
fn recover(out: &Path) -> Result<HashMap<usize, String>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(out)
        .with_context(|| format!("opening {} to resume it", out.display()))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", out.display()))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        eprintln!(
            "note: {}: dropping a torn last line ({} bytes) left by an interrupted run",
            out.display(),
            bytes.len() - complete
        );
        f.set_len(complete as u64)
            .with_context(|| format!("truncating {}", out.display()))?;
        f.sync_all()?;
    }
    let mut done = HashMap::new();
    for (n, line) in bytes[..complete].lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: not UTF-8", out.display(), n + 1))?;
        let v: serde_json::Value = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: not a line this command wrote (invalid JSON)",
                out.display(),
                n + 1
            )
        })?;
        let (Some(index), Some(id)) = (v["index"].as_u64(), v["id"].as_str()) else {
            bail!(
                "{}:{}: not a line this command wrote (no `index` and `id`)",
                out.display(),
                n + 1
            );
        };
        if done.insert(index as usize, id.to_string()).is_some() {
            bail!(
                "{}:{}: document {index} appears twice",
                out.display(),
                n + 1
            );
        }
    }
    Ok(done)
}

/// Calls `f(number, id, text)` on each input document in order, reading lazily (a directory's
/// files one by one, a JSON Lines file a chunk of records at a time) until `f` returns `false`.
/// Returns the number of inputs that could not be read (reported on standard error).
pub fn for_each_document(
    a: &SummarizeArgs,
    mut f: impl FnMut(usize, String, String) -> Result<bool>,
) -> Result<usize> {
    let p = PathBuf::from(&a.input);
    if a.input == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input (as UTF-8)")?;
        f(0, "-".into(), s)?;
        return Ok(0);
    }
    if p.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        let mut unreadable = 0;
        for (k, file) in names.iter().enumerate() {
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            match crate::summarize::read_utf8(file) {
                Ok(text) => {
                    if !f(k, name, text)? {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("warning: {e:#}; no summary");
                    unreadable += 1;
                }
            }
        }
        return Ok(unreadable);
    }
    if abridge_text::io::base_name(&p).ends_with(".jsonl") {
        let corpus = Corpus::new(
            &p,
            abridge_text::corpus::Format::JsonLines(Fields {
                text: a.field.clone(),
                summary: a.field.clone(),
            }),
        );
        let mut k = 0;
        let mut failure = None;
        let stats = corpus.for_each_chunk_while(false, 256, |chunk| {
            for e in chunk {
                match f(k, e.name(), e.text) {
                    Ok(true) => k += 1,
                    Ok(false) => return false,
                    Err(err) => {
                        failure = Some(err);
                        return false;
                    }
                }
            }
            true
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if stats.bad > 0 {
            eprintln!(
                "warning: skipped {} bad record(s); the first: {}",
                stats.bad, stats.first_bad[0]
            );
        }
        return Ok(0);
    }
    f(0, a.input.clone(), crate::summarize::read_utf8(&p)?)?;
    Ok(0)
}

/// How many documents the input holds, for the progress line's time left: files of a directory,
/// records of a JSON Lines file (bad ones included: a quick pass that parses nothing).
fn count_documents(a: &SummarizeArgs) -> Result<usize> {
    let p = PathBuf::from(&a.input);
    if a.input != "-" && p.is_dir() {
        return Ok(std::fs::read_dir(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .count());
    }
    if a.input != "-" && abridge_text::io::base_name(&p).ends_with(".jsonl") {
        let corpus = Corpus::new(
            &p,
            abridge_text::corpus::Format::JsonLines(Fields::default()),
        );
        let mut n = 0;
        corpus.chunks(4096, |c| {
            n += c.len();
            Ok(true)
        })?;
        return Ok(n);
    }
    Ok(1)
}

/// Progress on standard error: a line every `every` with the rate and the time left.
struct Progress {
    start: Instant,
    last: Instant,
    every: Duration,
    total: Option<usize>,
    done: usize,
    /// `done` when the last line was printed.
    printed: Option<usize>,
}

impl Progress {
    fn tick(&mut self, n: usize, force: bool) {
        self.done += n;
        if (!force && self.last.elapsed() < self.every)
            || (force && self.printed == Some(self.done))
        {
            return;
        }
        self.last = Instant::now();
        self.printed = Some(self.done);
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let left = match self.total {
            Some(t) if rate > 0.0 && t >= self.done => {
                format!(
                    " of about {t}, about {:.0} s left",
                    (t - self.done) as f64 / rate
                )
            }
            _ => String::new(),
        };
        eprintln!("summarized {}{left} ({rate:.1} documents/s)", self.done);
    }
}

/// Summarizes `batch` in parallel and appends its lines to `out` in order, flushed to the disk.
/// Returns how many failed.
fn flush_batch(
    m: &Summarizer,
    dec: &abridge::Decoding,
    batch: &mut Vec<(usize, String, String)>,
    out: &mut File,
    path: &Path,
) -> Result<usize> {
    use rayon::prelude::*;
    let results: Vec<_> = batch
        .par_iter()
        .map(|(_, _, text)| m.summarize_with(text, dec))
        .collect();
    let mut lines = Vec::new();
    let mut failed = 0;
    for ((number, id, text), r) in batch.drain(..).zip(results) {
        let v = match r {
            Ok(s) => {
                if let Some(w) = m.vocabulary_warning(&text) {
                    eprintln!("warning: {id}: {w}");
                }
                let sentences: Vec<&str> = s.sentences().collect();
                json!({"index": number, "id": id, "summary": s.one_line(), "sentences": sentences, "tokens": s.tokens, "copied_oov": s.copied_oov, "score": s.score, "truncated": s.truncated})
            }
            Err(e) => {
                eprintln!("warning: {id}: {e:#}; no summary");
                failed += 1;
                json!({"index": number, "id": id, "error": format!("{e:#}")})
            }
        };
        serde_json::to_writer(&mut lines, &v)?;
        lines.push(b'\n');
    }
    out.write_all(&lines)
        .and_then(|_| out.sync_data())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(failed)
}

pub fn run(a: &SummarizeArgs, out: &Path) -> Result<()> {
    let shard = Shard::from_flag(a.shard.as_deref())?;
    let out = &shard.path(out);
    crate::refuse_overwriting_input(out, &[Path::new(&a.input)], "--out")?;
    let done = if out.exists() {
        if !a.resume {
            bail!(
                "{} exists; pass --resume to continue it, or choose another path",
                out.display()
            );
        }
        recover(out)?
    } else {
        HashMap::new()
    };
    let m = crate::summarize::load_default_or(a.model.as_deref())?;
    let dec = m.decoding(&a.decode.options())?;
    if let Some(w) = m.length_warning(&a.decode.options()) {
        eprintln!("warning: {w}");
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("opening {}", out.display()))?;
    file.seek(std::io::SeekFrom::End(0))?;
    eprintln!(
        "shard {}/{}: {} document(s) already in {}",
        shard.index,
        shard.count,
        done.len(),
        out.display()
    );
    let threads = if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.threads
    };
    // A chunk keeps every thread busy for a few documents, then goes to the disk.
    let chunk = 8 * threads;
    // This shard's documents not yet written: numbers k < n with k mod N = I, less those done.
    let n = count_documents(a)?;
    let mine = (n + shard.count - 1 - shard.index) / shard.count;
    let mut progress = Progress {
        start: Instant::now(),
        last: Instant::now(),
        every: Duration::from_secs(a.progress_secs.max(1)),
        total: Some(mine.saturating_sub(done.len())),
        done: 0,
        printed: None,
    };
    let (mut batch, mut failed, mut summarized) = (Vec::with_capacity(chunk), 0, 0);
    let unreadable = with_threads(a.threads, || {
        for_each_document(a, |number, id, text| {
            if !shard.owns(number) {
                return Ok(true);
            }
            if let Some(prev) = done.get(&number) {
                if *prev != id {
                    bail!(
                        "{} holds document {number} as {prev:?} but the input's document {number} \
                         is {id:?}: the input changed since that run; use a new --out",
                        out.display()
                    );
                }
                return Ok(true);
            }
            batch.push((number, id, text));
            if batch.len() == chunk {
                let n = batch.len();
                failed += flush_batch(&m, &dec, &mut batch, &mut file, out)?;
                summarized += n;
                progress.tick(n, false);
            }
            Ok(true)
        })
    })?;
    if !batch.is_empty() {
        let n = batch.len();
        failed += with_threads(a.threads, || {
            flush_batch(&m, &dec, &mut batch, &mut file, out)
        })?;
        summarized += n;
        progress.tick(n, false);
    }
    progress.tick(0, true);
    eprintln!(
        "shard {}/{}: {summarized} document(s) summarized now, {} earlier; {}",
        shard.index,
        shard.count,
        done.len(),
        out.display()
    );
    if failed + unreadable > 0 {
        bail!(
            "{} document(s) could not be summarized (see the warnings above; failures are \
             recorded in {} with an `error`)",
            failed + unreadable,
            out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shard_specs() {
        let none = env(&[]);
        assert_eq!(
            Shard::parse("1/4", &none).unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "1/0", "x/2", "1", "auto", "auto/3"] {
            assert!(Shard::parse(bad, &none).is_err(), "{bad}");
        }
        let mpi = env(&[("OMPI_COMM_WORLD_RANK", "2"), ("OMPI_COMM_WORLD_SIZE", "3")]);
        assert_eq!(
            Shard::parse("auto", &mpi).unwrap(),
            Shard { index: 2, count: 3 }
        );
        assert!(Shard::parse("auto/4", &mpi)
            .unwrap_err()
            .to_string()
            .contains("runs 3 workers"));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "5")]);
        assert_eq!(
            Shard::parse("auto/8", &k8s).unwrap(),
            Shard { index: 5, count: 8 }
        );
        assert!(Shard::parse("auto", &k8s)
            .unwrap_err()
            .to_string()
            .contains("auto/N"));
        assert!(Shard::parse("auto/4", &k8s).is_err());
        let s = Shard { index: 1, count: 3 };
        assert_eq!(
            (0..9).filter(|&k| s.owns(k)).collect::<Vec<_>>(),
            vec![1, 4, 7]
        );
    }
}
