//! `abridge summarize` and `abridge baseline lead`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use abridge_decode::{beam_search_observed, BeamConfig, CoveragePenalty, LengthPenalty, Observer};
use abridge_model::{ModelConfig, Params, Stepper};
use abridge_rouge::{RougeScorer, RougeType};
use abridge_text::corpus::{Corpus, Fields};
use abridge_text::tokenize::{detokenize, detokenize_lines, split_sentences, Tokenizer};
use abridge_text::vocab::{Extended, Vocab};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::cli::{
    BaselineCommand, CoveragePenaltyArg, DecodeArgs, EvalArgs, Format, LengthPenaltyArg, OutFormat,
    SelectorArg, SummarizeArgs,
};
use crate::with_threads;
use abridge_model::Selector;
use abridge_train::selector_file::SelectorFile;

/// A loaded model and how its training run tokenized text.
pub struct Loaded {
    pub cfg: ModelConfig,
    pub params: Params<f32>,
    pub vocab: Vocab,
    pub tokenizer: Tokenizer,
    /// The vocabulary uses Penn Treebank bracket and quote forms (`-lrb-`, ``` `` ```): raw text
    /// is rewritten into them before encoding.
    pub ptb: bool,
    /// The vocabulary projection in f16: decoding streams it once per token.
    pub half_vocab: abridge_tensor::HalfMatrix,
    /// Source length the model was trained on (from its manifest).
    pub train_src_len: Option<usize>,
    /// The content selector stored with the model, if any.
    pub selector: Option<(SelectorFile, Selector<f32>)>,
}

/// How to decode: the beam search's settings and the copy threshold of content selection
/// (`None` = off).
#[derive(Clone, Debug)]
pub struct Decoding {
    pub beam: BeamConfig,
    pub select: Option<f32>,
}

impl Loaded {
    /// The decoding settings of `d` for this model: the beam search's, and content selection
    /// (`--selector on` without a selector is an error naming the model).
    pub fn decoding(&self, d: &DecodeArgs) -> Result<Decoding> {
        let beam = beam_config(d)?;
        if let Some(t) = d.select_threshold {
            if !(t.is_finite() && (0.0..1.0).contains(&t)) {
                bail!("--select-threshold must be a number in [0, 1), got {t}");
            }
        }
        let select = match (d.selector, &self.selector) {
            (SelectorArg::Off, _) => None,
            (SelectorArg::On, None) => bail!(
                "--selector on: this model has no content selector (train one with `abridge \
                 selector train --model DIR`)"
            ),
            (_, Some((file, _))) => Some(d.select_threshold.unwrap_or(file.threshold)),
            (SelectorArg::Auto, None) => None,
        };
        Ok(Decoding { beam, select })
    }

    /// The selector's probabilities for documents encoded together by `st` (`docs[d]` its
    /// vocabulary ids); `None` without a selector.
    pub fn selection(&self, st: &Stepper<'_>, docs: &[&[u32]]) -> Result<Option<Vec<Vec<f32>>>> {
        let Some((_, sel)) = &self.selector else {
            return Ok(None);
        };
        let feats = (sel.cfg.features > 0).then(|| st.encoder_output());
        Ok(Some(sel.predict(docs, feats)?))
    }

    /// Per document of `st` (`docs[d]` its vocabulary ids), which positions the pointer may copy
    /// from at threshold `t`; `None` without a selector or `t`.
    pub fn copy_masks(
        &self,
        st: &Stepper<'_>,
        docs: &[&[u32]],
        t: Option<f32>,
    ) -> Result<Option<Vec<Vec<bool>>>> {
        let (Some(t), Some((file, _))) = (t, &self.selector) else {
            return Ok(None);
        };
        let probs = self.selection(st, docs)?.expect("a selector");
        Ok(Some(
            probs
                .into_iter()
                .zip(docs)
                .map(|(p, d)| {
                    p.into_iter()
                        .zip(d.iter())
                        .map(|(q, &id)| q >= t || file.always_copy(id))
                        .collect()
                })
                .collect(),
        ))
    }

    /// Source tokens to keep: `--max-src-len` if given, else the training length, else 400.
    pub fn src_len(&self, d: &DecodeArgs) -> usize {
        d.max_src_len.or(self.train_src_len).unwrap_or(400).max(1)
    }

    /// Tokens of raw text as the model's training data spelt them.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut t = self.tokenizer.tokenize(text);
        if self.ptb {
            abridge_text::tokenize::to_ptb(&mut t);
        }
        t
    }
}

/// The folder holding the weights: `path` itself, or a run folder's `best` (else `latest`)
/// checkpoint.
pub fn model_dir(path: &Path) -> Result<PathBuf> {
    abridge_train::checkpoint::resolve(path, "best")
        .or_else(|_| abridge_train::checkpoint::resolve(path, "latest"))
        .with_context(|| {
            format!(
                "{}: neither a model folder nor a run folder with a `best` or `latest` checkpoint",
                path.display()
            )
        })
}

/// Loads a checkpoint folder, or a run folder's `best` (else `latest`) checkpoint.
pub fn load_model(path: &Path, lowercase: Option<bool>) -> Result<Loaded> {
    let dir = model_dir(path)?;
    let (cfg, params, vocab) = abridge_train::checkpoint::read_model(&dir)?;
    let selector = abridge_train::selector_file::read(&dir, &vocab, 2 * cfg.hidden)?;
    // The run's manifest (beside the checkpoint) says how training text was tokenized.
    let manifest = find_manifest(&dir);
    let mut m = assemble(cfg, params, vocab, manifest.as_ref(), lowercase);
    m.selector = selector;
    Ok(m)
}

/// The manifest of a model folder, or of the run folder around a checkpoint.
pub fn find_manifest(dir: &Path) -> Option<serde_json::Value> {
    [
        dir.join("manifest.json"),
        dir.parent()
            .map(|p| p.join("manifest.json"))
            .unwrap_or_default(),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .and_then(|p| std::fs::read(p).ok())
    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
}

/// A [`Loaded`] model with its tokenizer settings resolved from the manifest (a forced
/// `lowercase` wins).
fn assemble(
    cfg: ModelConfig,
    params: Params<f32>,
    vocab: Vocab,
    manifest: Option<&serde_json::Value>,
    lowercase: Option<bool>,
) -> Loaded {
    let tok = manifest.map(|m| &m["data"]["tokenizer"]);
    // A corpus that came lower-cased (CNN/DailyMail as See et al. prepared it) leaves a
    // vocabulary without capitals even though training did not lower-case: raw text must be.
    let uncased = {
        let upper = (0..vocab.len() as u32)
            .filter_map(|i| vocab.token(i))
            .filter(|t| t.chars().any(char::is_uppercase))
            .count();
        upper * 100 < vocab.len()
    };
    let tokenizer = Tokenizer {
        lowercase: lowercase
            .or_else(|| {
                tok.and_then(|t| t["lowercase"].as_bool())
                    .map(|l| l || uncased)
            })
            .unwrap_or(true),
        pretokenized: false,
    };
    let ptb = vocab.get("-lrb-").is_some() && vocab.get("(").is_none();
    // A run's manifest has `train`; an exported model's keeps its run's under `run`.
    let train_src_len = manifest.and_then(|m| {
        m["train"]["max_src_len"]
            .as_u64()
            .or_else(|| m["run"]["train"]["max_src_len"].as_u64())
            .map(|n| n as usize)
    });
    Loaded {
        train_src_len,
        selector: None,
        cfg,
        half_vocab: params.half_vocab(),
        params,
        vocab,
        tokenizer,
        ptb,
    }
}

/// The default model, embedded in the binary when `models/default/` existed at build time.
#[cfg(bundled_model)]
mod bundled {
    macro_rules! file {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/default/",
                $name
            ))
        };
    }
    pub const CONFIG: &[u8] = file!("config.json");
    pub const VOCAB: &[u8] = file!("vocab.json");
    pub const WEIGHTS: &[u8] = file!("model.safetensors");
    pub const MANIFEST: &[u8] = file!("manifest.json");
    #[cfg(bundled_selector)]
    pub const SELECTOR: Option<(&[u8], &[u8])> =
        Some((file!("selector.json"), file!("selector.safetensors")));
    #[cfg(not(bundled_selector))]
    pub const SELECTOR: Option<(&[u8], &[u8])> = None;
}

/// The bundled model, if this build carries one.
pub fn load_bundled(lowercase: Option<bool>) -> Result<Option<Loaded>> {
    #[cfg(bundled_model)]
    {
        let name = Path::new("<bundled model>");
        let (cfg, params, vocab) = abridge_train::checkpoint::model_from_bytes(
            name,
            bundled::CONFIG,
            bundled::VOCAB,
            bundled::WEIGHTS,
        )?;
        let manifest: serde_json::Value =
            serde_json::from_slice(bundled::MANIFEST).context("<bundled model>/manifest.json")?;
        let selector = bundled::SELECTOR
            .map(|(json, weights)| {
                abridge_train::selector_file::from_bytes(
                    name,
                    json,
                    weights,
                    &vocab,
                    2 * cfg.hidden,
                )
            })
            .transpose()?;
        let mut m = assemble(cfg, params, vocab, Some(&manifest), lowercase);
        m.selector = selector;
        Ok(Some(m))
    }
    #[cfg(not(bundled_model))]
    {
        let _ = lowercase;
        Ok(None)
    }
}

/// Loads `--model` if given, else the bundled default model; also returns the model's name.
pub fn load_default_or(path: Option<&Path>, lowercase: Option<bool>) -> Result<(Loaded, String)> {
    match path {
        Some(p) => Ok((load_model(p, lowercase)?, p.display().to_string())),
        None => match load_bundled(lowercase)? {
            Some(m) => Ok((m, "bundled:cnndm-pg".to_string())),
            None => bail!(
                "no --model given and this build carries no bundled model (models/default was \
                 missing when it was compiled); pass --model DIR (a folder written by `abridge \
                 train` or `abridge export`)"
            ),
        },
    }
}

/// One summary.
pub struct Summary {
    pub text: String,
    /// Extended-vocabulary ids of `tokens` (ids past the vocabulary are copied source words).
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    /// Source words outside the vocabulary that the pointer copied.
    pub copied_oov: Vec<String>,
    pub score: f64,
    /// `p_gen` at each token (empty without the pointer).
    pub p_gen: Vec<f32>,
}

impl Summary {
    /// The mean `p_gen` over the tokens (`None` without the pointer or tokens).
    pub fn mean_p_gen(&self) -> Option<f64> {
        (!self.p_gen.is_empty())
            .then(|| self.p_gen.iter().map(|&g| g as f64).sum::<f64>() / self.p_gen.len() as f64)
    }
}

/// Summarizes one document's text.
pub fn summarize_text(
    m: &Loaded,
    text: &str,
    dec: &Decoding,
    max_src_len: usize,
) -> Result<Summary> {
    let mut toks = m.tokenize(text);
    if toks.is_empty() {
        bail!("the document has no words");
    }
    toks.truncate(max_src_len.max(1));
    Ok(summarize_tokens(m, &toks, dec, &mut ())?.0)
}

/// Summarizes one tokenized document (non-empty) with beam search watched by `obs`; the flag
/// says whether `obs` stopped the search (the summary is then the best unfinished hypothesis).
pub fn summarize_tokens<O: Observer + ?Sized>(
    m: &Loaded,
    toks: &[String],
    dec: &Decoding,
    obs: &mut O,
) -> Result<(Summary, bool)> {
    if toks.is_empty() {
        bail!("the document has no words");
    }
    let ext = Extended::new(&m.vocab, toks);
    let src = m.vocab.encode(toks);
    let mut stepper =
        Stepper::new(&m.params, &m.cfg, &src, &ext.src)?.with_half_vocab(&m.half_vocab);
    if let Some(masks) = m.copy_masks(&stepper, &[&src], dec.select)? {
        stepper.set_copy_mask(&masks);
    }
    // A summary is never made longer than its document by the minimum length.
    let mut beam = dec.beam.clone();
    beam.min_len = beam.min_len.min(toks.len());
    let (hyps, stopped) = beam_search_observed(&mut stepper, &beam, obs);
    Ok((summary_of(m, &ext, hyps)?, stopped))
}

/// Summarizes several documents' texts in one batch (`beam_search_batch`: each document's search
/// is the same as alone, the model steps over all of their hypotheses at once). A document with
/// no words gets its own error; the others are decoded.
pub fn summarize_batch(
    m: &Loaded,
    texts: &[&str],
    dec: &Decoding,
    max_src_len: usize,
) -> Vec<Result<Summary>> {
    let docs: Vec<Option<(Extended, Vec<u32>)>> = texts
        .iter()
        .map(|t| {
            let mut toks = m.tokenize(t);
            toks.truncate(max_src_len.max(1));
            (!toks.is_empty()).then(|| (Extended::new(&m.vocab, &toks), m.vocab.encode(&toks)))
        })
        .collect();
    if docs
        .iter()
        .flatten()
        .any(|(_, src)| src.len() < dec.beam.min_len)
    {
        // A document shorter than the minimum length has its own (capped) minimum: decode each
        // alone, exactly as `summarize_tokens` does.
        return texts
            .iter()
            .map(|t| summarize_text(m, t, dec, max_src_len))
            .collect();
    }
    let live: Vec<&(Extended, Vec<u32>)> = docs.iter().flatten().collect();
    let decoded: Result<Vec<Vec<abridge_decode::Hypothesis>>> = if live.is_empty() {
        Ok(Vec::new())
    } else {
        let pairs: Vec<(&[u32], &[u32])> = live
            .iter()
            .map(|(ext, src)| (&src[..], &ext.src[..]))
            .collect();
        let lens: Vec<usize> = pairs.iter().map(|(s, _)| s.len()).collect();
        let srcs: Vec<&[u32]> = pairs.iter().map(|(s, _)| *s).collect();
        Stepper::new_batch(&m.params, &m.cfg, &pairs)
            .map_err(anyhow::Error::from)
            .and_then(|st| {
                let mut st = st.with_half_vocab(&m.half_vocab);
                if let Some(masks) = m.copy_masks(&st, &srcs, dec.select)? {
                    st.set_copy_mask(&masks);
                }
                Ok(abridge_decode::beam_search_batch(&mut st, &lens, &dec.beam))
            })
    };
    let mut decoded = match decoded {
        Ok(d) => d.into_iter(),
        Err(e) => {
            let msg = format!("{e:#}");
            return texts.iter().map(|_| Err(anyhow!("{msg}"))).collect();
        }
    };
    docs.iter()
        .map(|d| match d {
            None => Err(anyhow!("the document has no words")),
            Some((ext, _)) => summary_of(m, ext, decoded.next().expect("one per live document")),
        })
        .collect()
}

/// The summary a search's hypotheses (best first) give.
fn summary_of(
    m: &Loaded,
    ext: &Extended,
    hyps: Vec<abridge_decode::Hypothesis>,
) -> Result<Summary> {
    let best = hyps
        .into_iter()
        .next()
        .context("beam search returned nothing")?;
    let words: Vec<String> = best
        .tokens
        .iter()
        .map(|&id| ext.word(&m.vocab, id).unwrap_or("<unk>").to_string())
        .collect();
    let copied_oov = best
        .tokens
        .iter()
        .filter(|&&id| id as usize >= m.vocab.len())
        .filter_map(|&id| ext.word(&m.vocab, id))
        .map(str::to_string)
        .collect();
    Ok(Summary {
        ids: best.tokens.clone(),
        text: detokenize_lines(&words),
        tokens: words,
        copied_oov,
        score: best.score,
        p_gen: best.p_gen,
    })
}

pub fn beam_config(a: &DecodeArgs) -> Result<BeamConfig> {
    if a.beam == 0 || a.max_len == 0 {
        bail!("--beam and --max-len must be at least 1");
    }
    if a.min_len > a.max_len {
        bail!("--min-len {} is above --max-len {}", a.min_len, a.max_len);
    }
    Ok(BeamConfig {
        beam: a.beam,
        bos: abridge_text::vocab::BOS,
        eos: abridge_text::vocab::EOS,
        min_len: a.min_len,
        max_len: a.max_len,
        length_penalty: match a.length_penalty {
            LengthPenaltyArg::None => LengthPenalty::None,
            LengthPenaltyArg::Gnmt => LengthPenalty::Gnmt(a.alpha),
            LengthPenaltyArg::Avg => LengthPenalty::Average,
            LengthPenaltyArg::Power => LengthPenalty::Power(a.alpha),
        },
        coverage_penalty: match a.coverage_penalty {
            CoveragePenaltyArg::None => CoveragePenalty::None,
            CoveragePenaltyArg::Gnmt => CoveragePenalty::Gnmt(a.beta),
            CoveragePenaltyArg::Summary => CoveragePenalty::Summary(a.beta),
        },
        block_ngram: a.block_ngram,
    })
}

/// `(id, text)` of every input document.
fn documents(a: &SummarizeArgs) -> Result<Vec<(String, String)>> {
    if a.input == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input (as UTF-8)")?;
        return Ok(vec![("-".into(), s)]);
    }
    let p = PathBuf::from(&a.input);
    if p.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        return names
            .into_iter()
            .map(|f| {
                let bytes =
                    std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                let text = String::from_utf8(bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: invalid UTF-8 at byte {}",
                        f.display(),
                        e.utf8_error().valid_up_to()
                    )
                })?;
                Ok((
                    f.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    text,
                ))
            })
            .collect();
    }
    if abridge_text::io::base_name(&p).ends_with(".jsonl") {
        let corpus = Corpus::new(
            &p,
            abridge_text::corpus::Format::JsonLines(Fields {
                text: a.field.clone(),
                summary: a.field.clone(),
            }),
        );
        let (ex, stats) = corpus.read_all(false)?;
        if stats.bad > 0 {
            eprintln!(
                "warning: skipped {} bad record(s); the first: {}",
                stats.bad, stats.first_bad[0]
            );
        }
        return Ok(ex
            .into_iter()
            .map(|e| (e.line.to_string(), e.text))
            .collect());
    }
    let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: invalid UTF-8 at byte {}",
            p.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(vec![(a.input.clone(), text)])
}

pub fn run(a: &SummarizeArgs) -> Result<()> {
    beam_config(&a.decode)?;
    let (m, _) = load_default_or(a.model.as_deref(), a.lowercase)?;
    let beam = m.decoding(&a.decode)?;
    let docs = documents(a)?;
    let results: Vec<Result<Summary>> = with_threads(a.threads, || {
        use rayon::prelude::*;
        docs.par_iter()
            .map(|(_, text)| summarize_text(&m, text, &beam, m.src_len(&a.decode)))
            .collect()
    });
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut failed = 0;
    for ((id, _), r) in docs.iter().zip(results) {
        let s = match r {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warning: {id}: {e:#}; no summary");
                failed += 1;
                continue;
            }
        };
        match a.format {
            OutFormat::Text => {
                if docs.len() > 1 {
                    writeln!(out, "== {id}")?;
                }
                writeln!(out, "{}", s.text)?;
            }
            OutFormat::Json | OutFormat::Jsonl => {
                writeln!(
                    out,
                    "{}",
                    json!({"id": id, "summary": s.text, "tokens": s.tokens, "copied_oov": s.copied_oov, "score": s.score})
                )?;
            }
        }
    }
    out.flush()?;
    if failed == docs.len() && !docs.is_empty() {
        bail!("no document could be summarized");
    }
    Ok(())
}

/// Faithfulness signals of the model's summaries and, for comparison, of the references, each
/// against its document (tokenized as the model reads it).
fn faithfulness(
    m: &Loaded,
    ex: &[abridge_text::corpus::Example],
    summaries: &[Option<Summary>],
) -> (
    abridge_rouge::signals::SignalMeans,
    abridge_rouge::signals::SignalMeans,
) {
    use abridge_rouge::signals::{signals, SignalMeans};
    use rayon::prelude::*;
    let rows: Vec<_> = ex
        .par_iter()
        .zip(summaries)
        .map(|(e, s)| {
            let src = m.tokenize(&e.text);
            let reference = split_sentences(&m.tokenize(&e.summary));
            let model = s
                .as_ref()
                .map(|s| (signals(&src, &split_sentences(&s.tokens)), s.mean_p_gen()));
            (model, signals(&src, &reference))
        })
        .collect();
    let (mut model, mut refs) = (SignalMeans::default(), SignalMeans::default());
    for (ms, rs) in rows {
        if let Some((s, g)) = ms {
            model.add(&s, g);
        }
        refs.add(&rs, None);
    }
    (model, refs)
}

/// The first `k` sentences of a document (tokenized, sentence-split, detokenized one per line).
pub fn lead(tok: &Tokenizer, text: &str, k: usize) -> String {
    let tokens = tok.tokenize(text);
    split_sentences(&tokens)
        .iter()
        .take(k)
        .map(|s| detokenize(s))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The selector's extractive summary of tokens `toks` (already cut to the model's source
/// length): the `k` sentences with the highest mean selection probability, in document order.
pub fn select_sentences(m: &Loaded, toks: &[String], k: usize) -> Result<String> {
    if toks.is_empty() {
        return Ok(String::new());
    }
    let ids = m.vocab.encode(toks);
    let st = Stepper::new(&m.params, &m.cfg, &ids, &ids)?;
    let q = m
        .selection(&st, &[&ids])?
        .context("this model has no content selector (train one with `abridge selector train`)")?
        .remove(0);
    let sents = split_sentences(toks);
    let mut scored: Vec<(usize, f64)> = Vec::with_capacity(sents.len());
    let mut at = 0;
    for (i, s) in sents.iter().enumerate() {
        let mean = q[at..at + s.len()].iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64;
        scored.push((i, mean));
        at += s.len();
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut keep: Vec<usize> = scored.iter().take(k).map(|&(i, _)| i).collect();
    keep.sort_unstable();
    Ok(keep
        .iter()
        .map(|&i| detokenize(&sents[i]))
        .collect::<Vec<_>>()
        .join("\n"))
}

pub fn baseline(cmd: BaselineCommand) -> Result<()> {
    let (a, k, format, model) = match &cmd {
        BaselineCommand::Lead { corpus, k, format } => (corpus, *k, *format, None),
        BaselineCommand::Select {
            corpus,
            model,
            k,
            format,
        } => {
            let (mut m, name) = load_default_or(
                model.as_deref(),
                if corpus.lowercase { Some(true) } else { None },
            )?;
            m.tokenizer.pretokenized = corpus.pretokenized;
            if m.selector.is_none() {
                bail!("{name}: this model has no content selector (train one with `abridge selector train`)");
            }
            (corpus, *k, *format, Some(m))
        }
    };
    let corpus = a.open(&a.file)?;
    let tok = Tokenizer {
        lowercase: model
            .as_ref()
            .map_or(a.lowercase, |m| m.tokenizer.lowercase),
        pretokenized: a.pretokenized,
    };
    let (ex, stats) = corpus.read_all(a.strict)?;
    if stats.bad > 0 {
        eprintln!(
            "warning: skipped {} bad record(s); the first: {}",
            stats.bad, stats.first_bad[0]
        );
    }
    let lead_pairs: Vec<abridge_rouge::corpus::Pair> = with_threads(a.threads, || {
        use rayon::prelude::*;
        ex.par_iter()
            .map(|e| abridge_rouge::corpus::Pair {
                id: e.line.to_string(),
                hyp: lead(&tok, &e.text, k),
                refs: vec![e.summary.clone()],
            })
            .collect()
    });
    let mut systems = vec![(format!("lead-{k}"), lead_pairs)];
    if let Some(m) = &model {
        let src_len = m.train_src_len.unwrap_or(400);
        let pairs: Result<Vec<abridge_rouge::corpus::Pair>> = with_threads(a.threads, || {
            use rayon::prelude::*;
            ex.par_iter()
                .map(|e| {
                    let mut toks = m.tokenize(&e.text);
                    toks.truncate(src_len);
                    Ok(abridge_rouge::corpus::Pair {
                        id: e.line.to_string(),
                        hyp: select_sentences(m, &toks, k)?,
                        refs: vec![e.summary.clone()],
                    })
                })
                .collect()
        });
        systems.insert(0, (format!("select-{k}"), pairs?));
    }
    let types = vec![
        RougeType::N(1),
        RougeType::N(2),
        RougeType::L,
        RougeType::Lsum,
    ];
    let scorer = RougeScorer::new(types.clone(), true);
    let mut results = Vec::new();
    for (name, pairs) in &systems {
        let per = with_threads(a.threads, || {
            abridge_rouge::corpus::score_all(&scorer, pairs)
        });
        let summary = abridge_rouge::corpus::summarize(&types, &per, 42, 1000, 0.95)
            .context("no pairs to score")?;
        results.push((name, pairs.len(), summary));
    }
    for (name, n, summary) in results {
        match format {
            Format::Json => {
                let scores: serde_json::Map<String, serde_json::Value> = summary
                    .iter()
                    .map(|s| (s.rouge_type.name(), json!({"f": s.mean.fmeasure, "p": s.mean.precision, "r": s.mean.recall, "f_low": s.interval.low[2], "f_high": s.interval.high[2]})))
                    .collect();
                println!(
                    "{}",
                    json!({"baseline": name, "pairs": n, "rouge": "rouge-score 0.1.2, stemming", "scores": scores})
                );
            }
            Format::Text => {
                println!("{name} on {n} pairs (rouge-score 0.1.2 flavour, stemming; F1 with 95% bootstrap interval):");
                for s in &summary {
                    println!(
                        "  {:10} {:.2} [{:.2}, {:.2}]",
                        s.rouge_type.name(),
                        100.0 * s.mean.fmeasure,
                        100.0 * s.interval.low[2],
                        100.0 * s.interval.high[2]
                    );
                }
            }
        }
    }
    Ok(())
}

pub fn eval(a: &EvalArgs) -> Result<()> {
    use abridge_rouge::corpus::{
        score_all, score_all_155, summarize as rs_summary, summarize_155, Pair,
    };
    beam_config(&a.decode)?;
    let (mut m, _) = load_default_or(
        a.model.as_deref(),
        if a.corpus.lowercase { Some(true) } else { None },
    )?;
    let beam = m.decoding(&a.decode)?;
    m.tokenizer.pretokenized = a.corpus.pretokenized;
    let corpus = a.corpus.open(&a.corpus.file)?;
    let mut ex = Vec::new();
    let stats = corpus.for_each_chunk_while(a.corpus.strict, 512, |c| {
        ex.extend(c);
        a.max_examples.is_none_or(|n| ex.len() < n)
    })?;
    if let Some(n) = a.max_examples {
        ex.truncate(n);
    }
    if stats.bad > 0 {
        eprintln!(
            "warning: skipped {} bad record(s); the first: {}",
            stats.bad, stats.first_bad[0]
        );
    }
    if ex.is_empty() {
        bail!("{}: no pairs to evaluate", a.corpus.file.display());
    }
    let bar = indicatif::ProgressBar::new(ex.len() as u64);
    let start = std::time::Instant::now();
    // Groups of `--batch-docs` documents, each decoded as one batch (the model steps over all
    // their hypotheses at once), groups in parallel: one per worker keeps every core busy without
    // per-step synchronisation.
    let group = a.batch_docs.max(1);
    let summaries: Vec<Option<Summary>> = with_threads(a.corpus.threads, || {
        use rayon::prelude::*;
        ex.par_chunks(group)
            .flat_map_iter(|g| {
                let texts: Vec<&str> = g.iter().map(|e| e.text.as_str()).collect();
                let out = summarize_batch(&m, &texts, &beam, m.src_len(&a.decode));
                bar.inc(g.len() as u64);
                out.into_iter().map(Result::ok)
            })
            .collect()
    });
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let decodes: Vec<String> = summaries
        .iter()
        .map(|s| s.as_ref().map(|s| s.text.clone()).unwrap_or_default())
        .collect();
    let (model_signals, ref_signals) =
        with_threads(a.corpus.threads, || faithfulness(&m, &ex, &summaries));
    let mean_words = summaries
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.tokens.len()))
        .sum::<usize>() as f64
        / ex.len() as f64;
    if let Some(path) = &a.out {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for (e, d) in ex.iter().zip(&decodes) {
            writeln!(
                f,
                "{}",
                json!({"id": e.line, "summary": d, "reference": e.summary})
            )?;
        }
    }
    let tok = Tokenizer {
        lowercase: m.tokenizer.lowercase,
        pretokenized: a.corpus.pretokenized,
    };
    let pairs: Vec<Pair> = ex
        .iter()
        .zip(&decodes)
        .map(|(e, d)| Pair {
            id: e.line.to_string(),
            hyp: d.clone(),
            refs: vec![e.summary.clone()],
        })
        .collect();
    let lead: Vec<Pair> = ex
        .iter()
        .map(|e| Pair {
            id: e.line.to_string(),
            hyp: lead(&tok, &e.text, 3),
            refs: vec![e.summary.clone()],
        })
        .collect();
    let types = vec![RougeType::N(1), RougeType::N(2), RougeType::Lsum];
    let scorer = RougeScorer::new(types.clone(), true);
    let opts = abridge_rouge::Rouge155Options::see_et_al();
    let (model_rs, lead_rs, model_155) = with_threads(a.corpus.threads, || {
        (
            rs_summary(&types, &score_all(&scorer, &pairs), 42, 1000, 0.95),
            rs_summary(&types, &score_all(&scorer, &lead), 42, 1000, 0.95),
            summarize_155(
                &opts.metric_names(),
                &score_all_155(&opts, &pairs),
                1000,
                95.0,
            ),
        )
    });
    let f = |s: &Option<Vec<abridge_rouge::corpus::TypeSummary>>| -> Vec<f64> {
        s.iter()
            .flatten()
            .map(|t| 100.0 * t.mean.fmeasure)
            .collect()
    };
    let signals_json = |s: &abridge_rouge::signals::SignalMeans| -> serde_json::Value {
        s.means()
            .into_iter()
            .map(|(n, v)| (n.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let out = json!({
        "pairs": ex.len(), "seconds": secs, "articles_per_s": ex.len() as f64 / secs,
        "selector": beam.select.map(|t| json!({"threshold": t})),
        "mean_words": mean_words,
        "faithfulness": {"model": signals_json(&model_signals), "reference": signals_json(&ref_signals)},
        "rouge_score_stem": {"model": f(&model_rs), "lead3": f(&lead_rs), "types": ["rouge1", "rouge2", "rougeLsum"]},
        "rouge155_see_et_al": model_155.iter().map(|m| json!({"metric": m.name, "F": m.f.avg, "ci": [m.f.ci_low, m.f.ci_high]})).collect::<Vec<_>>(),
    });
    match a.format {
        Format::Json => println!("{out}"),
        Format::Text => {
            let (mr, lr) = (f(&model_rs), f(&lead_rs));
            println!(
                "{} pairs decoded in {:.1} s ({:.2} articles/s)",
                ex.len(),
                secs,
                ex.len() as f64 / secs
            );
            println!("rouge-score (stemming) F1   R1     R2     RLsum");
            println!(
                "  model                   {:6.2} {:6.2} {:6.2}",
                mr[0], mr[1], mr[2]
            );
            println!(
                "  Lead-3                  {:6.2} {:6.2} {:6.2}",
                lr[0], lr[1], lr[2]
            );
            for m in &model_155 {
                println!(
                    "ROUGE-1.5.5 (-c 95 -r 1000 -n 2 -m -a) {}: F {:.5} ({:.5} - {:.5})",
                    m.name, m.f.avg, m.f.ci_low, m.f.ci_high
                );
            }
            match beam.select {
                Some(t) => println!("content selection: on (copy threshold {t})"),
                None => println!("content selection: off"),
            }
            println!("mean summary length: {mean_words:.1} tokens");
            println!("faithfulness (mean per summary, %)   model  reference");
            for ((name, mv), (_, rv)) in model_signals.means().into_iter().zip(ref_signals.means())
            {
                let pct = |v: Option<f64>| {
                    v.map_or("     -".to_string(), |v| format!("{:6.2}", 100.0 * v))
                };
                println!("  {name:24}          {}   {}", pct(mv), pct(rv));
            }
        }
    }
    Ok(())
}
