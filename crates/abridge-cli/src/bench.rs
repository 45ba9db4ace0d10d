//! `abridge bench`: throughput figures measured the way `../shared/bench/torch_lstm_bench.py`
//! measures PyTorch, so the two can be compared side by side.
//!
//! FLOPs are analytic matmul FLOPs, `2·m·n·k`: a layer's forward is
//! `2·T·B·G·H·(I + H)` per direction and layer, backward counts as twice the forward.

use std::time::Instant;

use abridge_nn::{CellKind, Rnn, RnnCache, RnnConfig, RnnGradOut, RnnInput, RnnParams};
use abridge_tensor::{gemm, MatMut, MatRef, Par, Rng};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{BenchCommand, CellArg, Flavor, Format, Phase, RnnBenchArgs};
use crate::with_threads;

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Rnn(a) => with_threads(a.threads, || rnn(&a)),
        BenchCommand::Rouge(a) => rouge(&a),
        BenchCommand::Train(a) => with_threads(a.threads, || train_step(&a)),
        BenchCommand::Decode(a) => with_threads(a.threads, || decode(&a)),
        BenchCommand::Data { corpus, format } => crate::data::bench(&corpus, format),
        BenchCommand::Serve(a) => crate::loadtest::run(&a),
        BenchCommand::Fuzz(a) => crate::fuzz::run(&a),
        BenchCommand::Summarize(a) => with_threads(a.threads, || summarize_latency(&a)),
        BenchCommand::Gemm(a) => with_threads(a.threads, || {
            let g = gemm_gflops(a.size, a.threads);
            match a.format {
                Format::Json => outln!(
                    "{}",
                    json!({"bench": "abridge_gemm", "size": a.size, "threads": a.threads, "gflops": round(g, 1)})
                )?,
                Format::Text => outln!(
                    "f32 GEMM {0}x{0}x{0}, {1} threads: {2:.1} GFLOP/s",
                    a.size,
                    a.threads,
                    g
                )?,
            }
            Ok(())
        }),
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median GFLOP/s of an `n³` f32 GEMM (about 4 GFLOP per repetition).
pub fn gemm_gflops(n: usize, threads: usize) -> f64 {
    let mut rng = Rng::new(1);
    let a: Vec<f32> = (0..n * n).map(|_| rng.next_f64() as f32).collect();
    let b: Vec<f32> = (0..n * n).map(|_| rng.next_f64() as f32).collect();
    let mut c = vec![0.0f32; n * n];
    let flop = 2.0 * (n as f64).powi(3);
    let iters = ((4e9 / flop) as usize).max(3);
    let mut once = || {
        gemm(
            MatMut::new(&mut c, n, n),
            MatRef::new(&a, n, n),
            MatRef::new(&b, n, n),
            false,
            Par::Threads(threads),
        )
    };
    once();
    once();
    let reps: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                once();
            }
            flop * iters as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    median(reps)
}

fn rnn(a: &RnnBenchArgs) -> Result<()> {
    anyhow::ensure!(
        a.reps > 0 && a.iters > 0,
        "--reps and --iters must be at least 1"
    );
    let cell = match a.cell {
        CellArg::Lstm => CellKind::Lstm,
        CellArg::Gru => CellKind::Gru,
    };
    let cfg = RnnConfig::new(cell, a.input, a.hidden)
        .with_layers(a.layers)
        .with_bidirectional(a.bidirectional);
    let mut rng = Rng::new(0);
    let rnn = Rnn::new(RnnParams::<f32>::init_uniform(cfg, &mut rng));
    let x: Vec<f32> = (0..a.seq * a.batch * a.input)
        .map(|_| rng.normal() as f32)
        .collect();
    let gy: Vec<f32> = (0..a.seq * a.batch * cfg.output_size())
        .map(|_| rng.normal() as f32)
        .collect();
    let input = RnnInput::new(&x, a.seq, a.batch);
    let grad_out = RnnGradOut {
        d_output: Some(&gy),
        ..Default::default()
    };
    let mut cache = RnnCache::new();
    let mut grads = RnnParams::zeros(cfg);

    let g = cell.gates() as f64;
    let (t, b, h) = (a.seq as f64, a.batch as f64, a.hidden as f64);
    let fwd_flop: f64 = (0..a.layers)
        .map(|l| {
            2.0 * t * b * g * h * (cfg.layer_input_size(l) as f64 + h) * cfg.directions() as f64
        })
        .sum();

    let mut measure = |train: bool| -> Result<serde_json::Value> {
        let mut once = || -> Result<()> {
            rnn.forward(&input, &mut cache).context("forward")?;
            if train {
                rnn.backward(&mut cache, &grad_out, &mut grads)
                    .context("backward")?;
            }
            Ok(())
        };
        once()?;
        once()?;
        let mut times = Vec::with_capacity(a.reps);
        for _ in 0..a.reps {
            let start = Instant::now();
            for _ in 0..a.iters {
                once()?;
            }
            times.push(start.elapsed().as_secs_f64() / a.iters as f64);
        }
        let s = median(times.clone());
        let flop = if train { 3.0 * fwd_flop } else { fwd_flop };
        Ok(json!({
            "ms": round(s * 1e3, 2),
            "ms_all": times.iter().map(|v| round(v * 1e3, 2)).collect::<Vec<_>>(),
            "tokens_per_s": (t * b / s).round() as u64,
            "gflop": round(flop / 1e9, 3),
            "gflops": round(flop / s / 1e9, 3),
        }))
    };
    let skipped = serde_json::Value::Null;
    let fwd_bwd = if a.phase == Phase::Infer {
        skipped.clone()
    } else {
        measure(true)?
    };
    let fwd_infer = if a.phase == Phase::Train {
        skipped
    } else {
        measure(false)?
    };
    let gemm = gemm_gflops(2048, a.threads);
    let pct = 100.0 * fwd_bwd["gflops"].as_f64().unwrap_or(0.0) / gemm;
    let out = json!({
        "bench": "abridge_rnn",
        "cell": cell.name(),
        "threads": rayon::current_num_threads(),
        "shape": [a.seq, a.batch, a.input, a.hidden],
        "layers": a.layers,
        "bidirectional": a.bidirectional,
        "ms": fwd_bwd["ms"],
        "tokens_per_s": fwd_bwd["tokens_per_s"],
        "gflops": fwd_bwd["gflops"],
        "gemm_gflops": round(gemm, 1),
        "pct_of_gemm": round(pct, 1),
        "fwd_bwd": fwd_bwd,
        "fwd_infer": fwd_infer,
    });
    match a.format {
        Format::Json => outln!("{out}")?,
        Format::Text => {
            outln!(
                "{} [T={}, B={}, I={}] -> H={}, {} threads",
                cell.name(),
                a.seq,
                a.batch,
                a.input,
                a.hidden,
                out["threads"]
            )?;
            for (name, v) in [("fwd+bwd", &out["fwd_bwd"]), ("forward", &out["fwd_infer"])] {
                if v.is_null() {
                    continue;
                }
                outln!(
                    "  {name:8} {:>9} ms  {:>9} tokens/s  {:>6} GFLOP/s",
                    v["ms"],
                    v["tokens_per_s"],
                    v["gflops"]
                )?;
            }
            outln!(
                "  f32 GEMM 2048³ {:.1} GFLOP/s; fwd+bwd reaches {:.1}% of it",
                gemm,
                pct
            )?;
        }
    }
    Ok(())
}

/// Deterministic summary-like text: words drawn Zipf-like from a vocabulary whose head is the
/// SMART stopword list and whose tail is the WordNet exception forms (irregular plurals, verb
/// forms: the stemmers' hard cases), with a full stop after every 15 words and a line break after
/// every sentence (so rougeLsum sees several sentences).
fn synthetic_text(rng: &mut Rng, words: usize, vocab: &[&str]) -> String {
    let mut s = String::new();
    for i in 0..words {
        // Rank r with probability ~ 1/r over the vocabulary (inverse-CDF of a log-uniform draw).
        let r = ((vocab.len() as f64).powf(rng.next_f64()) as usize).min(vocab.len()) - 1;
        s.push_str(vocab[r]);
        s.push_str(if i % 15 == 14 { " .\n" } else { " " });
    }
    s
}

fn rouge(a: &crate::cli::RougeBenchArgs) -> Result<()> {
    use abridge_rouge::corpus::{read_jsonl, score_all, score_all_155, Pair};
    let pairs: Vec<Pair> = match &a.pairs {
        Some(p) => read_jsonl(p)?,
        None => {
            let mut vocab: Vec<&str> =
                include_str!("../../abridge-rouge/data/smart_common_words.txt")
                    .lines()
                    .collect();
            vocab.extend(
                include_str!("../../abridge-rouge/data/wordnet_exceptions.tsv")
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter_map(|l| l.split('\t').next()),
            );
            let mut rng = Rng::new(7);
            (0..a.n)
                .map(|i| Pair {
                    id: i.to_string(),
                    hyp: synthetic_text(&mut rng, a.words, &vocab),
                    refs: vec![synthetic_text(&mut rng, a.words, &vocab)],
                })
                .collect()
        }
    };
    if let Some(path) = &a.write {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for p in &pairs {
            use std::io::Write;
            writeln!(f, "{}", json!({"id": p.id, "hyp": p.hyp, "ref": p.refs[0]}))?;
        }
    }
    let scorer = abridge_rouge::RougeScorer::new(abridge_rouge::RougeType::defaults(), true);
    let opts = abridge_rouge::Rouge155Options {
        stem: true,
        ..Default::default()
    };
    let run = || {
        let t = Instant::now();
        let n = match a.flavor {
            Flavor::RougeScore => score_all(&scorer, &pairs).len(),
            Flavor::Rouge155 => score_all_155(&opts, &pairs).len(),
        };
        assert_eq!(n, pairs.len());
        t.elapsed().as_secs_f64()
    };
    // The first run starts with empty stem caches (what one `abridge rouge` call pays).
    let (cold, warm) = with_threads(a.threads, || {
        let cold = run();
        let warm: Vec<f64> = (0..a.reps).map(|_| run()).collect();
        (
            cold,
            if warm.is_empty() {
                f64::NAN
            } else {
                median(warm)
            },
        )
    });
    let name = match a.flavor {
        Flavor::RougeScore => "rouge-score rouge1,rouge2,rougeL,rougeLsum, stemming",
        Flavor::Rouge155 => "rouge155 -n 4 -w 1.2 -2 -1 -U -m",
    };
    let out = json!({
        "bench": "abridge_rouge", "flavor": name, "pairs": pairs.len(), "threads": a.threads,
        "seconds_cold": round(cold, 4), "seconds_warm": round(warm, 4),
        "pairs_per_s_cold": (pairs.len() as f64 / cold).round() as u64,
    });
    match a.format {
        Format::Json => outln!("{out}")?,
        Format::Text => outln!(
            "{name}: {} pairs in {:.3} s (first run, cold stem cache), {:.3} s warm; {} threads",
            pairs.len(),
            cold,
            warm,
            a.threads
        )?,
    }
    Ok(())
}

/// The summarizer configuration of the PyTorch anchor (attention size = hidden size).
fn anchor_config(a: &crate::cli::TrainBenchArgs) -> abridge_model::ModelConfig {
    abridge_model::ModelConfig {
        cell: match a.cell {
            CellArg::Lstm => CellKind::Lstm,
            CellArg::Gru => CellKind::Gru,
        },
        vocab: a.vocab,
        emb: a.emb,
        hidden: a.hidden,
        attn: a.hidden,
        enc_layers: 1,
        pointer: a.pointer,
        coverage: false,
        cov_weight: 1.0,
        tie_output: false,
        dropout: 0.0,
        attention: Default::default(),
        input_feeding: true,
        separate_embeddings: false,
    }
}

/// Training steps of the summarizer on random full-length data, shaped like
/// `../shared/bench/torch_lstm_bench.py`'s train phase (Adam, clip 5).
fn train_step(a: &crate::cli::TrainBenchArgs) -> Result<()> {
    use abridge_model::{clip_global_norm, Forward, Inputs, Optimizer, Params};
    let cfg = anchor_config(a);
    let mut rng = Rng::new(0);
    let mut params = Params::<f32>::init(&cfg, &mut rng);
    let (b, s, t) = (a.batch, a.src_len, a.tgt_len);
    let ids = |n: usize, rng: &mut Rng| -> Vec<u32> {
        (0..n).map(|_| 4 + rng.below(a.vocab - 4) as u32).collect()
    };
    let src = ids(s * b, &mut rng);
    let tgt = ids((t + 1) * b, &mut rng);
    let (lens, tlens) = (vec![s; b], vec![t; b]);
    let inp = Inputs {
        batch: b,
        src_len: s,
        tgt_len: t,
        src: &src,
        src_ext: &src,
        src_lengths: &lens,
        dec_in: &tgt[..t * b],
        targets: &tgt[b..],
        tgt_lengths: &tlens,
    };
    let mut opt = Optimizer::adam(1e-3);
    let mut fw = Forward::new();
    let mut grads = params.zeros_like();
    let mut step = || -> Result<f64> {
        grads.fill_zero();
        let loss = params.forward_backward(&cfg, &inp, &mut fw, &mut grads)?;
        clip_global_norm(&mut grads, 5.0);
        opt.step(&mut params, &mut grads);
        Ok(loss.total)
    };
    let first = step()?;
    for _ in 1..a.warmup {
        step()?;
    }
    let mut times = Vec::new();
    let mut last = first;
    for _ in 0..a.steps {
        let start = Instant::now();
        last = step()?;
        times.push(start.elapsed().as_secs_f64());
    }
    let ms = median(times) * 1e3;
    let tokens = ((s + t) * b) as f64;
    let out = json!({
        "bench": "abridge_train", "cell": cfg.cell.name(), "threads": rayon::current_num_threads(),
        "config": {"vocab": a.vocab, "emb": a.emb, "hidden": a.hidden, "batch": b, "src_len": s, "tgt_len": t, "pointer": a.pointer},
        "ms_per_step": round(ms, 1), "tokens_per_s": (tokens / ms * 1e3).round() as u64,
        "loss_first": round(first, 4), "loss_last": round(last, 4), "peak_rss_mb": crate::data::peak_rss_mb().map(|m| m.round()),
    });
    match a.format {
        Format::Json => outln!("{out}")?,
        Format::Text => outln!(
            "{} training step: {:.1} ms, {} tokens/s, peak RSS {} MB (loss {:.3} -> {:.3})",
            cfg.cell.name(),
            ms,
            out["tokens_per_s"],
            out["peak_rss_mb"],
            first,
            last
        )?,
    }
    Ok(())
}

/// Wall time of `abridge summarize` on one document, the model already loaded.
fn summarize_latency(a: &crate::cli::SummarizeBenchArgs) -> Result<()> {
    let m = crate::summarize::load_default_or(a.model.as_deref())?;
    let name = m.name().to_string();
    let text = std::fs::read_to_string(&a.input)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.input.display()))?;
    let beam = m.decoding(&a.decode.options())?;
    let src = beam.max_src_len;
    let tokens = m.tokenize(&text).len();
    let first = m.summarize_with(&text, &beam)?;
    let mut v = Vec::new();
    for _ in 0..a.reps.max(1) {
        let start = Instant::now();
        m.summarize_with(&text, &beam)?;
        v.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let ms = median(v);
    let out = json!({
        "bench": "abridge_summarize", "model": name, "threads": rayon::current_num_threads(),
        "source_tokens": tokens, "source_tokens_read": tokens.min(src), "summary_tokens": first.tokens.len(),
        "beam": beam.beam.beam, "ms": round(ms, 1),
    });
    match a.format {
        Format::Json => outln!("{out}")?,
        Format::Text => outln!(
            "{name}: {tokens}-token document ({} read), beam {}, {} summary tokens: {:.1} ms (median of {}, {} threads)",
            tokens.min(src), beam.beam.beam, first.tokens.len(), ms, a.reps.max(1), rayon::current_num_threads()
        )?,
    }
    Ok(())
}

/// Decoding speed with the anchor's shapes: `tgt_len` tokens from random weights (so `</s>` is
/// forbidden until then, as the anchor runs a fixed number of steps).
fn decode(a: &crate::cli::TrainBenchArgs) -> Result<()> {
    use abridge_decode::{beam_search, BeamConfig};
    use abridge_model::{Params, Sources, Stepper};
    let cfg = anchor_config(a);
    let mut rng = Rng::new(0);
    let params = Params::<f32>::init(&cfg, &mut rng);
    let (b, s, t) = (a.batch, a.src_len, a.tgt_len);
    let src: Vec<u32> = (0..s * b)
        .map(|_| 4 + rng.below(a.vocab - 4) as u32)
        .collect();
    let lens = vec![s; b];
    let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        f()?;
        let mut v = Vec::new();
        for _ in 0..a.steps.max(1) {
            let start = Instant::now();
            f()?;
            v.push(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(v))
    };
    // One set of buffers across calls, as PyTorch's caching allocator keeps its blocks.
    let mut fw = abridge_model::Forward::new();
    let greedy_b = time(&mut || {
        params.greedy_with(
            &cfg,
            &Sources {
                batch: b,
                src_len: s,
                src: &src,
                src_ext: &src,
                src_lengths: &lens,
            },
            t,
            &mut fw,
        )?;
        Ok(())
    })?;
    let one: Vec<u32> = (0..s).map(|i| src[i * b]).collect();
    let greedy_1 = time(&mut || {
        params.greedy_with(
            &cfg,
            &Sources {
                batch: 1,
                src_len: s,
                src: &one,
                src_ext: &one,
                src_lengths: &[s],
            },
            t,
            &mut fw,
        )?;
        Ok(())
    })?;
    let beam_cfg = BeamConfig {
        beam: 4,
        min_len: t,
        max_len: t,
        ..Default::default()
    };
    let beam4 = time(&mut || {
        let mut m = Stepper::new(&params, &cfg, &one, &one)?;
        beam_search(&mut m, &beam_cfg);
        Ok(())
    })?;
    // What `abridge summarize` runs: the vocabulary projection in f16.
    let half = params.half_vocab();
    let beam4_f16 = time(&mut || {
        let mut m = Stepper::new(&params, &cfg, &one, &one)?.with_half_vocab(&half);
        beam_search(&mut m, &beam_cfg);
        Ok(())
    })?;
    let out = json!({
        "bench": "abridge_decode", "cell": cfg.cell.name(), "threads": rayon::current_num_threads(), "tokens": t,
        "greedy_batch_ms": round(greedy_b, 1), "batch": b, "greedy_1_ms": round(greedy_1, 1), "beam4_1_ms": round(beam4, 1), "beam4_1_f16_ms": round(beam4_f16, 1),
    });
    match a.format {
        Format::Json => outln!("{out}")?,
        Format::Text => outln!("{} decoding {t} tokens: greedy batch {b} {:.1} ms, greedy batch 1 {:.1} ms, beam 4 batch 1 {:.1} ms ({:.1} ms with the f16 vocabulary projection)", cfg.cell.name(), greedy_b, greedy_1, beam4, beam4_f16)?,
    }
    Ok(())
}
