//! `abridge data`, `abridge vocab`, `abridge embeddings` and `abridge bench data`: wiring over
//! `abridge-text`.

use std::time::Instant;

use abridge_text::corpus::Corpus;
use abridge_text::embeddings::{for_vocab, EmbFormat, Embeddings};
use abridge_text::stats::{count, percentile, CorpusCounts};
use abridge_text::tokenize::Tokenizer;
use abridge_text::vocab::{Vocab, VocabConfig};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{
    CorpusArgs, DataCommand, EmbFileArgs, EmbFormatArg, EmbeddingsCommand, Format, VocabCommand,
};
use crate::with_threads;

fn corpus(a: &CorpusArgs) -> Result<Corpus> {
    a.open(&a.file)
}

fn tokenizer(a: &CorpusArgs) -> Tokenizer {
    Tokenizer {
        lowercase: a.lowercase,
        pretokenized: a.pretokenized,
    }
}

fn counted(a: &CorpusArgs) -> Result<CorpusCounts> {
    let c = corpus(a)?;
    let counts = with_threads(a.threads, || count(&c, &tokenizer(a), a.strict))?;
    if counts.read.bad > 0 {
        eprintln!(
            "warning: skipped {} bad record(s) in {}; the first:",
            counts.read.bad,
            a.file.display()
        );
        for b in &counts.read.first_bad {
            eprintln!("  {b}");
        }
    }
    Ok(counts)
}

fn lengths_json(v: &[u32]) -> serde_json::Value {
    let mean = if v.is_empty() {
        0.0
    } else {
        v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
    };
    json!({"mean": (mean * 10.0).round() / 10.0, "p50": percentile(v, 50.0), "p90": percentile(v, 90.0), "p99": percentile(v, 99.0), "max": v.iter().max().copied().unwrap_or(0)})
}

pub fn data(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Stats { corpus: a, format } => {
            let c = counted(&a)?;
            let out = json!({
                "file": a.file.display().to_string(),
                "pairs": c.read.examples,
                "bad_records": c.read.bad,
                "bytes": c.bytes,
                "text_tokens": lengths_json(&c.text_lengths),
                "summary_tokens": lengths_json(&c.summary_lengths),
                "distinct_tokens": {"text": c.text.len(), "summary": c.summary.len()},
                "suggested_train": suggest_train(&a, &c),
            });
            match format {
                Format::Json => outln!("{out}")?,
                Format::Text => {
                    outln!(
                        "{}: {} pairs, {} bad records, {:.1} MB of text",
                        a.file.display(),
                        c.read.examples,
                        c.read.bad,
                        c.bytes as f64 / 1e6
                    )?;
                    for (name, key) in [
                        ("documents", "text_tokens"),
                        ("summaries", "summary_tokens"),
                    ] {
                        let l = &out[key];
                        outln!(
                            "  {name:9} tokens: mean {}  p50 {}  p90 {}  p99 {}  max {}",
                            l["mean"],
                            l["p50"],
                            l["p90"],
                            l["p99"],
                            l["max"]
                        )?;
                    }
                    outln!(
                        "  distinct tokens: {} in documents, {} in summaries",
                        c.text.len(),
                        c.summary.len()
                    )?;
                    let t = &out["suggested_train"];
                    outln!(
                        "suggested training command ({}):",
                        t["why"].as_str().unwrap_or("")
                    )?;
                    outln!("  {}", t["command"].as_str().unwrap_or(""))?;
                }
            }
        }
    }
    Ok(())
}

/// Share of corpus tokens that `vocab` knows.
fn in_vocab_share(vocab: &Vocab, counts: &rustc_hash::FxHashMap<String, u64>) -> f64 {
    let (mut known, mut all) = (0u64, 0u64);
    for (t, &c) in counts {
        all += c;
        if vocab.get(t).is_some() {
            known += c;
        }
    }
    if all == 0 {
        0.0
    } else {
        known as f64 / all as f64
    }
}

pub fn vocab(cmd: VocabCommand) -> Result<()> {
    match cmd {
        VocabCommand::Build {
            corpus: a,
            out,
            max_size,
            min_count,
            separate,
        } => {
            crate::refuse_overwriting_input(&out, &[&a.file], "--out")?;
            let c = counted(&a)?;
            let cfg = VocabConfig {
                max_size: Some(max_size),
                min_count,
            };
            let mut written = Vec::new();
            if separate {
                let stem = out.with_extension("");
                for (side, counts) in [("source", &c.text), ("target", &c.summary)] {
                    let v = Vocab::from_counts(counts, cfg).with_tokenizer(tokenizer(&a));
                    let path = stem.with_extension(format!("{side}.json"));
                    v.save(&path)?;
                    written.push((path, v.len(), in_vocab_share(&v, counts)));
                }
            } else {
                let all = c.combined();
                let v = Vocab::from_counts(&all, cfg).with_tokenizer(tokenizer(&a));
                v.save(&out)?;
                written.push((out.clone(), v.len(), in_vocab_share(&v, &all)));
            }
            for (path, n, share) in written {
                outln!(
                    "{}: {n} entries, covering {:.2}% of the corpus tokens ({} pairs read)",
                    path.display(),
                    100.0 * share,
                    c.read.examples
                )?;
            }
        }
    }
    Ok(())
}

fn emb_format(a: &EmbFileArgs) -> EmbFormat {
    match a.emb_format {
        EmbFormatArg::Auto => EmbFormat::guess(&a.file),
        EmbFormatArg::Glove => EmbFormat::Glove,
        EmbFormatArg::Text => EmbFormat::Text,
        EmbFormatArg::Bin => EmbFormat::Word2VecBinary,
    }
}

pub fn embeddings(cmd: EmbeddingsCommand) -> Result<()> {
    match cmd {
        EmbeddingsCommand::Neighbors {
            emb,
            word,
            k,
            format,
        } => {
            let e = Embeddings::load(&emb.file, emb_format(&emb), None)?;
            let nn = e.neighbors(&word, k).with_context(|| {
                format!(
                    "`{word}` is not among the {} words of {}",
                    e.words.len(),
                    emb.file.display()
                )
            })?;
            match format {
                Format::Json => outln!(
                    "{}",
                    json!({"word": word, "neighbors": nn.iter().map(|(w, s)| json!({"word": w, "cosine": s})).collect::<Vec<_>>()})
                )?,
                Format::Text => {
                    for (w, s) in nn {
                        outln!("{s:.4}  {w}")?;
                    }
                }
            }
        }
        EmbeddingsCommand::Coverage { emb, vocab, format } => {
            let v = Vocab::load(&vocab)?;
            let (_, dim, cov) = for_vocab(&emb.file, emb_format(&emb), &v, 0)?;
            let out = json!({
                "dim": dim, "found": cov.found, "total": cov.total, "found_lowercased": cov.found_lowercased,
                "token_coverage": cov.token_coverage, "missing_examples": cov.missing_examples,
            });
            match format {
                Format::Json => outln!("{out}")?,
                Format::Text => outln!(
                    "{} of {} vocabulary words found ({:.1}%; {} through lower-casing), covering {:.2}% of corpus tokens; {}-dimensional\n  most frequent missing: {}",
                    cov.found,
                    cov.total,
                    100.0 * cov.found as f64 / cov.total.max(1) as f64,
                    cov.found_lowercased,
                    100.0 * cov.token_coverage,
                    dim,
                    cov.missing_examples.join(" ")
                )?,
            }
        }
    }
    Ok(())
}

/// Peak resident set size of this process in MB (Linux `VmHWM`), if known.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn bench(a: &CorpusArgs, format: Format) -> Result<()> {
    let start = Instant::now();
    let c = counted(a)?;
    let counted_s = start.elapsed().as_secs_f64();
    let v = Vocab::from_counts(&c.combined(), VocabConfig::default());
    let total_s = start.elapsed().as_secs_f64();
    let out = json!({
        "bench": "abridge_data", "file": a.file.display().to_string(), "pairs": c.read.examples, "bad_records": c.read.bad,
        "mb": (c.bytes as f64 / 1e6 * 10.0).round() / 10.0, "seconds": (total_s * 1000.0).round() / 1000.0,
        "mb_per_s": (c.bytes as f64 / 1e6 / total_s * 10.0).round() / 10.0, "tokenize_count_seconds": (counted_s * 1000.0).round() / 1000.0,
        "vocab": v.len(), "distinct_tokens": c.combined().len(), "peak_rss_mb": peak_rss_mb().map(|m| m.round()),
        "pretokenized": a.pretokenized, "lowercase": a.lowercase, "threads": if a.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { a.threads },
    });
    match format {
        Format::Json => outln!("{out}")?,
        Format::Text => outln!(
            "{} pairs, {} MB read, tokenized and counted, vocabulary of {} built in {} s ({} MB/s), peak RSS {} MB",
            out["pairs"], out["mb"], out["vocab"], out["seconds"], out["mb_per_s"], out["peak_rss_mb"]
        )?,
    }
    Ok(())
}

/// A `train` command for this corpus: sources cut near the 90th percentile of document lengths
/// and targets at the 99th of summary lengths; for a small corpus (under 50,000 pairs) a
/// vocabulary of words seen at least twice and dropout 0.3; an evaluation about every half
/// epoch; a 30-minute budget.
fn suggest_train(a: &crate::cli::CorpusArgs, c: &CorpusCounts) -> serde_json::Value {
    let pairs = c.read.examples;
    let round_up = |x: u32, m: u32| x.div_ceil(m).max(1) * m;
    let src = round_up(percentile(&c.text_lengths, 90.0), 10).min(400);
    let tgt = round_up(percentile(&c.summary_lengths, 99.0), 5).min(100);
    let small = pairs < 50_000;
    let batch = 16usize;
    let eval_every = (pairs / batch / 2).clamp(100, 2000);
    let mut cmd = format!(
        "abridge train {} --dev DEV_FILE --out runs/my-model --optimizer adam --lr 0.001 \
         --batch-size {batch} --max-src-len {src} --max-tgt-len {tgt} --eval-every {eval_every} \
         --dev-examples 2000 --max-minutes 30",
        a.file.display()
    );
    if small {
        cmd += " --min-count 2 --dropout 0.3";
    }
    if a.lowercase {
        cmd += " --lowercase";
    }
    if a.pretokenized {
        cmd += " --pretokenized";
    }
    json!({
        "command": cmd,
        "max_src_len": src, "max_tgt_len": tgt, "eval_every": eval_every,
        "min_count": if small { 2 } else { 1 }, "dropout": if small { 0.3 } else { 0.0 },
        "why": format!(
            "sources at p90 of document lengths, targets at p99 of summary lengths{}, an \
             evaluation every half epoch of {pairs} pairs",
            if small { ", a small corpus: min-count 2 and dropout 0.3" } else { "" }
        ),
    })
}
