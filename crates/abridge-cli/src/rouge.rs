//! `abridge rouge`: reading pairs, choosing the flavour, printing scores.

use std::io::{BufWriter, Write};

use abridge_rouge::corpus::{
    read_hyp_ref, read_jsonl_indexed, score_all, score_all_155, summarize, summarize_155, Pair,
};
use abridge_rouge::{LengthLimit, MultiRef, Rouge155Options, RougeScorer, RougeType};
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::cli::{Flavor, MultiArg, OutFormat, RougeArgs};
use crate::with_threads;

pub fn run(a: &RougeArgs) -> Result<()> {
    let pairs = match (a.pairs.as_slice(), &a.hyp, &a.reference) {
        ([], Some(h), Some(r)) => read_hyp_ref(h, r)?,
        ([], _, _) => bail!("give --pairs FILE..., or --hyp and --ref"),
        (files, _, _) => {
            let mut all = Vec::new();
            for f in files {
                all.extend(read_jsonl_indexed(f)?);
            }
            // The parts of a sharded run in the order of their input (the bootstrap's resamples
            // depend on the order): by `index` when every pair has one.
            if files.len() > 1 && all.iter().all(|(i, _)| i.is_some()) {
                all.sort_by_key(|(i, _)| *i);
            }
            all.into_iter().map(|(_, p)| p).collect()
        }
    };
    if !(0.0..1.0).contains(&a.confidence) || a.confidence <= 0.0 {
        bail!("--confidence must be in (0, 1), got {}", a.confidence);
    }
    if a.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    match a.flavor {
        Flavor::RougeScore => rouge_score(a, &pairs, &mut out)?,
        Flavor::Rouge155 => rouge155(a, &pairs, &mut out)?,
    }
    out.flush().context("writing the scores")?;
    Ok(())
}

fn rouge_score(a: &RougeArgs, pairs: &[Pair], out: &mut impl Write) -> Result<()> {
    let types: Vec<RougeType> = a
        .types
        .iter()
        .map(|t| {
            RougeType::parse(t.trim()).with_context(|| {
                format!("--types: unknown ROUGE type `{t}` (use rouge1..rougeN, rougeL, rougeLsum)")
            })
        })
        .collect::<Result<_>>()?;
    let scorer = RougeScorer::new(types.clone(), a.stem);
    let per = with_threads(a.threads, || score_all(&scorer, pairs));
    match a.format {
        OutFormat::Jsonl => {
            for (p, scores) in pairs.iter().zip(&per) {
                let mut o = Map::new();
                for (t, s) in scores {
                    o.insert(t.name(), json!({"precision": s.precision, "recall": s.recall, "fmeasure": s.fmeasure}));
                }
                writeln!(out, "{}", pair_line(&p.id, o, a.nest.as_deref()))?;
            }
        }
        OutFormat::Json | OutFormat::Text => {
            let summary = summarize(&types, &per, a.seed, a.samples, a.confidence);
            let prf = |v: [f64; 3]| json!({"precision": v[0], "recall": v[1], "fmeasure": v[2]});
            let mut scores = Map::new();
            for s in summary.iter().flatten() {
                scores.insert(
                    s.rouge_type.name(),
                    json!({
                        "mean": prf([s.mean.precision, s.mean.recall, s.mean.fmeasure]),
                        "low": prf(s.interval.low), "mid": prf(s.interval.mid), "high": prf(s.interval.high),
                    }),
                );
            }
            if a.format == OutFormat::Json {
                let v = json!({
                    "flavor": "rouge-score", "version": "0.1.2", "stem": a.stem, "pairs": pairs.len(),
                    "bootstrap": {"seed": a.seed, "n_samples": a.samples, "confidence": a.confidence},
                    "scores": scores,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "ROUGE (rouge-score 0.1.2 flavour, stemming {}), {} pairs",
                    if a.stem { "on" } else { "off" },
                    pairs.len()
                )?;
                writeln!(out, "F1 mean with {:.0}% bootstrap interval (seed {}, {} resamples; mid is the median):", a.confidence * 100.0, a.seed, a.samples)?;
                for s in summary.iter().flatten() {
                    writeln!(
                        out,
                        "  {:10} F {:.4} [{:.4}, {:.4}]   P {:.4}  R {:.4}",
                        s.rouge_type.name(),
                        s.mean.fmeasure,
                        s.interval.low[2],
                        s.interval.high[2],
                        s.mean.precision,
                        s.mean.recall
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn rouge155(a: &RougeArgs, pairs: &[Pair], out: &mut impl Write) -> Result<()> {
    let opts = Rouge155Options {
        stem: a.stem,
        max_n: a.max_n,
        weight: (!a.no_w).then_some(a.weight),
        skip_bigrams: !a.no_skip_bigrams,
        alpha: a.alpha,
        stopwords: a.stopwords,
        limit: a
            .limit_words
            .map(LengthLimit::Words)
            .or(a.limit_bytes.map(LengthLimit::Bytes)),
        multi: match a.multi {
            MultiArg::A => MultiRef::Average,
            MultiArg::B => MultiRef::Best,
        },
    };
    if !(0.0..=1.0).contains(&opts.alpha) {
        bail!("--alpha must be in [0, 1], got {}", opts.alpha);
    }
    if opts.max_n == 0 {
        bail!("--max-n must be at least 1");
    }
    let per = with_threads(a.threads, || score_all_155(&opts, pairs));
    let names = opts.metric_names();
    let flags = flags_string(a, &opts);
    match a.format {
        OutFormat::Jsonl => {
            for (p, scores) in pairs.iter().zip(&per) {
                let mut o = Map::new();
                for (n, s) in scores {
                    o.insert(n.clone(), json!({"R": s.R, "P": s.P, "F": s.F}));
                }
                writeln!(out, "{}", pair_line(&p.id, o, a.nest.as_deref()))?;
            }
        }
        OutFormat::Json | OutFormat::Text => {
            let summary = summarize_155(&names, &per, a.samples, a.confidence * 100.0);
            let dropped: Vec<&String> = names
                .iter()
                .filter(|n| !summary.iter().any(|s| &s.name == *n))
                .collect();
            if a.format == OutFormat::Json {
                let mut scores = Map::new();
                for m in &summary {
                    let v = |x: abridge_rouge::bootstrap::PerlAverage| json!({"avg": x.avg, "ci_low": x.ci_low, "ci_high": x.ci_high});
                    scores.insert(
                        m.name.clone(),
                        json!({"R": v(m.r), "P": v(m.p), "F": v(m.f)}),
                    );
                }
                let v = json!({
                    "flavor": "rouge155", "version": "ROUGE-1.5.5", "flags": flags, "pairs": pairs.len(),
                    "scores": scores, "left_out": dropped,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "ROUGE (ROUGE-1.5.5 flavour, {flags}), {} pairs",
                    pairs.len()
                )?;
                for m in &summary {
                    for (k, x) in [("R", m.r), ("P", m.p), ("F", m.f)] {
                        writeln!(
                            out,
                            "  {:12} Average_{k}: {:.5} ({:.0}%-conf.int. {:.5} - {:.5})",
                            m.name,
                            x.avg,
                            a.confidence * 100.0,
                            x.ci_low,
                            x.ci_high
                        )?;
                    }
                }
                for d in dropped {
                    writeln!(
                        out,
                        "  {d}: left out, a reference has no tokens (ROUGE-1.5.5 dies here)"
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// `{"id": ..., <scores>}`, or with `nest = "a.b"`: `{"id": ..., "a": {"b": <scores>}}`.
fn pair_line(id: &str, scores: Map<String, Value>, nest: Option<&str>) -> Value {
    let mut inner = Value::Object(scores);
    for key in nest
        .into_iter()
        .flat_map(|n| n.rsplit('.'))
        .filter(|k| !k.is_empty())
    {
        let mut m = Map::new();
        m.insert(key.to_string(), inner);
        inner = Value::Object(m);
    }
    let mut o = Map::new();
    o.insert("id".into(), json!(id));
    if let Value::Object(m) = inner {
        o.extend(m);
    }
    Value::Object(o)
}

/// The equivalent ROUGE-1.5.5.pl command-line flags.
fn flags_string(a: &RougeArgs, o: &Rouge155Options) -> String {
    let mut f = format!("-c {} ", a.confidence * 100.0);
    if o.skip_bigrams {
        f += "-2 -1 -U ";
    }
    f += &format!("-r {} -n {} ", a.samples, o.max_n);
    if let Some(w) = o.weight {
        f += &format!("-w {w} ");
    }
    if o.alpha != 0.5 {
        f += &format!("-p {} ", o.alpha);
    }
    f += "-a";
    if o.stem {
        f += " -m";
    }
    if o.stopwords {
        f += " -s";
    }
    match o.limit {
        Some(LengthLimit::Words(n)) => f += &format!(" -l {n}"),
        Some(LengthLimit::Bytes(n)) => f += &format!(" -b {n}"),
        None => {}
    }
    if o.multi == MultiRef::Best {
        f += " -f B";
    }
    f
}
