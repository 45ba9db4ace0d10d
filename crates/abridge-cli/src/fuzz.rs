//! `abridge bench fuzz`: mutation fuzzing, for a time budget, of the four parsers that read
//! outside input — the tokenizer (with the detokenizer and sentence splitter), the corpus
//! readers, the model folder loader and the HTTP request parser.
//!
//! Each target starts from its kept corpus (`fuzz/corpus/<target>/`, replayed in full first; the
//! model folder target also from the files of a freshly written tiny model), then runs mutants of
//! pool entries (bit flips, byte edits, deleted or repeated ranges, inserted tokens that parsers
//! treat specially, splices of two entries) until the budget is spent. An input showing a feature
//! not seen before (an error message of a new kind, a new kind of token) joins the pool, and with
//! `--grow` the corpus on disk: a cheap stand-in for coverage feedback.
//!
//! A finding is a panic, a broken invariant (a token over the length cap, an accepted request
//! with no document) or an input still running after `--hang-ms`; its input is written to
//! `--crashes` and the command exits non-zero. It runs in-process on one thread, so a hang ends
//! the process (after saving the input) rather than the fuzzer waiting forever.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abridge::folder::{self, FolderMeta, ModelFolder, TokenizerConfig};
use abridge::tensors::WeightType;
use abridge::{DecodeOptions, GenerationConfig, Summarizer};
use abridge_model::{ModelConfig, Params};
use abridge_tensor::Rng;
use abridge_text::corpus::{Corpus, Fields, Format as CorpusFormat};
use abridge_text::tokenize::{self, Tokenizer, MAX_TOKEN_CHARS};
use abridge_text::vocab::{Vocab, VocabConfig};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{FuzzArgs, FuzzTarget};
use crate::serve_api::{parse_request, RequestLimits};

/// What one input did: `Ok(features)` (short labels of the result; an input showing one not
/// seen before is kept) or `Err(finding)` (a broken invariant).
type Outcome = std::result::Result<Vec<String>, String>;

/// The model folder's files, in the order the first byte of a folder input selects them.
const FOLDER_FILES: [&str; 5] = [
    folder::CONFIG,
    folder::GENERATION,
    folder::TOKENIZER,
    folder::VOCAB,
    folder::WEIGHTS,
];

/// Corpus layouts, in the order the first byte of a corpus input selects them.
const CORPUS_NAMES: [&str; 5] = ["c.jsonl", "c.csv", "c.tsv", "c.source", "c.jsonl.zst"];

/// Byte strings the parsers treat specially, inserted by the mutator.
const TOKENS: [&[u8]; 28] = [
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"\t",
    b"\0",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\\u00",
    b"\\ud800",
    b"1e400",
    b"-1",
    b"NaN",
    b"null",
    b"---",
    b"''''",
    b"....",
    b"http://",
    b"@x.com",
    b"\xe3\x80\x82",
    b"\xc4\xb0",
];

/// The tiny model whose files seed the folder target, and what loading needs.
struct Ctx {
    dir: PathBuf,
    files: HashMap<&'static str, Vec<u8>>,
    scratch: tempfile::TempDir,
}

impl Ctx {
    fn new() -> Result<Self> {
        let scratch = tempfile::tempdir().context("creating a scratch folder")?;
        let words = "the cat sat on mat . it was a sunny day , and dog slept";
        let counts = words
            .split(' ')
            .enumerate()
            .map(|(i, w)| (w.to_string(), 100 - i as u64))
            .collect();
        let vocab = Vocab::from_counts(&counts, VocabConfig::default());
        let meta = FolderMeta {
            config: ModelConfig {
                vocab: vocab.len(),
                emb: 4,
                hidden: 4,
                attn: 4,
                coverage: true,
                ..Default::default()
            },
            generation: GenerationConfig {
                min_len: 1,
                max_len: 4,
                ..Default::default()
            },
            tokenizer: TokenizerConfig {
                lowercase: true,
                ptb: false,
                max_source_tokens: 20,
            },
            vocab,
        };
        let dir = scratch.path().join("model");
        let mut params = Params::<f32>::init(&meta.config, &mut Rng::new(3));
        folder::write_model(&dir, &meta, &mut params, WeightType::F32)?;
        let mut files = HashMap::new();
        for name in FOLDER_FILES {
            let p = dir.join(name);
            files.insert(
                name,
                std::fs::read(&p).with_context(|| p.display().to_string())?,
            );
        }
        Ok(Self {
            dir,
            files,
            scratch,
        })
    }

    /// The seeds of the folder target: each file, unchanged, behind its selector byte.
    fn folder_seeds(&self) -> Vec<Vec<u8>> {
        FOLDER_FILES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut v = vec![i as u8];
                v.extend_from_slice(&self.files[name]);
                v
            })
            .collect()
    }
}

impl FuzzTarget {
    fn name(self) -> &'static str {
        match self {
            FuzzTarget::Tokenizer => "tokenizer",
            FuzzTarget::Corpus => "corpus",
            FuzzTarget::Folder => "folder",
            FuzzTarget::Request => "request",
            FuzzTarget::PanicCheck => "panic-check",
        }
    }

    /// Runs one input.
    fn run(self, input: &[u8], ctx: &Ctx) -> Outcome {
        match self {
            FuzzTarget::Tokenizer => tokenizer(input),
            FuzzTarget::Corpus => corpus(input, ctx),
            FuzzTarget::Folder => model_folder(input, ctx),
            FuzzTarget::Request => request(input),
            FuzzTarget::PanicCheck => {
                // Checks the harness itself: panics on inputs holding `PANIC`, never returns on
                // inputs holding `HANG`.
                if input.windows(5).any(|w| w == b"PANIC") {
                    panic!("panic-check found its marker");
                }
                if input.windows(4).any(|w| w == b"HANG") {
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                Ok(vec!["ok".into()])
            }
        }
    }
}

fn tokenizer(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let mut kinds = std::collections::BTreeSet::new();
    for (lowercase, pretokenized) in [(false, false), (true, false), (true, true)] {
        let mut toks = Tokenizer {
            lowercase,
            pretokenized,
        }
        .tokenize(&text);
        if let Some(t) = toks
            .iter()
            .find(|t| t.is_empty() || t.chars().count() > MAX_TOKEN_CHARS)
        {
            return Err(format!(
                "a token of {} characters (lowercase {lowercase}, pretokenized {pretokenized})",
                t.chars().count()
            ));
        }
        tokenize::to_ptb(&mut toks);
        let sentences = tokenize::split_sentences(&toks);
        if sentences.iter().map(Vec::len).sum::<usize>() != toks.len() {
            return Err("the sentence splitter lost or added tokens".into());
        }
        let _ = tokenize::detokenize(&toks);
        let _ = tokenize::detokenize_lines(&toks);
        kinds.extend(toks.iter().map(|t| token_kind(t)));
    }
    Ok(kinds.into_iter().collect())
}

/// What kind of token `t` is: the class of its first character, the first of a few characters
/// the scanner treats specially that it holds after that, and whether it was cut at the length cap
/// (the tokenizer target's features).
fn token_kind(t: &str) -> String {
    let first = t.chars().next().unwrap_or(' ');
    let class = if ('\u{3040}'..='\u{9fff}').contains(&first) {
        'h'
    } else if first.is_alphabetic() {
        'a'
    } else if first.is_numeric() {
        'n'
    } else if first.is_ascii_punctuation() {
        'p'
    } else {
        'o'
    };
    let inner = t
        .chars()
        .skip(1)
        .find(|c| ".@/:'-$,".contains(*c))
        .unwrap_or('_');
    let cut = if t.chars().count() == MAX_TOKEN_CHARS {
        "cut"
    } else {
        ""
    };
    format!("{class}{inner}{cut}")
}

fn corpus(input: &[u8], ctx: &Ctx) -> Outcome {
    let Some((&which, body)) = input.split_first() else {
        return Ok(vec!["empty".into()]);
    };
    let name = CORPUS_NAMES[which as usize % CORPUS_NAMES.len()];
    let path = ctx.scratch.path().join(name);
    let write = |p: &Path, b: &[u8]| std::fs::write(p, b).map_err(|e| format!("scratch: {e}"));
    let format = if name.ends_with(".source") {
        // Documents before the first NUL byte, summaries after it.
        let cut = body.iter().position(|&b| b == 0).unwrap_or(body.len());
        write(&path, &body[..cut])?;
        let target = path.with_extension("target");
        write(&target, body.get(cut + 1..).unwrap_or_default())?;
        CorpusFormat::LinePair { target }
    } else {
        write(&path, body)?;
        CorpusFormat::guess(&path, Fields::default()).ok_or("no format guessed")?
    };
    let c = Corpus::new(&path, format);
    let mut features = vec![];
    for strict in [false, true] {
        features.push(match c.read_all(strict) {
            Ok((ex, stats)) => format!(
                "{name} strict:{strict} ok:{}:{}",
                ex.len().min(2),
                stats.bad.min(1)
            ),
            Err(e) => format!(
                "{name} strict:{strict} err:{}",
                error_kind(&e.to_string(), body)
            ),
        });
    }
    Ok(features)
}

fn model_folder(input: &[u8], ctx: &Ctx) -> Outcome {
    let Some((&which, body)) = input.split_first() else {
        return Ok(vec!["empty".into()]);
    };
    let chosen = FOLDER_FILES[which as usize % FOLDER_FILES.len()];
    let read = ModelFolder::from_files(&ctx.dir, |name| {
        Ok(if name == chosen {
            Some(std::borrow::Cow::Borrowed(body))
        } else {
            ctx.files
                .get(name)
                .map(|b| std::borrow::Cow::Borrowed(b.as_slice()))
        })
    });
    match read {
        Err(e) => Ok(vec![format!(
            "{chosen} err:{}",
            error_kind(&e.to_string(), body)
        )]),
        Ok(f) => {
            // A folder that loads must summarize (or refuse with an error), never panic.
            let m = Summarizer::from_folder("fuzz".into(), f);
            let r = m.summarize(
                "The cat sat on the mat. It was a sunny day.",
                &DecodeOptions::new(),
            );
            Ok(vec![format!("{chosen} loaded:{}", r.is_ok())])
        }
    }
}

fn request(input: &[u8]) -> Outcome {
    let limits = RequestLimits { max_docs: 32 };
    match parse_request(
        input,
        &DecodeOptions::new(),
        &GenerationConfig::default(),
        limits,
    ) {
        Err(e) => Ok(vec![format!(
            "{} {} {}",
            e.status,
            e.code,
            error_kind(&e.message, input)
        )]),
        Ok(r) => {
            if r.texts.is_empty()
                || r.texts.len() > limits.max_docs
                || (!r.many && r.texts.len() != 1)
            {
                return Err(format!(
                    "accepted a request with {} documents (many: {})",
                    r.texts.len(),
                    r.many
                ));
            }
            Ok(vec![format!("ok many:{}", r.many)])
        }
    }
}

/// The kind of error a message about `input` reports: its first four plain lower-case words
/// that do not occur in the input (names, numbers and quoted input left out), so that inputs
/// reaching a new kind of error are kept but one error with other specifics is not.
fn error_kind(msg: &str, input: &[u8]) -> String {
    msg.split(|c: char| !c.is_ascii_lowercase())
        .filter(|w| w.len() >= 3 && !input.windows(w.len()).any(|x| x == w.as_bytes()))
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
}

/// xorshift64*: the mutator's randomness (seeded, so a run can be repeated).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A mutant of `pool[i]`: one to eight edits, capped at `max_len` bytes. The first byte (which
/// selects a file or layout in two targets) is edited like the rest.
fn mutate(pool: &[Vec<u8>], i: usize, dice: &mut Dice, max_len: usize) -> Vec<u8> {
    let mut v = pool[i].clone();
    for _ in 0..1 + dice.below(8) {
        let len = v.len();
        match dice.below(8) {
            0 if len > 0 => {
                let at = dice.below(len);
                v[at] ^= 1 << dice.below(8);
            }
            1 if len > 0 => {
                let at = dice.below(len);
                v[at] = dice.next() as u8;
            }
            2 => {
                let at = dice.below(len + 1);
                v.insert(at, dice.next() as u8);
            }
            3 if len > 0 => {
                let at = dice.below(len);
                let n = 1 + dice.below((len - at).min(64));
                v.drain(at..at + n);
            }
            4 if len > 0 => {
                // Repeat a range: long runs are where quadratic behaviour hides.
                let at = dice.below(len);
                let n = 1 + dice.below((len - at).min(16));
                let piece = v[at..at + n].to_vec();
                let most = if dice.below(8) == 0 { 4096 } else { 8 };
                let times = 1 + dice.below(most);
                let rep: Vec<u8> = piece.iter().copied().cycle().take(n * times).collect();
                v.splice(at..at, rep);
            }
            5 => {
                let at = dice.below(len + 1);
                let t = TOKENS[dice.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            6 if pool.len() > 1 => {
                // Splice: this entry's head, another's tail.
                let other = &pool[dice.below(pool.len())];
                let (a, b) = (dice.below(len + 1), dice.below(other.len() + 1));
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            _ if len > 0 => {
                // Cut.
                v.truncate(dice.below(len));
            }
            _ => v.push(dice.next() as u8),
        }
    }
    v.truncate(max_len);
    v
}

/// The input being run, for the watchdog.
struct Running {
    target: &'static str,
    input: Vec<u8>,
    since: Instant,
}

/// Writes a finding's input to `dir/<target>-<kind>-<crc32>`; returns the path.
fn save_finding(dir: &Path, target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let p = dir.join(format!(
        "{target}-{kind}-{}",
        abridge::tensors::checksum(input)
    ));
    let _ = std::fs::create_dir_all(dir);
    if let Err(e) = std::fs::write(&p, input) {
        eprintln!("error: saving {}: {e}", p.display());
    }
    p
}

/// The kept corpus of `target`: the files under `dir/<target>/`, by name.
fn load_corpus(dir: &Path, target: &str) -> Result<Vec<Vec<u8>>> {
    Ok(corpus_files(dir, target)?
        .into_iter()
        .map(|(_, b)| b)
        .collect())
}

/// Shrinks the kept corpus of `t` to the inputs that each show a feature no shorter one shows
/// (shortest first); the others' files are removed. Returns (before, after).
fn minimize(dir: &Path, t: FuzzTarget, ctx: &Ctx) -> Result<(usize, usize)> {
    let mut files = corpus_files(dir, t.name())?;
    files.sort_by_key(|(p, b)| (b.len(), p.clone()));
    let mut seen = HashSet::new();
    let before = files.len();
    let mut after = 0;
    for (p, b) in files {
        let keep = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run(&b, ctx))) {
            Ok(Ok(features)) => features
                .into_iter()
                .fold(false, |new, f| seen.insert(f) | new),
            // Findings stay: they are what the corpus is for.
            _ => true,
        };
        if keep {
            after += 1;
        } else {
            std::fs::remove_file(&p).with_context(|| p.display().to_string())?;
        }
    }
    Ok((before, after))
}

/// The files under `dir/<target>/` and their bytes, by name.
fn corpus_files(dir: &Path, target: &str) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let d = dir.join(target);
    let mut names = match std::fs::read_dir(&d) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| d.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(e).with_context(|| d.display().to_string()),
    };
    names.sort();
    names
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).with_context(|| p.display().to_string())?;
            Ok((p, b))
        })
        .collect()
}

/// Per-target tallies.
#[derive(Default)]
struct Tally {
    executions: u64,
    corpus: usize,
    findings: Vec<String>,
}

/// The fuzzing state: each target's pool of inputs and the outcomes seen.
struct Fuzzer<'a> {
    args: &'a FuzzArgs,
    ctx: Ctx,
    targets: Vec<FuzzTarget>,
    pools: Vec<Vec<Vec<u8>>>,
    seen: Vec<HashSet<String>>,
    tallies: Vec<Tally>,
    running: Arc<Mutex<Option<Running>>>,
}

impl Fuzzer<'_> {
    /// Runs `input` on target `k`; a new outcome of a mutant joins the pool (and, with
    /// `--grow`, the corpus on disk); a finding is saved and tallied.
    fn execute(&mut self, k: usize, input: Vec<u8>, mutant: bool) {
        let t = self.targets[k];
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running {
            target: t.name(),
            input: input.clone(),
            since: Instant::now(),
        });
        let ctx = &self.ctx;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.run(&input, ctx)));
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.tallies[k].executions += 1;
        let finding = match r {
            Ok(Ok(features)) => {
                let mut new = false;
                for f in features {
                    new |= self.seen[k].insert(f);
                }
                if new && mutant {
                    if self.args.grow {
                        let dir = self.args.corpus.join(t.name());
                        let _ = std::fs::create_dir_all(&dir);
                        let _ =
                            std::fs::write(dir.join(abridge::tensors::checksum(&input)), &input);
                    }
                    self.pools[k].push(input.clone());
                }
                None
            }
            Ok(Err(broken)) => Some(("invariant", broken)),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Some(("panic", msg))
            }
        };
        if let Some((kind, msg)) = finding {
            let p = save_finding(&self.args.crashes, t.name(), kind, &input);
            eprintln!(
                "finding ({}, {kind}): {msg}; input saved as {}",
                t.name(),
                p.display()
            );
            self.tallies[k].findings.push(format!("{kind}: {msg}"));
        }
    }
}

/// Starts the watchdog: an input running past `hang` is saved under `crashes` and the process
/// ends with status 2.
fn watchdog(running: Arc<Mutex<Option<Running>>>, crashes: PathBuf, hang: Duration) -> Result<()> {
    std::thread::Builder::new()
        .name("fuzz-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let r = running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = r.as_ref().filter(|r| r.since.elapsed() > hang) {
                let p = save_finding(&crashes, r.target, "hang", &r.input);
                eprintln!(
                    "finding: a {} input ran past {} ms; saved as {}",
                    r.target,
                    hang.as_millis(),
                    p.display()
                );
                std::process::exit(2);
            }
        })
        .context("starting the watchdog")?;
    Ok(())
}

pub fn run(a: &FuzzArgs) -> Result<()> {
    let targets: Vec<FuzzTarget> = if a.target.is_empty() {
        vec![
            FuzzTarget::Tokenizer,
            FuzzTarget::Corpus,
            FuzzTarget::Folder,
            FuzzTarget::Request,
        ]
    } else {
        a.target.clone()
    };
    let ctx = Ctx::new()?;
    let running: Arc<Mutex<Option<Running>>> = Arc::default();
    watchdog(
        running.clone(),
        a.crashes.clone(),
        Duration::from_millis(a.hang_ms),
    )?;
    let mut f = Fuzzer {
        args: a,
        pools: vec![],
        seen: vec![HashSet::new(); targets.len()],
        tallies: vec![],
        targets,
        running,
        ctx,
    };
    if a.minimize {
        for &t in &f.targets {
            let (before, after) = minimize(&a.corpus, t, &f.ctx)?;
            eprintln!("{}: kept {after} of {before} inputs", t.name());
        }
    }
    for k in 0..f.targets.len() {
        let t = f.targets[k];
        let mut pool = load_corpus(&a.corpus, t.name())?;
        f.tallies.push(Tally {
            corpus: pool.len(),
            ..Default::default()
        });
        if t == FuzzTarget::Folder {
            pool.extend(f.ctx.folder_seeds());
        }
        if pool.is_empty() {
            pool.push(vec![]);
        }
        f.pools.push(pool);
    }
    // Panics are findings, reported once each, not printed by the default hook.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // Every kept input first, then mutants until the budget is spent.
    for k in 0..f.targets.len() {
        for i in 0..f.pools[k].len() {
            let input = f.pools[k][i].clone();
            f.execute(k, input, false);
        }
    }
    let mut dice = Dice(a.seed | 1);
    let start = Instant::now();
    let budget = Duration::from_secs_f64(a.seconds.max(0.0));
    let mut k = 0;
    while start.elapsed() < budget {
        let i = dice.below(f.pools[k].len());
        let input = mutate(&f.pools[k], i, &mut dice, a.max_len);
        f.execute(k, input, true);
        k = (k + 1) % f.targets.len();
    }
    std::panic::set_hook(hook);
    let mut found = 0;
    let mut per_target = serde_json::Map::new();
    for (k, t) in f.targets.iter().enumerate() {
        let tally = &f.tallies[k];
        found += tally.findings.len();
        per_target.insert(
            t.name().into(),
            json!({
                "executions": tally.executions,
                "kept_corpus": tally.corpus,
                "pool": f.pools[k].len(),
                "features": f.seen[k].len(),
                "findings": tally.findings,
            }),
        );
    }
    outln!(
        "{}",
        json!({
            "bench": "abridge_fuzz",
            "seconds": (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "seed": a.seed,
            "targets": per_target,
            "findings": found,
        })
    )?;
    if found > 0 {
        anyhow::bail!(
            "{found} finding(s); inputs saved under {}",
            a.crashes.display()
        );
    }
    Ok(())
}
