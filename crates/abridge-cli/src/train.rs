//! `abridge train`: data → vocabulary → encoded pairs → the training loop, with a progress bar,
//! a run manifest and resumable checkpoints.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use abridge::folder::TokenizerConfig;
use abridge::GenerationConfig;
use abridge_model::{ModelConfig, Optimizer, Params};
use abridge_nn::CellKind;
use abridge_tensor::Rng;
use abridge_text::batch::{BatchConfig, Encoded};
use abridge_text::stats::count;
use abridge_text::tokenize::Tokenizer;
use abridge_text::vocab::{Vocab, VocabConfig};
use abridge_train::checkpoint::{Checkpoint, TrainState};
use abridge_train::trainer::{train_with, DevSet, TrainConfig};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::{CellArg, DecayArg, OptimArg, TrainArgs};
use crate::with_threads;

/// FNV-1a 64 of a file's bytes (a fingerprint for the manifest, not a cryptographic hash).
fn fingerprint(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok(format!("fnv1a64:{h:016x}"))
}

/// The settings that define a run: resuming with any of them changed would continue a different
/// run than the one its checkpoints and log record.
fn run_key(a: &TrainArgs) -> Result<serde_json::Value> {
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    Ok(json!({
        "seed": a.seed,
        "train_data": fingerprint(&a.corpus.file)?,
        "dev_data": a.dev.as_deref().map(fingerprint).transpose()?,
        "lowercase": a.corpus.lowercase,
        "pretokenized": a.corpus.pretokenized,
        "vocab": path(&a.vocab), "vocab_size": a.vocab_size, "min_count": a.min_count,
        "embeddings": path(&a.embeddings), "init_from": path(&a.init_from),
        "cell": format!("{:?}", a.cell), "emb": a.emb, "hidden": a.hidden, "attn": a.attn,
        "enc_layers": a.enc_layers, "pointer": !a.no_pointer, "coverage": a.coverage,
        "cov_weight": a.cov_weight, "tie_output": a.tie_output,
        "attention": format!("{:?}", a.attention), "input_feeding": !a.no_input_feeding,
        "separate_embeddings": a.separate_embeddings, "dropout": a.dropout,
        "freeze_embeddings": a.freeze_embeddings,
        "optimizer": format!("{:?}", a.optimizer), "lr": a.lr, "adagrad_init": a.adagrad_init,
        "clip": a.clip, "warmup_steps": a.warmup_steps, "lr_decay": format!("{:?}", a.lr_decay),
        "batch_size": a.batch_size, "max_src_len": a.max_src_len, "max_tgt_len": a.max_tgt_len,
        "max_examples": a.max_examples,
    }))
}

/// The run's manifest, kept as it was with this resume appended to its `resumes`: refused when
/// the run's defining settings changed, unless `allow` (the changes are then recorded).
fn resumed_manifest(
    path: &Path,
    key: &serde_json::Value,
    step: u64,
    allow: bool,
) -> Result<serde_json::Value> {
    let mut m: serde_json::Value = match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("{}: not a JSON manifest", path.display()))?,
        Err(_) => json!({}),
    };
    let mut changed = serde_json::Map::new();
    if let (Some(old), Some(new)) = (m["run_key"].as_object(), key.as_object()) {
        for (k, v) in new {
            let was = old.get(k).cloned().unwrap_or(serde_json::Value::Null);
            if &was != v {
                changed.insert(k.clone(), json!({"was": was, "now": v}));
            }
        }
    }
    if !changed.is_empty() && !allow {
        let list: Vec<String> = changed
            .iter()
            .map(|(k, c)| format!("{k} (was {}, now {})", c["was"], c["now"]))
            .collect();
        bail!(
            "--resume: this is not the run in {}: changed {}; pass the flags it was started with, \
             or --allow-changed-run to continue it anyway (recorded in manifest.json)",
            path.parent().unwrap_or(Path::new(".")).display(),
            list.join(", ")
        );
    }
    if m.get("resumes").is_none_or(|r| !r.is_array()) {
        m["resumes"] = json!([]);
    }
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    m["resumes"]
        .as_array_mut()
        .expect("an array")
        .push(json!({"at_step": step, "unix_time": at, "changed": changed}));
    m["run_key"] = key.clone();
    Ok(m)
}

/// Encoded pairs, their reference summaries (as text) and the summaries' token counts (before
/// truncation).
fn encode(
    path: &Path,
    a: &TrainArgs,
    vocab: &Vocab,
    limit: Option<usize>,
    bcfg: &BatchConfig,
    lead: bool,
) -> Result<(Vec<Encoded>, Vec<String>, Vec<usize>)> {
    let corpus = a.corpus.open(path)?;
    let tok = Tokenizer {
        lowercase: a.corpus.lowercase,
        pretokenized: a.corpus.pretokenized,
    };
    let mut out = Vec::new();
    let mut refs = Vec::new();
    let mut lens = Vec::new();
    let stats = corpus.for_each_chunk_while(a.corpus.strict, 2048, |chunk| {
        for e in chunk {
            if limit.is_some_and(|l| out.len() >= l) {
                return false;
            }
            let (s, t) = (tok.tokenize(&e.text), tok.tokenize(&e.summary));
            out.push(Encoded::new(vocab, &s, &t, bcfg));
            lens.push(t.len());
            refs.push(e.summary);
        }
        limit.is_none_or(|l| out.len() < l)
    })?;
    if lead {
        warn_bad(&stats, path);
    }
    Ok((out, refs, lens))
}

/// Says on stderr how many records of `path` were skipped as bad, and the first.
pub(crate) fn warn_bad(stats: &abridge_text::corpus::ReadStats, path: &Path) {
    if stats.bad > 0 {
        eprintln!(
            "warning: skipped {} bad record(s) in {} (first: {})",
            stats.bad,
            path.display(),
            stats.first_bad[0]
        );
    }
}

pub fn run(a: &TrainArgs) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let world = abridge_train::dist::launcher_world_size(env);
    // Under a launcher, the machine's cores are shared among the ranks on it.
    let threads = match (a.corpus.threads, world) {
        (0, Some(n)) if n > 1 => {
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
            (cores / abridge_train::dist::launcher_local_size(env).unwrap_or(n)).max(1)
        }
        (t, _) => t,
    };
    with_threads(threads, || on_ranks(a, world))
}

/// Runs the training as one rank of an MPI job when launched by one (and built with the `mpi`
/// feature), else alone.
fn on_ranks(a: &TrainArgs, world: Option<usize>) -> Result<()> {
    if !(a.rank_timeout_s.is_finite() && a.rank_timeout_s > 0.0) {
        bail!("--rank-timeout-s must be above 0, got {}", a.rank_timeout_s);
    }
    #[cfg(feature = "mpi")]
    if world.is_some() {
        use abridge_train::dist::Ranks;
        let timeout = std::time::Duration::from_secs_f64(a.rank_timeout_s);
        let ranks = abridge_train::dist::mpi::MpiRanks::init(timeout)
            .context("MPI was initialised already")?;
        return match run_inner(a, &ranks) {
            // One rank's error ends every rank (the others would wait for it).
            Err(e) if ranks.size() > 1 => ranks.abort(&format!("{e:#}"), 1),
            r => r,
        };
    }
    if let Some(n) = world.filter(|&n| n > 1) {
        bail!(
            "launched as one of {n} MPI ranks, but this abridge was built without MPI: each rank \
             would train alone into the same --out; build with `cargo build --release --features \
             mpi` (needs an MPI library and libclang), or run one process"
        );
    }
    run_inner(a, &abridge_train::dist::Solo)
}

fn run_inner(a: &TrainArgs, ranks: &dyn abridge_train::dist::Ranks) -> Result<()> {
    let lead = ranks.rank() == 0;
    // Rank 0 speaks for the job.
    macro_rules! say {
        ($($t:tt)*) => {
            if lead {
                eprintln!($($t)*);
            }
        };
    }
    let tcfg = TrainConfig {
        batch_size: a.batch_size,
        max_src_len: a.max_src_len,
        max_tgt_len: a.max_tgt_len,
        max_steps: a.max_steps,
        time_limit_s: a.max_minutes.map(|m| m * 60.0),
        select: match a.select {
            crate::cli::SelectArg::Loss => abridge_train::trainer::Select::Loss,
            crate::cli::SelectArg::Rouge => abridge_train::trainer::Select::Rouge,
        },
        clip: a.clip,
        seed: a.seed,
        eval_every: a.eval_every,
        patience: a.patience,
        keep: a.keep,
        freeze_embeddings: a.freeze_embeddings,
        schedule: abridge_train::trainer::Schedule {
            warmup: a.warmup_steps,
            decay: match a.lr_decay {
                DecayArg::None => abridge_train::trainer::Decay::None,
                DecayArg::InverseSqrt => abridge_train::trainer::Decay::InverseSqrt,
                DecayArg::Linear => abridge_train::trainer::Decay::Linear,
            },
        },
    };
    let positive = |flag: &str, v: f64, max: f64| -> Result<()> {
        if !(v.is_finite() && v > 0.0 && v <= max) {
            bail!("{flag} must be a number above 0 and at most {max}, got {v}");
        }
        Ok(())
    };
    if let Some(lr) = a.lr {
        positive("--lr", lr, 10.0)?;
    }
    positive("--clip", a.clip, 1e6)?;
    positive("--adagrad-init", a.adagrad_init, 1e6).context(
        "Adagrad's accumulator must start above 0 (0.1 as in See et al.; PyTorch's default of 0 \
         divides by zero for words not yet seen)",
    )?;
    if !(a.cov_weight.is_finite() && (0.0..=100.0).contains(&a.cov_weight)) {
        bail!(
            "--cov-weight must be between 0 and 100, got {}",
            a.cov_weight
        );
    }
    if !(0.0..1.0).contains(&a.dropout) {
        bail!("--dropout {} is outside [0, 1)", a.dropout);
    }
    if a.select == crate::cli::SelectArg::Rouge && (a.dev.is_none() || a.no_dev_rouge) {
        bail!("--select rouge needs --dev (and not --no-dev-rouge): it compares dev ROUGE");
    }
    if a.batch_size == 0 || a.max_src_len == 0 || a.max_tgt_len == 0 {
        bail!("--batch-size, --max-src-len and --max-tgt-len must be at least 1");
    }
    let mut ck = if a.resume {
        let ck = Checkpoint::load(&a.out).with_context(|| {
            format!("--resume: no checkpoint to continue in {}", a.out.display())
        })?;
        say!("resuming {} at step {}", a.out.display(), ck.state.step);
        ck
    } else {
        if a.out.join("latest").exists() {
            bail!(
                "{} already holds a run; pass --resume to continue it or choose another --out",
                a.out.display()
            );
        }
        let (config, params, vocab) = match &a.init_from {
            Some(from) => {
                let dir = abridge_train::checkpoint::resolve(from, "best")
                    .or_else(|_| abridge_train::checkpoint::resolve(from, "latest"))
                    .with_context(|| format!("--init-from {}: no model there", from.display()))?;
                let (meta, mut params) = abridge_train::checkpoint::read_model(&dir)?;
                let (mut config, vocab) = (meta.config, meta.vocab);
                if a.coverage && !config.coverage {
                    // New coverage weights start at zero: the model begins exactly where it was.
                    params.att_cov = vec![0.0; config.attn];
                    config.coverage = true;
                }
                config.cov_weight = a.cov_weight;
                config
                    .validate()
                    .map_err(|m| anyhow::anyhow!("--init-from {}: {m}", from.display()))?;
                say!(
                    "initialised from {} (coverage {})",
                    dir.display(),
                    if config.coverage { "on" } else { "off" }
                );
                (config, params, vocab)
            }
            None => {
                let tok = Tokenizer {
                    lowercase: a.corpus.lowercase,
                    pretokenized: a.corpus.pretokenized,
                };
                let vocab = match &a.vocab {
                    Some(p) => {
                        let v = Vocab::load(p)?;
                        if let Some(built) = v.tokenizer().filter(|b| *b != tok) {
                            let flag = |on: bool, name: &str| {
                                if on {
                                    format!("with {name}")
                                } else {
                                    format!("without {name}")
                                }
                            };
                            bail!(
                                "{}: the vocabulary was counted {} and {}, but this run reads the \
                                 corpus {} and {}; pass the same flags or rebuild it with `abridge \
                                 vocab build`",
                                p.display(),
                                flag(built.lowercase, "--lowercase"),
                                flag(built.pretokenized, "--pretokenized"),
                                flag(tok.lowercase, "--lowercase"),
                                flag(tok.pretokenized, "--pretokenized"),
                            );
                        }
                        v
                    }
                    None => {
                        say!(
                            "building a vocabulary of {} from {} ...",
                            a.vocab_size,
                            a.corpus.file.display()
                        );
                        let corpus = a.corpus.open(&a.corpus.file)?;
                        let counts = count(&corpus, &tok, a.corpus.strict)?;
                        Vocab::from_counts(
                            &counts.combined(),
                            VocabConfig {
                                max_size: Some(a.vocab_size),
                                min_count: a.min_count.max(1),
                            },
                        )
                        .with_tokenizer(tok)
                    }
                };
                let config = ModelConfig {
                    cell: match a.cell {
                        CellArg::Lstm => CellKind::Lstm,
                        CellArg::Gru => CellKind::Gru,
                    },
                    vocab: vocab.len(),
                    emb: a.emb,
                    hidden: a.hidden,
                    attn: a.attn,
                    enc_layers: a.enc_layers,
                    pointer: !a.no_pointer,
                    coverage: a.coverage,
                    cov_weight: a.cov_weight,
                    tie_output: a.tie_output,
                    dropout: a.dropout,
                    attention: match a.attention {
                        crate::cli::AttentionArg::Bahdanau => {
                            abridge_model::AttentionKind::Bahdanau
                        }
                        crate::cli::AttentionArg::Luong => abridge_model::AttentionKind::Luong,
                    },
                    input_feeding: !a.no_input_feeding,
                    separate_embeddings: a.separate_embeddings,
                };
                abridge_model::ModelConfig::try_from(
                    &abridge_model::config::ModelConfigFile::from(&config),
                )
                .map_err(|m| anyhow::anyhow!("model: {m}"))?;
                let mut params = Params::init(&config, &mut Rng::new(a.seed));
                if let Some(path) = &a.embeddings {
                    let fmt = abridge_text::embeddings::EmbFormat::guess(path);
                    let (matrix, dim, cov) =
                        abridge_text::embeddings::for_vocab(path, fmt, &vocab, a.seed)?;
                    if dim != config.emb {
                        bail!(
                            "{}: vectors have {dim} dimensions but --emb is {}",
                            path.display(),
                            config.emb
                        );
                    }
                    if !params.dec_embedding.is_empty() {
                        params.dec_embedding = matrix.clone();
                    }
                    params.embedding = matrix;
                    say!(
                        "embeddings from {}: {} of {} words ({:.1}% of corpus tokens)",
                        path.display(),
                        cov.found,
                        cov.total,
                        100.0 * cov.token_coverage
                    );
                }
                (config, params, vocab)
            }
        };
        let optimizer = match a.optimizer {
            OptimArg::Adagrad => Optimizer::adagrad(a.lr.unwrap_or(0.15), a.adagrad_init),
            OptimArg::Adam => Optimizer::adam(a.lr.unwrap_or(1e-3)),
        };
        Checkpoint {
            tokenizer: TokenizerConfig::for_training(&vocab, a.corpus.lowercase, a.max_src_len),
            // Set from the training summaries' lengths below.
            generation: GenerationConfig::default(),
            config,
            params,
            vocab,
            optimizer,
            state: TrainState::default(),
        }
    };
    let bcfg = BatchConfig {
        max_src_len: a.max_src_len,
        max_tgt_len: a.max_tgt_len,
        ..Default::default()
    };
    say!("reading and encoding {} ...", a.corpus.file.display());
    let (train_data, _, lens) = encode(&a.corpus.file, a, &ck.vocab, a.max_examples, &bcfg, lead)?;
    if !a.resume {
        // Decoding defaults for this model: lengths around those of its training summaries.
        ck.generation = GenerationConfig::for_target_lengths(&lens);
        say!(
            "decoding defaults (generation_config.json): min_len {}, max_len {}, beam {}",
            ck.generation.min_len,
            ck.generation.max_len,
            ck.generation.beam
        );
    }
    let dev = match &a.dev {
        Some(p) => {
            let (data, references, _) = encode(p, a, &ck.vocab, Some(a.dev_examples), &bcfg, lead)?;
            if data.is_empty() {
                bail!(
                    "--dev {}: no valid pairs (every record was bad or empty); fix the file or \
                     leave out --dev",
                    p.display()
                );
            }
            DevSet {
                data,
                references: if a.no_dev_rouge {
                    Vec::new()
                } else {
                    references
                },
                max_decode: a.max_tgt_len,
            }
        }
        None => DevSet::default(),
    };
    let dev_data = &dev.data;
    if lead {
        std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    }
    let key = run_key(a)?;
    let manifest_path = a.out.join("manifest.json");
    let manifest = if a.resume {
        resumed_manifest(&manifest_path, &key, ck.state.step, a.allow_changed_run)?
    } else {
        json!({
            "format": "abridge-run", "version": 1,
            "abridge_version": env!("CARGO_PKG_VERSION"),
            "model": abridge_model::config::ModelConfigFile::from(&ck.config),
            "train": tcfg, "seed": a.seed, "threads": rayon::current_num_threads(),
            "ranks": ranks.size(),
            "data": {
                "train": {"path": a.corpus.file.display().to_string(), "fingerprint": key["train_data"], "pairs_used": train_data.len()},
                "dev": a.dev.as_ref().map(|p| json!({"path": p.display().to_string(), "fingerprint": key["dev_data"], "pairs_used": dev_data.len()})),
                "tokenizer": {"lowercase": a.corpus.lowercase, "pretokenized": a.corpus.pretokenized},
            },
            "run_key": key,
            "rouge_flavor": "rouge-score 0.1.2 (stemming) for reported scores",
        })
    };
    if lead {
        abridge::tensors::write_atomic(&manifest_path, &serde_json::to_vec_pretty(&manifest)?)
            .context("writing manifest.json")?;
    }
    if ranks.size() > 1 {
        say!(
            "world size {0}: {0} rank(s) × {1} thread(s); each global batch of {2} split among them",
            ranks.size(),
            rayon::current_num_threads(),
            a.batch_size
        );
    }
    say!(
        "training: {} pairs, {} dev pairs, {} parameters, vocabulary {}",
        train_data.len(),
        dev_data.len(),
        ck.params.count(),
        ck.vocab.len()
    );
    let mut progress = Progress::new(
        lead,
        &tcfg,
        ck.state.step,
        train_data.len().div_ceil(a.batch_size),
    );
    let summary = train_with(&a.out, &mut ck, &tcfg, &train_data, &dev, ranks, |m| {
        progress.step(m)
    })?;
    progress.finish();
    if !lead {
        return Ok(());
    }
    outln!(
        "{} steps, last loss {}, best dev loss {}, {} batch(es) skipped: {}; best checkpoint {} \
         (in {})",
        summary.steps,
        if summary.last_loss.is_finite() {
            format!("{:.4}", summary.last_loss)
        } else {
            "-".into()
        },
        summary
            .best_dev_loss
            .map_or("-".into(), |d| format!("{d:.4}")),
        summary.skipped_batches,
        summary.stop,
        summary.best.as_deref().unwrap_or("-"),
        a.out.display()
    )?;
    Ok(())
}

/// Training progress: on a terminal, a bar whose total and ETA follow whichever of `--max-steps`
/// and `--max-minutes` ends the run first, with the epoch; off a terminal (a log file), a plain
/// line at every evaluation and a heartbeat line every minute.
struct Progress {
    bar: Option<ProgressBar>,
    began: Instant,
    first_step: u64,
    max_steps: u64,
    time_limit_s: Option<f64>,
    batches_per_epoch: usize,
    last_beat: Instant,
}

impl Progress {
    fn new(
        lead: bool,
        tcfg: &abridge_train::trainer::TrainConfig,
        step: u64,
        batches_per_epoch: usize,
    ) -> Self {
        use std::io::IsTerminal;
        let bar = (lead && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(1000);
            bar.set_style(ProgressStyle::with_template("{bar:30} {msg}").expect("static template"));
            bar
        });
        Self {
            bar,
            began: Instant::now(),
            first_step: step,
            max_steps: tcfg.max_steps,
            time_limit_s: tcfg.time_limit_s,
            batches_per_epoch: batches_per_epoch.max(1),
            last_beat: Instant::now(),
        }
    }

    /// Fraction done and seconds left, by whichever limit comes first.
    fn eta(&self, step: u64) -> (f64, f64) {
        let el = self.began.elapsed().as_secs_f64();
        let done = step.saturating_sub(self.first_step) as f64;
        let per_step = if done > 0.0 { el / done } else { f64::INFINITY };
        let by_steps = (self.max_steps.saturating_sub(step)) as f64 * per_step;
        let by_time = self
            .time_limit_s
            .map_or(f64::INFINITY, |l| (l - el).max(0.0));
        let left = by_steps.min(by_time);
        let frac = if left.is_finite() {
            el / (el + left).max(1e-9)
        } else {
            0.0
        };
        (frac.clamp(0.0, 1.0), left)
    }

    fn step(&mut self, m: &abridge_train::trainer::StepMetrics) {
        let (frac, left) = self.eta(m.step);
        let epoch = format!(
            "epoch {} ({:.0} %)",
            m.epoch + 1,
            100.0 * ((m.step as usize - 1) % self.batches_per_epoch + 1) as f64
                / self.batches_per_epoch as f64
        );
        let hms = |s: f64| {
            if !s.is_finite() {
                return "?".to_string();
            }
            let s = s as u64;
            format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        };
        let eval = m.dev_loss.map(|d| {
            let rouge = m
                .dev_rouge
                .map(|r| {
                    format!(
                        ", greedy ROUGE-1/2/Lsum F1 {:.2}/{:.2}/{:.2}",
                        100.0 * r[0],
                        100.0 * r[1],
                        100.0 * r[2]
                    )
                })
                .unwrap_or_default();
            format!("step {} ({epoch}): dev loss {d:.4}{rouge}", m.step)
        });
        match &self.bar {
            Some(bar) => {
                bar.set_position((frac * 1000.0) as u64);
                bar.set_message(format!(
                    "step {}  {epoch}  loss {:.3}  {:.0} tok/s  [{} < {}]",
                    m.step,
                    m.loss,
                    m.tokens_per_s,
                    hms(self.began.elapsed().as_secs_f64()),
                    hms(left)
                ));
                if let Some(line) = eval {
                    bar.println(line);
                }
            }
            None => {
                if let Some(line) = eval {
                    eprintln!("{line}");
                } else if self.last_beat.elapsed().as_secs() >= 60 {
                    eprintln!(
                        "step {} ({epoch}): loss {:.4}, {:.0} tok/s, {} elapsed, {} left",
                        m.step,
                        m.loss,
                        m.tokens_per_s,
                        hms(self.began.elapsed().as_secs_f64()),
                        hms(left)
                    );
                } else {
                    return;
                }
                self.last_beat = Instant::now();
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
