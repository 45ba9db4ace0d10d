//! The training loop.
//!
//! Each step: a batch from the epoch's plan (`abridge_text::batch::plan` seeded with
//! `seed + epoch`, so the order is a pure function of the seed), the teacher-forced loss, its
//! gradient, clipping by global norm, and the optimizer. A batch whose loss or gradient norm is not
//! finite is skipped — no update — and reported. Every `eval_every` steps the mean loss on the
//! development set is measured; a better one saves `best`, and `patience` evaluations without
//! improvement stop the run. A checkpoint is saved at every evaluation and at the end, holding the
//! exact optimizer state and position in the data, so a resumed run takes bit-identically the same
//! steps as an uninterrupted one (same seed, same thread count).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use abridge_model::{clip_global_norm, Forward, Inputs, Loss, Params};
use abridge_text::batch::{plan, Batch, BatchConfig, Encoded};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::dist::{share, Ranks, Solo};

/// Training settings; defaults follow See et al. (2017).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub max_src_len: usize,
    pub max_tgt_len: usize,
    /// Stop after this many optimizer steps.
    pub max_steps: u64,
    /// Clip gradients to this global L2 norm.
    pub clip: f64,
    pub seed: u64,
    /// Evaluate (and checkpoint) every this many steps.
    pub eval_every: u64,
    /// Stop after this many evaluations without a better dev loss (0 = never).
    pub patience: usize,
    /// Checkpoint folders kept besides the best one (older ones are deleted; 0 keeps all).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Learning-rate schedule (a factor on the optimizer's rate).
    #[serde(default)]
    pub schedule: Schedule,
    /// Keep the word embeddings fixed (e.g. pretrained GloVe).
    #[serde(default)]
    pub freeze_embeddings: bool,
    /// Wall-clock budget for this invocation in seconds (a resumed run gets a fresh budget); when
    /// it is spent the run saves a checkpoint and stops as if `max_steps` were reached.
    #[serde(default)]
    pub time_limit_s: Option<f64>,
    /// What makes a checkpoint the best: the dev loss, or the dev ROUGE of greedy decodes (the
    /// mean of ROUGE-1, -2 and -Lsum F1; needs dev references).
    #[serde(default)]
    pub select: Select,
}

/// The criterion for the best checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Select {
    #[default]
    Loss,
    Rouge,
}

/// `lr_t = lr · warmup(t) · decay(t)`, with a linear warm-up over `warmup` steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub warmup: u64,
    pub decay: Decay,
}

/// The decay after warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decay {
    /// Constant (See et al. use constant Adagrad).
    #[default]
    None,
    /// `√(w / t)` after `w = max(warmup, 1)` steps (Vaswani et al. 2017's shape).
    InverseSqrt,
    /// Linear to zero at `max_steps`.
    Linear,
}

impl Schedule {
    /// The factor for optimizer step `step` (1-based) of a run of `max_steps`.
    pub fn factor(&self, step: u64, max_steps: u64) -> f64 {
        let t = step.max(1) as f64;
        let warm = if self.warmup > 0 {
            (t / self.warmup as f64).min(1.0)
        } else {
            1.0
        };
        let decay = match self.decay {
            Decay::None => 1.0,
            Decay::InverseSqrt => (self.warmup.max(1) as f64 / t).sqrt().min(1.0),
            Decay::Linear => (1.0 - (t - 1.0) / max_steps.max(1) as f64).max(0.0),
        };
        warm * decay
    }
}

fn default_keep() -> usize {
    3
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 16,
            max_src_len: 400,
            max_tgt_len: 100,
            max_steps: 10_000,
            clip: 2.0,
            seed: 1,
            eval_every: 500,
            patience: 5,
            keep: 3,
            schedule: Schedule::default(),
            freeze_embeddings: false,
            time_limit_s: None,
            select: Select::Loss,
        }
    }
}

impl TrainConfig {
    fn batching(&self, epoch: usize) -> BatchConfig {
        BatchConfig {
            batch_size: self.batch_size,
            max_src_len: self.max_src_len,
            max_tgt_len: self.max_tgt_len,
            pool_batches: 100,
            shuffle: true,
            seed: self.seed.wrapping_add(epoch as u64),
        }
    }
}

/// One line of the metrics log.
#[derive(Clone, Debug, Serialize)]
pub struct StepMetrics {
    pub step: u64,
    pub epoch: usize,
    pub loss: f64,
    pub nll: f64,
    pub coverage: f64,
    pub grad_norm: f64,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub skipped: bool,
    /// On several ranks: seconds this step spent on its peers (waiting for them at the roll call,
    /// and the gradient and loss sums).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ranks_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_loss: Option<f64>,
    /// rouge-score (stemming) F1 of greedy decodes of the development set: rouge1, rouge2, rougeLsum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_rouge: Option<[f64; 3]>,
    /// This evaluation's checkpoint became the best one.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub best: bool,
}

/// The development set: encoded pairs, and the reference summaries as text (sentences separated
/// by `\n`) for ROUGE of greedy decodes; `references` may be empty (loss only).
#[derive(Clone, Debug, Default)]
pub struct DevSet {
    pub data: Vec<Encoded>,
    pub references: Vec<String>,
    /// Longest decode.
    pub max_decode: usize,
}

/// Why training stopped early or failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Model(#[from] abridge_model::ModelError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no training examples")]
    NoData,
    /// The ranks of a data-parallel run disagree.
    #[error("{0}")]
    Ranks(String),
    /// Training can no longer make progress; nothing from this point on was saved.
    #[error(
        "step {step}: {why}; stopped without saving (the last good checkpoint is the run's `latest`)"
    )]
    Diverged { step: u64, why: String },
}

/// Consecutive skipped (non-finite) batches after which a run stops: the cause is not one bad
/// batch but the data, the embeddings or a setting.
pub const MAX_CONSECUTIVE_SKIPS: u64 = 20;

/// Whether every weight is a finite number (`x · 0` is 0 for a finite `x` and NaN otherwise;
/// eight running sums keep the loop vectorised: a few milliseconds for the default model).
fn all_finite(params: &mut Params<f32>) -> bool {
    params.tensors_mut().into_iter().all(|(_, _, t)| {
        let mut acc = [0.0f32; 8];
        let mut chunks = t.chunks_exact(8);
        for c in &mut chunks {
            for k in 0..8 {
                acc[k] += c[k] * 0.0;
            }
        }
        acc.iter().all(|a| *a == 0.0) && chunks.remainder().iter().all(|x| x.is_finite())
    })
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `max_steps` reached.
    Steps,
    /// The time limit reached.
    Time,
    /// No better dev loss for `patience` evaluations.
    EarlyStop,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Steps => "reached --max-steps",
            Stop::Time => "reached --max-minutes",
            Stop::EarlyStop => "stopped early (no better dev loss for --patience evaluations)",
        })
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub steps: u64,
    pub last_loss: f64,
    pub best_dev_loss: Option<f64>,
    pub skipped_batches: u64,
    pub early_stopped: bool,
    pub stop: Stop,
    /// The checkpoint folder `best` names (the best dev loss; the last one without a dev set).
    pub best: Option<String>,
}

/// The model inputs of a padded batch.
pub fn inputs<'a>(b: &'a Batch, pointer: bool) -> Inputs<'a> {
    Inputs {
        batch: b.batch,
        src_len: b.src_len,
        tgt_len: b.tgt_len,
        src: &b.src,
        src_ext: &b.src_ext,
        src_lengths: &b.src_lengths,
        dec_in: &b.dec_in,
        targets: if pointer { &b.dec_out_ext } else { &b.dec_out },
        tgt_lengths: &b.tgt_lengths,
    }
}

/// Greedy decodes of `dev`, scored with rouge-score (stemming): mean F1 of rouge1, rouge2, rougeLsum.
pub fn dev_rouge(
    ck: &Checkpoint,
    tcfg: &TrainConfig,
    dev: &DevSet,
) -> Result<[f64; 3], TrainError> {
    let sums = dev_rouge_sums(ck, tcfg, dev, 0, 1)?;
    let n = dev.data.len().max(1) as f64;
    Ok(sums.map(|s| s / n))
}

/// The sums behind [`dev_rouge`] over the batches `k` with `k mod parts == part` (one rank's
/// share of the development set).
fn dev_rouge_sums(
    ck: &Checkpoint,
    tcfg: &TrainConfig,
    dev: &DevSet,
    part: usize,
    parts: usize,
) -> Result<[f64; 3], TrainError> {
    use abridge_rouge::{RougeScorer, RougeType};
    let cfg = BatchConfig {
        shuffle: false,
        pool_batches: 1,
        ..tcfg.batching(0)
    };
    let scorer = RougeScorer::new(
        vec![RougeType::N(1), RougeType::N(2), RougeType::Lsum],
        true,
    );
    let mut sums = [0.0f64; 3];
    let mut fw = Forward::new(); // one set of buffers for every batch
    for idx in plan(&dev.data, &cfg).into_iter().skip(part).step_by(parts) {
        let b = Batch::new(&dev.data, &idx);
        let src = abridge_model::Sources {
            batch: b.batch,
            src_len: b.src_len,
            src: &b.src,
            src_ext: &b.src_ext,
            src_lengths: &b.src_lengths,
        };
        let out = ck
            .params
            .greedy_with(&ck.config, &src, dev.max_decode.max(1), &mut fw)?;
        for (k, ids) in out.iter().enumerate() {
            let ex = &dev.data[idx[k]];
            let words: Vec<&str> = ids
                .iter()
                .map(|&id| ex.ext.word(&ck.vocab, id).unwrap_or("<unk>"))
                .collect();
            let hyp = abridge_text::tokenize::detokenize_lines(&words);
            for (s, (_, sc)) in sums
                .iter_mut()
                .zip(scorer.score(&dev.references[idx[k]], &hyp))
            {
                *s += sc.fmeasure;
            }
        }
    }
    Ok(sums)
}

/// Mean loss per target token over `data`, in batches, without updating anything.
pub fn evaluate(ck: &Checkpoint, tcfg: &TrainConfig, data: &[Encoded]) -> Result<f64, TrainError> {
    let [sum, tokens] = loss_sums(ck, tcfg, data, 0, 1)?;
    Ok(sum / tokens)
}

/// `[Σ loss · tokens, Σ tokens]` over the batches `k` with `k mod parts == part`.
fn loss_sums(
    ck: &Checkpoint,
    tcfg: &TrainConfig,
    data: &[Encoded],
    part: usize,
    parts: usize,
) -> Result<[f64; 2], TrainError> {
    let cfg = BatchConfig {
        shuffle: false,
        pool_batches: 1,
        ..tcfg.batching(0)
    };
    let mut fw = Forward::new();
    let (mut sum, mut tokens) = (0.0, 0usize);
    for idx in plan(data, &cfg).into_iter().skip(part).step_by(parts) {
        let b = Batch::new(data, &idx);
        let loss = ck
            .params
            .forward(&ck.config, &inputs(&b, ck.config.pointer), &mut fw)?;
        sum += loss.total * loss.tokens as f64;
        tokens += loss.tokens;
    }
    // No tokens: 0 / 0, NaN, as the mean of nothing.
    Ok([sum, tokens as f64])
}

/// Trains `ck` on `train` until `max_steps`, early stopping or the time limit; checkpoints go
/// to `run`, metrics to `run/metrics.jsonl`; `on_step` sees every step's metrics.
pub fn train(
    run: &Path,
    ck: &mut Checkpoint,
    tcfg: &TrainConfig,
    train: &[Encoded],
    dev: &DevSet,
    on_step: impl FnMut(&StepMetrics),
) -> Result<Summary, TrainError> {
    train_with(run, ck, tcfg, train, dev, &Solo, on_step)
}

/// [`train`] as one of `ranks.size()` processes (see [`crate::dist`]): each rank computes the
/// gradient of its share of every global batch and the ranks sum them; every rank evaluates its
/// share of the development set. Rank 0 alone writes (checkpoints, the metrics log, the curve)
/// and calls `on_step`; its metrics count the whole batch's tokens.
pub fn train_with(
    run: &Path,
    ck: &mut Checkpoint,
    tcfg: &TrainConfig,
    train: &[Encoded],
    dev: &DevSet,
    ranks: &dyn Ranks,
    mut on_step: impl FnMut(&StepMetrics),
) -> Result<Summary, TrainError> {
    if train.is_empty() {
        return Err(TrainError::NoData);
    }
    let (rank, size) = (ranks.rank(), ranks.size());
    let lead = rank == 0;
    if size > 1 {
        same_weights(ranks, &mut ck.params, "at the start")?;
    }
    let log_path = run.join("metrics.jsonl");
    let mut log = None;
    // The curve's history, including what a resumed run logged before.
    let mut hist = crate::plot::PlotData::default();
    if lead {
        std::fs::create_dir_all(run).map_err(|source| TrainError::Io {
            path: run.display().to_string(),
            source,
        })?;
        crate::checkpoint::recover(run)?;
        // The log as the checkpoint we start from knew it: lines past its step (written before a
        // kill, and about to be written again) and a torn last line are dropped.
        for v in &reconcile_log(&log_path, ck.state.step)? {
            hist.add(v);
        }
        log = Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|source| TrainError::Io {
                    path: log_path.display().to_string(),
                    source,
                })?,
        );
    }
    ck.state.train_config = serde_json::to_value(tcfg).expect("config serialises");
    ck.state.seed = tcfg.seed;
    let plot = |hist: &crate::plot::PlotData| -> Result<(), TrainError> {
        let p = run.join("loss.svg");
        std::fs::write(&p, crate::plot::loss_svg(hist)).map_err(|source| TrainError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    let mut fw = Forward::new();
    let mut grads: Params<f32> = ck.params.zeros_like();
    // The gradient as one vector, for the sum over ranks.
    let mut flat: Vec<f32> = Vec::new();
    let mut last_loss = f64::NAN;
    let mut early_stopped = false;
    let mut stop = Stop::Steps;
    let began = Instant::now();
    let mut saved_at: Option<u64> = None;
    let mut consecutive_skips = 0u64;
    let out_of_time = || {
        tcfg.time_limit_s
            .is_some_and(|l| began.elapsed().as_secs_f64() >= l)
    };
    'epochs: loop {
        let batches = plan(train, &tcfg.batching(ck.state.epoch));
        while ck.state.batch_in_epoch < batches.len() {
            if ck.state.step >= tcfg.max_steps {
                break 'epochs;
            }
            if size == 1 && out_of_time() {
                stop = Stop::Time;
                break 'epochs;
            }
            let start = Instant::now();
            let global = &batches[ck.state.batch_in_epoch];
            let mine = &global[share(global.len(), rank, size)];
            // Dropout masks depend on the seed, the step and the rank only: a resumed run draws
            // the same (on as many ranks).
            fw.set_dropout(Some(
                tcfg.seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(ck.state.step)
                    .wrapping_add((rank as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)),
            ));
            grads.fill_zero();
            let mut loss = if mine.is_empty() {
                Loss::default()
            } else {
                let b = Batch::new(train, mine);
                ck.params.forward_backward(
                    &ck.config,
                    &inputs(&b, ck.config.pointer),
                    &mut fw,
                    &mut grads,
                )?
            };
            let mut ranks_s = None;
            if size > 1 {
                let waited = Instant::now();
                // The ranks wait for each other here: the roll call names one that does not
                // come, and stops every rank at this step (its gradient unused) when any rank's
                // time is spent.
                if ranks.roll_call(ck.state.step, out_of_time()) {
                    stop = Stop::Time;
                    break 'epochs;
                }
                let total = global.iter().map(|&i| train[i].target_tokens()).sum();
                loss = sum_over_ranks(ranks, &mut grads, &mut flat, &loss, total);
                ranks_s = Some(waited.elapsed().as_secs_f64());
            }
            let norm = clip_global_norm(&mut grads, tcfg.clip);
            let skipped = !loss.total.is_finite() || !norm.is_finite();
            if skipped {
                ck.state.skipped_batches += 1;
                consecutive_skips += 1;
                if consecutive_skips >= MAX_CONSECUTIVE_SKIPS {
                    return Err(TrainError::Diverged {
                        step: ck.state.step + 1,
                        why: format!(
                            "{consecutive_skips} batches in a row had a non-finite loss or \
                             gradient (check the embeddings, --cov-weight and the learning rate)"
                        ),
                    });
                }
                if lead {
                    eprintln!("warning: step {}: non-finite loss ({}) or gradient norm ({norm}); batch skipped, weights unchanged", ck.state.step + 1, loss.total);
                }
            } else {
                if tcfg.freeze_embeddings {
                    grads.embedding.iter_mut().for_each(|g| *g = 0.0);
                    grads.dec_embedding.iter_mut().for_each(|g| *g = 0.0);
                }
                let scale = tcfg.schedule.factor(ck.state.step + 1, tcfg.max_steps);
                ck.optimizer.step_scaled(&mut ck.params, &mut grads, scale);
                if !all_finite(&mut ck.params) {
                    return Err(TrainError::Diverged {
                        step: ck.state.step + 1,
                        why: "the update made weights non-finite (is the learning rate too high?)"
                            .into(),
                    });
                }
                consecutive_skips = 0;
                last_loss = loss.total;
            }
            ck.state.step += 1;
            ck.state.batch_in_epoch += 1;
            let secs = start.elapsed().as_secs_f64();
            let tokens = global.iter().map(|&i| train[i].src.len()).sum::<usize>() + loss.tokens;
            let mut m = StepMetrics {
                step: ck.state.step,
                epoch: ck.state.epoch,
                loss: loss.total,
                nll: loss.nll,
                coverage: loss.coverage,
                grad_norm: norm,
                tokens,
                tokens_per_s: tokens as f64 / secs.max(1e-9),
                skipped,
                ranks_s,
                dev_loss: None,
                dev_rouge: None,
                best: false,
            };
            let eval_now = tcfg.eval_every > 0 && ck.state.step.is_multiple_of(tcfg.eval_every);
            if eval_now {
                if !dev.references.is_empty() {
                    let mut r = dev_rouge_sums(ck, tcfg, dev, rank, size)?;
                    ranks.roll_call(ck.state.step, false);
                    ranks.sum_f64("the dev ROUGE sum", &mut r);
                    let n = dev.data.len().max(1) as f64;
                    m.dev_rouge = Some(r.map(|s| s / n));
                }
                let dev_loss = if dev.data.is_empty() {
                    loss.total
                } else {
                    let mut s = loss_sums(ck, tcfg, &dev.data, rank, size)?;
                    ranks.roll_call(ck.state.step, false);
                    ranks.sum_f64("the dev loss sum", &mut s);
                    s[0] / s[1]
                };
                m.dev_loss = Some(dev_loss);
                let better = match (tcfg.select, m.dev_rouge) {
                    (Select::Rouge, Some(r)) => {
                        let mean = (r[0] + r[1] + r[2]) / 3.0;
                        let better = ck.state.best_dev_rouge.is_none_or(|b| mean > b);
                        if better {
                            ck.state.best_dev_rouge = Some(mean);
                        }
                        better
                    }
                    _ => ck.state.best_dev_loss.is_none_or(|b| dev_loss < b),
                };
                if dev_loss < ck.state.best_dev_loss.unwrap_or(f64::INFINITY) {
                    ck.state.best_dev_loss = Some(dev_loss);
                }
                if better {
                    ck.state.evals_since_best = 0;
                } else {
                    ck.state.evals_since_best += 1;
                }
                m.best = better;
                if size > 1 {
                    same_weights(ranks, &mut ck.params, &format!("after step {}", m.step))?;
                }
                if let Some(log) = &mut log {
                    // The line goes to the log before its checkpoint is saved: a kill in
                    // between resumes from the previous checkpoint, which drops the line again.
                    write_log(log, &m)?;
                    hist.add(&serde_json::to_value(&m).expect("metrics serialise"));
                    plot(&hist)?;
                    ck.save(run, &format!("step-{:08}", ck.state.step), better)?;
                    prune(run, tcfg.keep)?;
                }
                saved_at = Some(ck.state.step);
                if tcfg.patience > 0 && ck.state.evals_since_best >= tcfg.patience {
                    early_stopped = true;
                }
            } else if let Some(log) = &mut log {
                hist.add(&serde_json::to_value(&m).expect("metrics serialise"));
                write_log(log, &m)?;
            }
            if lead {
                on_step(&m);
            }
            if early_stopped {
                stop = Stop::EarlyStop;
                break 'epochs;
            }
        }
        ck.state.epoch += 1;
        ck.state.batch_in_epoch = 0;
    }
    if lead {
        // The last step's checkpoint, unless its evaluation just saved it (writing the same
        // folder twice would only open a window in which a kill finds it half-replaced).
        if saved_at != Some(ck.state.step) {
            ck.save(
                run,
                &format!("step-{:08}", ck.state.step),
                ck.state.best_dev_loss.is_none(),
            )?;
        }
        prune(run, tcfg.keep)?;
        plot(&hist)?;
    }
    Ok(Summary {
        steps: ck.state.step,
        last_loss,
        best_dev_loss: ck.state.best_dev_loss,
        skipped_batches: ck.state.skipped_batches,
        early_stopped,
        stop,
        best: lead
            .then(|| std::fs::read_to_string(run.join("best")).ok())
            .flatten()
            .map(|s| s.trim().to_string()),
    })
}

/// Sums the ranks' gradients and losses (see [`crate::dist`]): this rank's gradient `g_r` of
/// the mean loss over its `T_r = loss.tokens` target tokens is weighted by `T_r / T` (`T =
/// total`, the whole batch's) and the weighted gradients summed in rank order into `grads`;
/// the returned loss is the token-weighted mean over the whole batch.
fn sum_over_ranks(
    ranks: &dyn Ranks,
    grads: &mut Params<f32>,
    flat: &mut Vec<f32>,
    loss: &Loss,
    total: usize,
) -> Loss {
    let t = total.max(1) as f64;
    let w = (loss.tokens as f64 / t) as f32;
    flat.clear();
    for (_, _, g) in grads.tensors_mut() {
        flat.extend(g.iter().map(|x| x * w));
    }
    ranks.sum_f32("the gradient sum", flat);
    let mut at = 0;
    for (_, _, g) in grads.tensors_mut() {
        g.copy_from_slice(&flat[at..at + g.len()]);
        at += g.len();
    }
    let n = loss.tokens as f64;
    let mut s = [loss.nll * n, loss.coverage * n, loss.total * n];
    ranks.sum_f64("the loss sum", &mut s);
    Loss {
        nll: s[0] / t,
        coverage: s[1] / t,
        total: s[2] / t,
        tokens: total,
    }
}

/// Fails unless every rank holds the same weights (a CRC-32 of their bytes): ranks that read
/// different checkpoints or data, or whose updates drifted apart.
fn same_weights(ranks: &dyn Ranks, params: &mut Params<f32>, when: &str) -> Result<(), TrainError> {
    let mut h = crc32fast::Hasher::new();
    for (_, _, t) in params.tensors_mut() {
        h.update(&abridge::tensors::f32_bytes(t));
    }
    let sums = ranks.gather_u64("comparing the ranks' weights", h.finalize() as u64);
    match sums.iter().position(|&c| c != sums[0]) {
        None => Ok(()),
        Some(r) => Err(TrainError::Ranks(format!(
            "{when}, rank {r}'s weights differ from rank 0's (every rank must read the same run \
             folder, data and flags)"
        ))),
    }
}

fn write_log(log: &mut std::fs::File, m: &StepMetrics) -> Result<(), TrainError> {
    writeln!(
        log,
        "{}",
        serde_json::to_string(m).expect("metrics serialise")
    )
    .map_err(|source| TrainError::Io {
        path: "metrics.jsonl".into(),
        source,
    })
}

/// Rewrites the metrics log at `path` (atomically) to the lines of steps `1..=step`, each once,
/// in order; a line that does not parse (torn by a kill) is dropped. Returns those lines.
pub fn reconcile_log(path: &Path, step: u64) -> Result<Vec<serde_json::Value>, TrainError> {
    let io = |source| TrainError::Io {
        path: path.display().to_string(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut kept: Vec<serde_json::Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match v["step"].as_u64() {
            Some(s) if s >= 1 && s <= step && seen.insert(s) => kept.push(v),
            _ => {}
        }
    }
    kept.sort_by_key(|v| v["step"].as_u64());
    let mut out = String::new();
    for v in &kept {
        out.push_str(&v.to_string());
        out.push('\n');
    }
    if out != text {
        let tmp = path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, out).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
    }
    Ok(kept)
}

/// Deletes `step-*` checkpoint folders beyond the newest `keep`, never the ones `latest` or `best`
/// point at.
fn prune(run: &Path, keep: usize) -> Result<(), TrainError> {
    if keep == 0 {
        return Ok(());
    }
    let err = |source| TrainError::Io {
        path: run.display().to_string(),
        source,
    };
    let pinned: Vec<String> = ["latest", "best"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(run.join(p)).ok())
        .map(|s| s.trim().to_string())
        .collect();
    let mut dirs: Vec<String> = std::fs::read_dir(run)
        .map_err(err)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-") && !n.ends_with(".tmp"))
        .collect();
    dirs.sort();
    let n = dirs.len();
    for d in dirs.into_iter().take(n.saturating_sub(keep)) {
        if !pinned.contains(&d) {
            std::fs::remove_dir_all(run.join(&d)).map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_by_hand() {
        let s = Schedule {
            warmup: 4,
            decay: Decay::None,
        };
        assert_eq!(
            [1, 2, 4, 100].map(|t| s.factor(t, 100)),
            [0.25, 0.5, 1.0, 1.0]
        );
        let s = Schedule {
            warmup: 4,
            decay: Decay::InverseSqrt,
        };
        assert_eq!(s.factor(16, 100), 0.5);
        assert_eq!(s.factor(4, 100), 1.0);
        let s = Schedule {
            warmup: 0,
            decay: Decay::Linear,
        };
        assert_eq!(s.factor(1, 10), 1.0);
        assert!((s.factor(6, 10) - 0.5).abs() < 1e-12);
        assert_eq!(Schedule::default().factor(7, 10), 1.0);
    }
}
