//! `abridge summarize` and `abridge baseline lead`.

use std::io::Write;
use std::path::Path;

use abridge::{lead, Summarizer, Summary};
use abridge_rouge::{RougeScorer, RougeType};
use abridge_text::tokenize::{split_sentences, Tokenizer};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::cli::{
    Baseline, BaselineCommand, EvalArgs, EvalFormat, Format, SummarizeArgs, SummaryFormat,
};
use crate::with_threads;

/// Loads `--model` if given, else the bundled default model.
pub fn load_default_or(path: Option<&Path>) -> Result<Summarizer> {
    match path {
        Some(p) => Ok(Summarizer::open(p)?),
        None => Summarizer::bundled().map_err(|e| match e {
            abridge::Error::NoBundledModel => anyhow!(
                "no --model given and this build carries no bundled model (models/default was \
                 missing when it was compiled); pass --model DIR (a folder written by `abridge \
                 train` or `abridge export`)"
            ),
            e => e.into(),
        }),
    }
}

/// `(id, text)` of every input document (see [`crate::batch::for_each_document`]). In a
/// directory, a file that cannot be read (or is not UTF-8) is reported and counted (the second
/// value), and the others are still summarized.
fn documents(a: &SummarizeArgs) -> Result<(Vec<(String, String)>, usize)> {
    let mut docs = Vec::new();
    let unreadable = crate::batch::for_each_document(a, |_, id, text| {
        docs.push((id, text));
        Ok(true)
    })?;
    Ok((docs, unreadable))
}

/// A text file's contents; an error names the file (and the first invalid byte).
pub fn read_utf8(p: &Path) -> Result<String> {
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: invalid UTF-8 at byte {}",
            p.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

pub fn run(a: &SummarizeArgs) -> Result<()> {
    if let Some(out) = &a.out {
        return crate::batch::run(a, out);
    }
    let m = load_default_or(a.model.as_deref())?;
    let dec = m.decoding(&a.decode.options())?;
    if let Some(w) = m.length_warning(&a.decode.options()) {
        eprintln!("warning: {w}");
    }
    let (docs, unreadable) = documents(a)?;
    let results: Vec<abridge::Result<Summary>> = with_threads(a.threads, || {
        use rayon::prelude::*;
        docs.par_iter()
            .map(|(_, text)| m.summarize_with(text, &dec))
            .collect()
    });
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut failed = 0;
    for ((id, text), r) in docs.iter().zip(results) {
        let s = match r {
            Ok(s) => {
                if let Some(w) = m.vocabulary_warning(text) {
                    eprintln!("warning: {id}: {w}");
                }
                s
            }
            Err(e) => {
                eprintln!("warning: {id}: {e:#}; no summary");
                failed += 1;
                continue;
            }
        };
        match a.format {
            SummaryFormat::Text => {
                if docs.len() > 1 {
                    writeln!(out, "== {id}")?;
                }
                writeln!(out, "{}", s.text)?;
            }
            SummaryFormat::Line => writeln!(out, "{}", s.one_line())?,
            SummaryFormat::Jsonl => {
                let sentences: Vec<&str> = s.sentences().collect();
                writeln!(
                    out,
                    "{}",
                    json!({"id": id, "summary": s.one_line(), "sentences": sentences, "tokens": s.tokens, "copied_oov": s.copied_oov, "score": s.score, "truncated": s.truncated})
                )?;
            }
        }
    }
    out.flush()?;
    if failed == docs.len() && !docs.is_empty() && unreadable == 0 {
        bail!("no document could be summarized");
    }
    if failed + unreadable > 0 {
        bail!(
            "{} of {} documents could not be summarized (see the warnings above)",
            failed + unreadable,
            docs.len() + unreadable
        );
    }
    Ok(())
}

/// Faithfulness signals of the model's summaries and, for comparison, of the references, each
/// against its document (tokenized as the model reads it).
fn faithfulness(
    m: &Summarizer,
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

pub fn baseline(cmd: BaselineCommand) -> Result<()> {
    let (a, k, format, model) = match &cmd {
        BaselineCommand::Lead { corpus, k, format } => (corpus, *k, *format, None),
        BaselineCommand::Select {
            corpus,
            model,
            k,
            format,
        } => {
            let mut m = load_default_or(model.as_deref())?;
            m.set_pretokenized(corpus.pretokenized);
            if m.selector().is_none() {
                bail!(
                    "{}: this model has no content selector (train one with `abridge selector \
                     train`)",
                    m.name()
                );
            }
            (corpus, *k, *format, Some(m))
        }
    };
    let corpus = a.open(&a.file)?;
    let tok = Tokenizer {
        lowercase: model
            .as_ref()
            .map_or(a.lowercase, |m| m.word_tokenizer().lowercase),
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
        let src_len = m.tokenizer_config().max_source_tokens;
        let pairs: Result<Vec<abridge_rouge::corpus::Pair>> = with_threads(a.threads, || {
            use rayon::prelude::*;
            ex.par_iter()
                .map(|e| {
                    let mut toks = m.tokenize(&e.text);
                    toks.truncate(src_len);
                    Ok(abridge_rouge::corpus::Pair {
                        id: e.line.to_string(),
                        hyp: m.select_sentences(&toks, k)?,
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
                outln!(
                    "{}",
                    json!({"baseline": name, "pairs": n, "rouge": "rouge-score 0.1.2, stemming", "scores": scores})
                )?;
            }
            Format::Text => {
                outln!("{name} on {n} pairs (rouge-score 0.1.2 flavour, stemming; F1 with 95% bootstrap interval):")?;
                for s in &summary {
                    outln!(
                        "  {:10} {:.2} [{:.2}, {:.2}]",
                        s.rouge_type.name(),
                        100.0 * s.mean.fmeasure,
                        100.0 * s.interval.low[2],
                        100.0 * s.interval.high[2]
                    )?;
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
    let shard = crate::batch::Shard::from_flag(a.shard.as_deref())?;
    let out_path = a.out.as_deref().map(|p| shard.path(p));
    if let Some(out) = &out_path {
        crate::refuse_overwriting_input(out, &[&a.corpus.file], "--out")?;
    }
    let mut m = load_default_or(a.model.as_deref())?;
    let beam = m.decoding(&a.decode.options())?;
    if let Some(w) = m.length_warning(&a.decode.options()) {
        eprintln!("warning: {w}");
    }
    m.set_pretokenized(a.corpus.pretokenized);
    let corpus = a.corpus.open(&a.corpus.file)?;
    let mut ex = Vec::new();
    let stats = corpus.for_each_chunk_while(a.corpus.strict, 512, |c| {
        ex.extend(c);
        a.max_examples.is_none_or(|n| ex.len() < n)
    })?;
    if let Some(n) = a.max_examples {
        ex.truncate(n);
    }
    // Each pair's number in the (truncated) input, and this shard's pairs.
    let (numbers, ex): (Vec<usize>, Vec<_>) = ex
        .into_iter()
        .enumerate()
        .filter(|(k, _)| shard.owns(*k))
        .unzip();
    if stats.bad > 0 {
        eprintln!(
            "warning: skipped {} bad record(s); the first: {}",
            stats.bad, stats.first_bad[0]
        );
    }
    if ex.is_empty() {
        bail!(
            "{}: no pairs to evaluate{}",
            a.corpus.file.display(),
            shard
                .label()
                .map(|l| format!(" in shard {l}"))
                .unwrap_or_default()
        );
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
                let out = m.summarize_batch_with(&texts, &beam);
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
    if let Some(path) = &out_path {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for ((e, d), k) in ex.iter().zip(&decodes).zip(&numbers) {
            let mut line =
                json!({"index": k, "id": e.name(), "summary": d, "reference": e.summary});
            if !e.references.is_empty() {
                line["references"] = json!(e.all_references());
            }
            writeln!(f, "{line}")?;
        }
        f.flush()
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let tok = *m.word_tokenizer();
    let refs = |e: &abridge_text::corpus::Example| -> Vec<String> {
        e.all_references().into_iter().map(String::from).collect()
    };
    let multi_ref = ex
        .iter()
        .map(|e| e.all_references().len())
        .max()
        .unwrap_or(1);
    let pairs: Vec<Pair> = ex
        .iter()
        .zip(&decodes)
        .map(|(e, d)| Pair {
            id: e.name(),
            hyp: d.clone(),
            refs: refs(e),
        })
        .collect();
    let base: Vec<Pair> = ex
        .iter()
        .filter_map(|e| {
            let hyp = match a.baseline {
                Baseline::None => return None,
                Baseline::Lead(k) => lead(&tok, &e.text, k),
                Baseline::Words(n) => first_words(&tok, &e.text, n),
            };
            Some(Pair {
                id: e.name(),
                hyp,
                refs: refs(e),
            })
        })
        .collect();
    let types = vec![RougeType::N(1), RougeType::N(2), RougeType::Lsum];
    let scorer = RougeScorer::new(types.clone(), true);
    let opts = abridge_rouge::Rouge155Options::see_et_al();
    let (model_rs, lead_rs, model_155) = with_threads(a.corpus.threads, || {
        (
            rs_summary(&types, &score_all(&scorer, &pairs), 42, 1000, 0.95),
            rs_summary(&types, &score_all(&scorer, &base), 42, 1000, 0.95),
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
        "pairs": ex.len(), "shard": shard.label(),
        "seconds": secs, "articles_per_s": ex.len() as f64 / secs,
        "selector": beam.select.map(|t| json!({"threshold": t})),
        "mean_words": mean_words,
        "faithfulness": {"model": signals_json(&model_signals), "reference": signals_json(&ref_signals)},
        "rouge_score_stem": {"model": f(&model_rs), "baseline": f(&lead_rs), "types": ["rouge1", "rouge2", "rougeLsum"]},
        "baseline": a.baseline.name(),
        "references": {
            "most_per_pair": multi_ref,
            "rouge_score": "the best F1 over a pair's references (rouge-score's score_multi)",
            "rouge155": "ROUGE-1.5.5's -f A: scores averaged over a pair's references",
        },
        "rouge155_see_et_al": model_155.iter().map(|m| json!({"metric": m.name, "F": m.f.avg, "ci": [m.f.ci_low, m.f.ci_high]})).collect::<Vec<_>>(),
    });
    if a.card {
        let dir = abridge::folder::model_dir(a.model.as_deref().expect("clap requires --model"))?;
        let file = abridge_text::io::base_name(&a.corpus.file).to_string();
        let mr = f(&model_rs);
        write_card(&dir, &file, ex.len(), &mr)?;
        eprintln!(
            "recorded ROUGE in {}",
            dir.join(abridge::folder::CARD).display()
        );
    }
    match a.format {
        EvalFormat::Json => outln!("{out}")?,
        EvalFormat::Line => {
            let mr = f(&model_rs);
            outln!(
                "pairs {} R1 {:.2} R2 {:.2} RLsum {:.2}",
                ex.len(),
                mr[0],
                mr[1],
                mr[2]
            )?;
        }
        EvalFormat::Text => {
            let (mr, lr) = (f(&model_rs), f(&lead_rs));
            outln!(
                "{} pairs{} decoded in {:.1} s ({:.2} articles/s)",
                ex.len(),
                shard
                    .label()
                    .map(|l| format!(" (shard {l})"))
                    .unwrap_or_default(),
                secs,
                ex.len() as f64 / secs
            )?;
            outln!("rouge-score (stemming) F1   R1     R2     RLsum")?;
            outln!(
                "  model                   {:6.2} {:6.2} {:6.2}",
                mr[0],
                mr[1],
                mr[2]
            )?;
            if !lr.is_empty() {
                outln!(
                    "  {:23} {:6.2} {:6.2} {:6.2}",
                    a.baseline.name(),
                    lr[0],
                    lr[1],
                    lr[2]
                )?;
            }
            if multi_ref > 1 {
                outln!(
                    "  (up to {multi_ref} references per pair: rouge-score takes the best, \
                     ROUGE-1.5.5 averages them, -f A)"
                )?;
            }
            for m in &model_155 {
                outln!(
                    "ROUGE-1.5.5 (-c 95 -r 1000 -n 2 -m -a) {}: F {:.5} ({:.5} - {:.5})",
                    m.name,
                    m.f.avg,
                    m.f.ci_low,
                    m.f.ci_high
                )?;
            }
            match beam.select {
                Some(t) => outln!("content selection: on (copy threshold {t})")?,
                None => outln!("content selection: off")?,
            }
            outln!("mean summary length: {mean_words:.1} tokens")?;
            outln!("faithfulness (mean per summary, %)   model  reference")?;
            for ((name, mv), (_, rv)) in model_signals.means().into_iter().zip(ref_signals.means())
            {
                let pct = |v: Option<f64>| {
                    v.map_or("     -".to_string(), |v| format!("{:6.2}", 100.0 * v))
                };
                outln!("  {name:24}          {}   {}", pct(mv), pct(rv))?;
            }
        }
    }
    Ok(())
}

/// Writes the model card of folder `dir` with `rouge` (R1, R2, RLsum of rouge-score with stemming)
/// measured on `pairs` pairs of `file`, keeping the text of a card already there.
fn write_card(dir: &Path, file: &str, pairs: usize, rouge: &[f64]) -> Result<()> {
    let path = dir.join(abridge::folder::CARD);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let body = match old
        .strip_prefix("---\n")
        .and_then(|r| r.split_once("\n---\n"))
    {
        Some((_, body)) => body.trim_start_matches('\n').to_string(),
        None if !old.trim().is_empty() => old,
        None => format!(
            "# {}\n",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ),
    };
    let record: Option<serde_json::Value> = std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let train = record.as_ref().and_then(|r| {
        r["run"]["data"]["train"]["path"]
            .as_str()
            .or_else(|| r["data"]["train"]["path"].as_str())
            .map(|p| abridge_text::io::base_name(Path::new(p)).to_string())
    });
    let names = ["ROUGE-1", "ROUGE-2", "ROUGE-Lsum"];
    let card = abridge::folder::ModelCard {
        name: dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        datasets: train.into_iter().collect(),
        // The file names the dataset; its stem (`dev` of dev.jsonl) the split.
        eval_dataset: Some((
            file.to_string(),
            file.split('.').next().unwrap_or(file).to_string(),
        )),
        results: ["rouge1", "rouge2", "rougeLsum"]
            .iter()
            .zip(names)
            .zip(rouge)
            .map(|((t, n), v)| {
                (
                    t.to_string(),
                    format!("{n} (rouge-score, stemming; {pairs} pairs)"),
                    *v,
                )
            })
            .collect(),
        body,
    };
    card.write(dir)?;
    Ok(())
}

/// The first `n` words of a document (tokenized, detokenized one sentence per line).
fn first_words(tok: &Tokenizer, text: &str, n: usize) -> String {
    let mut tokens = tok.tokenize(text);
    tokens.truncate(n);
    abridge_text::tokenize::detokenize_lines(&tokens)
}
