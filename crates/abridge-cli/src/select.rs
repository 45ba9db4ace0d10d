//! `abridge selector train`: the content selector (Gehrmann et al. 2018) for a model folder,
//! trained on the model's own tokenization and vocabulary, written beside its weights.
//!
//! Data: each pair's source (cut at the model's training length) labelled by
//! [`abridge_model::copy_labels`] against its reference. Batches: documents of similar length
//! (shuffled pools of 64 batches sorted by length), time-major. Optimisation: Adam, global-norm
//! clipping. Evaluation on dev pairs every `--eval-every` steps: loss, AUC, precision / recall / F1
//! at the threshold; the selector with the best dev loss is written (atomically) each time it
//! improves, so a killed run leaves the best one so far.

use std::path::Path;
use std::time::Instant;

use abridge::selector_file::{self, SelectorFile};
use abridge::tensors::WeightType;
use abridge::Summarizer;
use abridge_model::{
    copy_labels, Optimizer, Selector, SelectorBatch, SelectorCache, SelectorConfig,
};
use abridge_nn::CellKind;
use abridge_tensor::Rng;
use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::SelectorTrainArgs;
use crate::with_threads;

/// One document: vocabulary ids and labels (1 = a summary copies it), same length ≥ 1.
struct Tagged {
    ids: Vec<u32>,
    labels: Vec<u8>,
}

/// Reads up to `limit` pairs and tags them with the model's tokenizer.
fn read_tagged(
    path: &Path,
    a: &SelectorTrainArgs,
    m: &Summarizer,
    src_len: usize,
    limit: Option<usize>,
) -> Result<Vec<Tagged>> {
    let corpus = a.corpus.open(path)?;
    let mut out = Vec::new();
    let stats = corpus.for_each_chunk_while(a.corpus.strict, 2048, |chunk| {
        use rayon::prelude::*;
        let tagged: Vec<Tagged> = chunk
            .par_iter()
            .filter_map(|e| {
                let mut src = m.tokenize(&e.text);
                src.truncate(src_len);
                if src.is_empty() {
                    return None;
                }
                let reference = m.tokenize(&e.summary);
                let ids = m.vocab().encode(&src);
                let trivial = |w: &String| {
                    let id = m.vocab().id(w);
                    (4..4 + a.always_copy_top).contains(&id)
                };
                let labels = copy_labels(&src, &reference, trivial)
                    .into_iter()
                    .map(u8::from)
                    .collect();
                Some(Tagged { ids, labels })
            })
            .collect();
        out.extend(tagged);
        limit.is_none_or(|l| out.len() < l)
    })?;
    if let Some(l) = limit {
        out.truncate(l);
    }
    crate::train::warn_bad(&stats, path);
    if out.is_empty() {
        bail!("{}: no pairs with a non-empty document", path.display());
    }
    Ok(out)
}

/// A batch's ids and labels, time-major `[S, B]`, and lengths.
fn assemble(data: &[Tagged], idx: &[usize]) -> (Vec<u32>, Vec<f32>, Vec<usize>, usize) {
    let n = idx.len();
    let lengths: Vec<usize> = idx.iter().map(|&i| data[i].ids.len()).collect();
    let s = *lengths.iter().max().expect("non-empty batch");
    let (mut ids, mut labels) = (vec![0u32; s * n], vec![0f32; s * n]);
    for (j, &i) in idx.iter().enumerate() {
        for (t, (&id, &y)) in data[i].ids.iter().zip(&data[i].labels).enumerate() {
            ids[t * n + j] = id;
            labels[t * n + j] = y as f32;
        }
    }
    (ids, labels, lengths, s)
}

/// The summarizer's encoder states `[S, B, 2H]` of a batch (for a feature-input selector), or
/// `None` for a word-input one.
fn encoder_features(
    m: &Summarizer,
    sel: &Selector<f32>,
    data: &[Tagged],
    idx: &[usize],
) -> Result<Option<Vec<f32>>> {
    if sel.cfg.features == 0 {
        return Ok(None);
    }
    let docs: Vec<(&[u32], &[u32])> = idx
        .iter()
        .map(|&i| (&data[i].ids[..], &data[i].ids[..]))
        .collect();
    let st = abridge_model::Stepper::new_batch(m.params(), m.config(), &docs)?;
    Ok(Some(st.encoder_output().to_vec()))
}

/// One epoch's batches: shuffled, then pools of 64 batches sorted by length (little padding),
/// the batches shuffled again.
fn plan(data: &[Tagged], batch: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    shuffle(&mut order, rng);
    let mut batches = Vec::new();
    for pool in order.chunks_mut(batch * 64) {
        pool.sort_by_key(|&i| data[i].ids.len());
        batches.extend(pool.chunks(batch).map(<[usize]>::to_vec));
    }
    shuffle(&mut batches, rng);
    batches
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.uniform(0.0, (i + 1) as f64) as usize).min(i);
        v.swap(i, j);
    }
}

/// Dev-set quality of a selector.
#[derive(Clone, Copy, Debug, Default)]
pub struct DevMetrics {
    pub loss: f64,
    /// Area under the ROC curve over all dev tokens.
    pub auc: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Share of tokens selected at the threshold.
    pub selected: f64,
}

fn evaluate(
    m: &Summarizer,
    sel: &Selector<f32>,
    dev: &[Tagged],
    threshold: f32,
) -> Result<DevMetrics> {
    let mut scored: Vec<(f32, bool)> = Vec::new();
    let (mut loss, mut count) = (0.0, 0usize);
    let mut cache = SelectorCache::default();
    for chunk in (0..dev.len()).collect::<Vec<_>>().chunks(32) {
        let (ids, labels, lengths, s) = assemble(dev, chunk);
        let feats = encoder_features(m, sel, dev, chunk)?;
        sel.forward(
            &SelectorBatch {
                ids: &ids,
                features: feats.as_deref(),
                steps: s,
                batch: chunk.len(),
                lengths: &lengths,
            },
            &mut cache,
        )?;
        let (l, _) = Selector::loss(&cache, &labels)?;
        let n: usize = lengths.iter().sum();
        loss += l * n as f64;
        count += n;
        for (p, &i) in cache.probs().iter().zip(chunk) {
            scored.extend(p.iter().zip(&dev[i].labels).map(|(&q, &y)| (q, y == 1)));
        }
    }
    Ok(metrics(&mut scored, threshold, loss / count.max(1) as f64))
}

/// AUC (the rank statistic, ties counted half) and precision / recall / F1 at `threshold`.
fn metrics(scored: &mut [(f32, bool)], threshold: f32, loss: f64) -> DevMetrics {
    let pos = scored.iter().filter(|s| s.1).count() as f64;
    let neg = scored.len() as f64 - pos;
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the positives' ranks (1-based, average rank over ties).
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < scored.len() {
        let mut j = i + 1;
        while j < scored.len() && scored[j].0 == scored[i].0 {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * scored[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let auc = if pos > 0.0 && neg > 0.0 {
        (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
    } else {
        0.5
    };
    let tp = scored.iter().filter(|s| s.1 && s.0 >= threshold).count() as f64;
    let picked = scored.iter().filter(|s| s.0 >= threshold).count() as f64;
    let precision = if picked > 0.0 { tp / picked } else { 0.0 };
    let recall = if pos > 0.0 { tp / pos } else { 0.0 };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    DevMetrics {
        loss,
        auc,
        precision,
        recall,
        f1,
        selected: picked / scored.len().max(1) as f64,
    }
}

pub fn train(a: &SelectorTrainArgs) -> Result<()> {
    with_threads(a.corpus.threads, || train_inner(a))
}

fn train_inner(a: &SelectorTrainArgs) -> Result<()> {
    if a.batch_size == 0 || a.hidden == 0 || a.layers == 0 || a.eval_every == 0 || a.log_every == 0
    {
        bail!("--batch-size, --hidden, --layers, --eval-every and --log-every must be at least 1");
    }
    if a.hidden > 4096 || a.layers > 8 || a.batch_size > 4096 {
        bail!("--hidden is at most 4096, --layers 8, --batch-size 4096");
    }
    if !(a.lr.is_finite() && a.lr > 0.0 && a.clip.is_finite() && a.clip > 0.0) {
        bail!("--lr and --clip must be finite and positive");
    }
    if !(0.0..1.0).contains(&a.threshold) {
        bail!("--threshold {} is outside [0, 1)", a.threshold);
    }
    let mut m = Summarizer::open(&a.model)?;
    m.set_pretokenized(a.corpus.pretokenized);
    let src_len = a
        .max_src_len
        .unwrap_or(m.tokenizer_config().max_source_tokens)
        .max(1);
    let out_dir = match &a.out {
        Some(o) => o.clone(),
        None => abridge::folder::model_dir(&a.model)?,
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let t0 = Instant::now();
    let data = read_tagged(&a.corpus.file, a, &m, src_len, a.max_examples)?;
    let dev = match &a.dev {
        Some(p) => read_tagged(p, a, &m, src_len, Some(a.dev_examples))?,
        None => bail!("--dev is required: the selector kept is the one with the best dev loss"),
    };
    let sel_tokens: usize = data
        .iter()
        .map(|d| d.labels.iter().filter(|&&y| y == 1).count())
        .sum();
    let tokens: usize = data.iter().map(|d| d.ids.len()).sum();
    eprintln!(
        "selector: {} training documents ({} tokens, {:.1} % selected), {} dev documents, read in {:.1} s",
        data.len(),
        tokens,
        100.0 * sel_tokens as f64 / tokens.max(1) as f64,
        dev.len(),
        t0.elapsed().as_secs_f64()
    );
    let cfg = SelectorConfig {
        cell: match a.cell.as_str() {
            "lstm" => CellKind::Lstm,
            "gru" => CellKind::Gru,
            other => bail!("--cell {other:?}: expected lstm or gru"),
        },
        vocab: m.vocab().len(),
        emb: m.config().emb,
        hidden: a.hidden,
        layers: a.layers,
        features: match a.input.as_str() {
            "encoder" => 2 * m.config().hidden,
            "words" => 0,
            other => bail!("--input {other:?}: expected encoder or words"),
        },
    };
    let mut rng = Rng::new(a.seed);
    let mut sel = Selector::<f32>::init(cfg, &mut rng);
    if cfg.features == 0 {
        // The summarizer's word vectors are a good start: the tagger reads the same ids.
        sel.embedding.copy_from_slice(&m.params().embedding);
    }
    let mut grads = Selector::<f32>::zeros(cfg);
    let mut opt = Optimizer::adam(a.lr);
    let mut cache = SelectorCache::default();
    let start = Instant::now();
    let deadline = a.max_minutes.map(|m| m * 60.0);
    let mut best: Option<DevMetrics> = None;
    let (mut step, mut epoch) = (0usize, 0usize);
    let (mut loss_sum, mut loss_n, mut tok_window) = (0.0, 0usize, 0usize);
    let mut window = Instant::now();
    let mut history = Vec::new();
    let stop;
    'outer: loop {
        epoch += 1;
        for idx in plan(&data, a.batch_size, &mut rng) {
            let (ids, labels, lengths, s) = assemble(&data, &idx);
            let feats = encoder_features(&m, &sel, &data, &idx)?;
            sel.forward(
                &SelectorBatch {
                    ids: &ids,
                    features: feats.as_deref(),
                    steps: s,
                    batch: idx.len(),
                    lengths: &lengths,
                },
                &mut cache,
            )?;
            let (loss, dz) = Selector::loss(&cache, &labels)?;
            grads.fill_zero();
            sel.backward(&mut cache, &dz, &mut grads)?;
            let norm = abridge_model::clip_tensors(
                grads.tensors_mut().into_iter().map(|t| t.2).collect(),
                a.clip,
            );
            step += 1;
            if !(loss.is_finite() && norm.is_finite()) {
                eprintln!("warning: step {step}: non-finite loss or gradient; batch skipped");
            } else {
                opt.step_tensors(
                    sel.tensors_mut().into_iter().map(|t| t.2).collect(),
                    grads.tensors_mut().into_iter().map(|t| &*t.2).collect(),
                    1.0,
                );
                loss_sum += loss;
                loss_n += 1;
                tok_window += lengths.iter().sum::<usize>();
            }
            let minutes = start.elapsed().as_secs_f64() / 60.0;
            let out_of_time = deadline.is_some_and(|d| start.elapsed().as_secs_f64() >= d);
            let last = a.max_steps.is_some_and(|n| step >= n) || out_of_time;
            if step % a.log_every == 0 {
                eprintln!(
                    "step {step} epoch {epoch} loss {:.4} {:.0} tokens/s {minutes:.1} min",
                    loss_sum / loss_n.max(1) as f64,
                    tok_window as f64 / window.elapsed().as_secs_f64()
                );
                (loss_sum, loss_n, tok_window, window) = (0.0, 0, 0, Instant::now());
            }
            if step % a.eval_every == 0 || last {
                let d = evaluate(&m, &sel, &dev, a.threshold)?;
                let improved = best.is_none_or(|b| d.loss < b.loss);
                eprintln!(
                    "eval step {step} ({minutes:.1} min): dev loss {:.4} AUC {:.4} P {:.3} R {:.3} F1 {:.3} selected {:.1} % at {}{}",
                    d.loss, d.auc, d.precision, d.recall, d.f1, 100.0 * d.selected, a.threshold,
                    if improved { " (best, saved)" } else { "" }
                );
                history.push(json!({"step": step, "minutes": minutes, "dev_loss": d.loss, "auc": d.auc, "f1": d.f1}));
                if improved {
                    best = Some(d);
                    let mut file =
                        SelectorFile::new(cfg, m.vocab(), a.threshold, src_len, a.always_copy_top);
                    file.training = json!({
                        "data": a.corpus.file.display().to_string(),
                        "documents": data.len(),
                        "dev": a.dev.as_ref().map(|p| p.display().to_string()),
                        "dev_documents": dev.len(),
                        "step": step, "epoch": epoch, "minutes": minutes,
                        "batch_size": a.batch_size, "lr": a.lr, "clip": a.clip, "seed": a.seed,
                        "threads": rayon::current_num_threads(),
                        "dev_loss": d.loss, "dev_auc": d.auc, "dev_f1": d.f1,
                        "label_rule": "Gehrmann et al. 2018: longest source runs copied into the reference",
                        "history": history,
                    });
                    let dtype = if a.f16 {
                        WeightType::F16
                    } else {
                        WeightType::F32
                    };
                    selector_file::write(&out_dir, &file, &mut sel, dtype)?;
                }
            }
            if last {
                stop = if out_of_time {
                    "time limit"
                } else {
                    "step limit"
                };
                break 'outer;
            }
        }
    }
    let b = best.expect("evaluated at the last step");
    eprintln!(
        "stopped at step {step} ({}); best dev loss {:.4} (AUC {:.4}, F1 {:.3}); selector written to {}",
        stop,
        b.loss,
        b.auc,
        b.f1,
        out_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_f1_of_known_scores() {
        let mut s = vec![
            (0.9, true),
            (0.8, false),
            (0.7, true),
            (0.1, false),
            (0.1, true),
        ];
        let d = metrics(&mut s, 0.5, 0.0);
        // Positive/negative pairs ordered right: (0.9>0.8, 0.9>0.1, 0.7>0.1) + tie 0.1=0.1 half,
        // wrong: 0.7<0.8 -> (3 + 0.5) / 6.
        assert!((d.auc - 3.5 / 6.0).abs() < 1e-12, "{}", d.auc);
        assert!((d.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((d.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((d.selected - 0.6).abs() < 1e-12);
    }
}
