//! The real binary, run as a user would.

use std::process::Command;

fn abridge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(args)
        .output()
        .expect("running abridge")
}

#[test]
fn bench_rnn_prints_one_json_line_with_the_promised_fields() {
    for cell in ["lstm", "gru"] {
        let out = abridge(&[
            "bench",
            "rnn",
            "--cell",
            cell,
            "--threads",
            "2",
            "--seq",
            "20",
            "--batch",
            "3",
            "--input",
            "4",
            "--hidden",
            "32",
            "--reps",
            "1",
            "--iters",
            "1",
            "--format",
            "json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["cell"], cell);
        assert_eq!(v["shape"], serde_json::json!([20, 3, 4, 32]));
        for key in ["ms", "tokens_per_s", "gflops", "gemm_gflops"] {
            assert!(
                v[key].as_f64().is_some_and(|x| x > 0.0),
                "{key} missing or not positive in {text}"
            );
        }
    }
}

#[test]
fn bad_arguments_exit_non_zero_with_a_message() {
    let out = abridge(&["bench", "rnn", "--cell", "rnn"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'rnn'"));
    let out = abridge(&[
        "bench", "rnn", "--reps", "0", "--seq", "2", "--batch", "1", "--input", "2", "--hidden",
        "2",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reps and --iters must be at least 1"));
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

fn stdout_json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn rouge_scores_pairs_in_both_flavours() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write(
        dir.path(),
        "pairs.jsonl",
        br#"{"id": "a", "hyp": "the cat sat on the mat", "ref": "the cat sat on the mat"}
{"id": "b", "hyp": "the cat on the mat", "refs": ["a dog", "the cat sat on the mat"]}

{"hyp": "", "ref": "nothing matches"}
"#,
    );
    let lines = stdout_json_lines(&abridge(&[
        "rouge", "--pairs", &pairs, "--format", "jsonl", "--stem",
    ]));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["rouge1"]["fmeasure"], 1.0);
    assert_eq!(lines[1]["rouge1"]["precision"], 1.0);
    assert_eq!(lines[2]["id"], "4", "a missing id is the line number");
    assert_eq!(lines[2]["rougeLsum"]["fmeasure"], 0.0);

    let lines = stdout_json_lines(&abridge(&[
        "rouge",
        "--pairs",
        &pairs,
        "--flavor",
        "rouge155",
        "--format",
        "jsonl",
        "--nest",
        "rouge155.stem",
        "--stem",
    ]));
    assert_eq!(lines[0]["rouge155"]["stem"]["ROUGE-SU*"]["F"], 1.0);
    assert!(lines[1]["rouge155"]["stem"]["ROUGE-W-1.2"].is_object());

    let summary = stdout_json_lines(&abridge(&["rouge", "--pairs", &pairs, "--format", "json"]));
    let s = &summary[0];
    assert_eq!(s["pairs"], 3);
    let mean = s["scores"]["rouge1"]["mean"]["fmeasure"].as_f64().unwrap();
    let (lo, hi) = (
        s["scores"]["rouge1"]["low"]["fmeasure"].as_f64().unwrap(),
        s["scores"]["rouge1"]["high"]["fmeasure"].as_f64().unwrap(),
    );
    assert!(lo <= mean && mean <= hi, "{lo} {mean} {hi}");

    let text = abridge(&["rouge", "--pairs", &pairs, "--flavor", "rouge155"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("ROUGE-1      Average_R:") && text.contains("95%-conf.int."),
        "{text}"
    );
}

#[test]
fn rouge_reads_line_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let hyp = write(dir.path(), "hyp.txt", b"the cat sat\na dog barked\n");
    let reference = write(dir.path(), "ref.txt", b"the cat sat\nno dog here\n");
    let lines = stdout_json_lines(&abridge(&[
        "rouge", "--hyp", &hyp, "--ref", &reference, "--format", "jsonl",
    ]));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["rouge2"]["fmeasure"], 1.0);

    let (hd, rd) = (dir.path().join("h"), dir.path().join("r"));
    std::fs::create_dir_all(&hd).unwrap();
    std::fs::create_dir_all(&rd).unwrap();
    write(&hd, "d1.txt", b"first sentence .\nsecond one .\n");
    write(&rd, "d1.txt", b"first sentence .\nsecond one .\n");
    let lines = stdout_json_lines(&abridge(&[
        "rouge",
        "--hyp",
        hd.to_str().unwrap(),
        "--ref",
        rd.to_str().unwrap(),
        "--format",
        "jsonl",
    ]));
    assert_eq!(lines[0]["id"], "d1.txt");
    assert_eq!(lines[0]["rougeLsum"]["fmeasure"], 1.0);
}

#[test]
fn rouge_bad_input_names_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "bad_json.jsonl",
            b"{\"hyp\": \"a\", \"ref\": \"b\"}\n{not json\n",
            ":2: invalid JSON",
        ),
        (
            "missing.jsonl",
            b"{\"hyp\": \"a\"}\n",
            ":1: missing field `ref` (or `refs`)",
        ),
        (
            "type.jsonl",
            b"{\"hyp\": 3, \"ref\": \"b\"}\n",
            ":1: field `hyp` must be a string",
        ),
        (
            "utf8.jsonl",
            b"{\"hyp\": \"a\", \"ref\": \"b\"}\n{\"hyp\": \"\xff\", \"ref\": \"b\"}\n",
            ":2: invalid UTF-8",
        ),
        (
            "empty_refs.jsonl",
            b"{\"hyp\": \"a\", \"refs\": []}\n",
            ":1: `refs` is empty",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = write(dir.path(), name, bytes);
        let out = abridge(&["rouge", "--pairs", &path]);
        assert!(!out.status.success(), "{name} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{name}{want}")), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let hyp = write(dir.path(), "h.txt", b"a\nb\n");
    let reference = write(dir.path(), "r.txt", b"a\n");
    let out = abridge(&["rouge", "--hyp", &hyp, "--ref", &reference]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has 2 summaries but"));
    let out = abridge(&["rouge", "--pairs", "/nonexistent/x.jsonl"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.jsonl"));
    let good = write(
        dir.path(),
        "good.jsonl",
        b"{\"hyp\": \"a b\", \"ref\": \"a c\"}\n",
    );
    let out = abridge(&["rouge", "--pairs", &good, "--types", "rouge1,bleu"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown ROUGE type `bleu`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn data_stats_vocab_build_and_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(
        dir.path(),
        "c.jsonl",
        b"{\"text\": \"The cat sat on the mat. It's fine.\", \"summary\": \"Cat sat.\"}\n{\"text\": \"\", \"summary\": \"x\"}\n{\"text\": \"A dog.\", \"summary\": \"Dog.\"}\n",
    );
    let out = abridge(&["data", "stats", &corpus, "--format", "json"]);
    let v = &stdout_json_lines(&out)[0];
    assert_eq!(
        (v["pairs"].as_u64(), v["bad_records"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["text_tokens"]["max"], 11);
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.jsonl:2: empty text"));
    // A suggested training command from the lengths: a small corpus gets min-count and dropout.
    let t = &v["suggested_train"];
    assert_eq!(
        (t["max_src_len"].as_u64(), t["max_tgt_len"].as_u64()),
        (Some(20), Some(5)),
        "{t}"
    );
    let cmd = t["command"].as_str().unwrap();
    assert!(
        cmd.starts_with("abridge train ") && cmd.contains("--max-src-len 20"),
        "{cmd}"
    );
    assert!(cmd.contains("--min-count 2 --dropout 0.3"), "{cmd}");
    let strict = abridge(&["data", "stats", &corpus, "--strict"]);
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("c.jsonl:2: empty text (strict mode"));

    let vocab = dir.path().join("v.json");
    let out = abridge(&[
        "vocab",
        "build",
        &corpus,
        "--lowercase",
        "--out",
        vocab.to_str().unwrap(),
        "--max-size",
        "8",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&vocab).unwrap()).unwrap();
    assert_eq!(v["format"], "abridge-vocab");
    assert_eq!(v["tokens"].as_array().unwrap().len(), 8);
    assert_eq!(
        v["tokens"][4], ".",
        "the most frequent token comes first after the specials"
    );
    // The vocabulary records how its corpus was tokenized; a run reading it otherwise is refused.
    assert_eq!(v["tokenizer"]["lowercase"], true, "{v}");
    let refused = abridge(&[
        "train",
        &corpus,
        "--vocab",
        vocab.to_str().unwrap(),
        "--out",
        dir.path().join("r").to_str().unwrap(),
        "--max-steps",
        "1",
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("v.json: the vocabulary was counted with --lowercase")
            && err.contains("this run reads the corpus without --lowercase"),
        "{err}"
    );
    let out = abridge(&[
        "vocab",
        "build",
        &corpus,
        "--out",
        vocab.to_str().unwrap(),
        "--separate",
    ]);
    assert!(out.status.success());
    assert!(
        dir.path().join("v.source.json").is_file() && dir.path().join("v.target.json").is_file()
    );

    let glove = write(
        dir.path(),
        "g.txt",
        b"king 1 0 0\nqueen 0.9 0.1 0\napple 0 0 1\n",
    );
    let nn = stdout_json_lines(&abridge(&[
        "embeddings",
        "neighbors",
        "--file",
        &glove,
        "--word",
        "king",
        "--k",
        "1",
        "--format",
        "json",
    ]));
    assert_eq!(nn[0]["neighbors"][0]["word"], "queen");
    let out = abridge(&[
        "embeddings",
        "neighbors",
        "--file",
        &glove,
        "--word",
        "zebra",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("`zebra` is not among the 3 words"));
    let cov = stdout_json_lines(&abridge(&[
        "embeddings",
        "coverage",
        "--file",
        &glove,
        "--vocab",
        vocab.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(cov[0]["dim"], 3);

    let bench = stdout_json_lines(&abridge(&["bench", "data", &corpus, "--format", "json"]));
    assert_eq!(bench[0]["pairs"], 2);
    assert!(bench[0]["mb_per_s"].as_f64().is_some());
}

#[test]
fn train_writes_checkpoints_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = String::new();
    for i in 0..24 {
        corpus += &format!(
            "{{\"text\": \"alpha beta w{} gamma delta w{} .\", \"summary\": \"w{} gamma .\"}}\n",
            i % 5,
            i % 3,
            i % 5
        );
    }
    let data = write(dir.path(), "train.jsonl", corpus.as_bytes());
    let run = dir.path().join("run");
    let base = [
        "train",
        &data,
        "--dev",
        &data,
        "--out",
        run.to_str().unwrap(),
        "--emb",
        "8",
        "--hidden",
        "8",
        "--attn",
        "8",
        "--batch-size",
        "4",
        "--eval-every",
        "2",
        "--threads",
        "2",
    ];
    let out = abridge(&[&base[..], &["--max-steps", "4"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("4 steps"));
    // Off a terminal every evaluation is a log line; the last line says why it stopped and
    // which checkpoint is best.
    let log = String::from_utf8_lossy(&out.stderr);
    for step in [2, 4] {
        assert!(
            log.contains(&format!("step {step} (epoch 1 (")) && log.contains("dev loss"),
            "{log}"
        );
    }
    assert!(stdout.contains("reached --max-steps"), "{stdout}");
    let best = std::fs::read_to_string(run.join("best")).unwrap();
    assert!(
        stdout.contains(&format!("best checkpoint {}", best.trim())),
        "{stdout}"
    );
    // The decoding defaults come from the training summaries' lengths.
    let g: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("step-00000004/generation_config.json")).unwrap(),
    )
    .unwrap();
    // Every summary here is 3 tokens: min 3, max one more.
    assert_eq!(
        (g["min_len"].as_u64(), g["max_len"].as_u64()),
        (Some(3), Some(4)),
        "{g}"
    );
    for f in [
        "manifest.json",
        "metrics.jsonl",
        "latest",
        "best",
        "step-00000004/model.safetensors",
        "step-00000004/optimizer.safetensors",
        "step-00000004/vocab.json",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let again = abridge(&[&base[..], &["--max-steps", "4"]].concat());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("pass --resume"),
        "a second run must not overwrite the first"
    );
    let resumed = abridge(&[&base[..], &["--max-steps", "6", "--resume"]].concat());
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("6 steps"));
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("step 6 (epoch 1 ("));
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        6
    );
    // Resuming with another seed or dropout continues a different run: refused by name, unless
    // allowed, and then recorded.
    let resume_with = |extra: &[&str]| {
        let fixed = ["--max-steps", "8", "--resume", "--seed", "9"];
        abridge(&[&base[..], &fixed[..], extra].concat())
    };
    let other = resume_with(&["--dropout", "0.1"]);
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success());
    assert!(
        err.contains("changed") && err.contains("seed (was 1, now 9)") && err.contains("dropout"),
        "{err}"
    );
    let allowed = resume_with(&["--allow-changed-run"]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    let resumes = m["resumes"].as_array().unwrap();
    assert_eq!(resumes.len(), 2, "{m}");
    assert!(resumes[0]["changed"].as_object().unwrap().is_empty());
    assert_eq!(resumes[1]["changed"]["seed"]["now"], 9, "{m}");
    assert_eq!(m["seed"], 1, "the record of how the run began is kept");
}

#[test]
fn lead_baseline_scores_the_first_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "d.jsonl",
        b"{\"text\": \"The cat sat. It was happy. Dogs barked. Nobody came.\", \"summary\": \"The cat sat.\\nIt was happy.\\nDogs barked.\"}\n",
    );
    let out = abridge(&["baseline", "lead", &data, "--format", "json"]);
    let v = &stdout_json_lines(&out)[0];
    assert_eq!(v["scores"]["rouge1"]["f"], 1.0, "{v}");
    let out = abridge(&["baseline", "lead", &data, "--k", "1", "--format", "json"]);
    assert!(
        stdout_json_lines(&out)[0]["scores"]["rouge1"]["f"]
            .as_f64()
            .unwrap()
            < 1.0
    );
}

#[test]
fn bench_train_and_decode_report_numbers() {
    let tiny = [
        "--src-len",
        "12",
        "--vocab",
        "50",
        "--hidden",
        "8",
        "--emb",
        "4",
        "--batch",
        "2",
        "--tgt-len",
        "3",
        "--steps",
        "1",
        "--format",
        "json",
    ];
    let t = stdout_json_lines(&abridge(
        &[&["bench", "train", "--warmup", "1"][..], &tiny[..]].concat(),
    ));
    assert!(t[0]["ms_per_step"].as_f64().is_some() && t[0]["tokens_per_s"].as_u64().unwrap() > 0);
    let d = stdout_json_lines(&abridge(&[&["bench", "decode"][..], &tiny[..]].concat()));
    for k in ["greedy_batch_ms", "greedy_1_ms", "beam4_1_ms"] {
        assert!(d[0][k].as_f64().is_some(), "{k}");
    }
}

/// Output errors are reported, never panics: a full disk (`/dev/full`) is an error naming the
/// problem (exit 1, not a panic's 101); a reader that closes the pipe early (`| head`) is success.
#[test]
fn output_errors_are_reported_and_a_closed_pipe_is_success() {
    use std::io::Read;
    use std::process::Stdio;
    let article = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/article.txt");
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = String::new();
    for i in 0..200 {
        corpus += &format!(
            "{{\"text\": \"one two w{i} . three four .\", \"summary\": \"one w{i} .\"}}\n"
        );
    }
    let data = dir.path().join("d.jsonl");
    std::fs::write(&data, corpus).unwrap();
    let data = data.to_str().unwrap();
    let mut commands: Vec<Vec<&str>> = vec![
        vec!["data", "stats", data],
        vec!["baseline", "lead", data, "--k", "1"],
        vec!["rouge", "--hyp", data, "--ref", data, "--format", "jsonl"],
    ];
    if abridge::HAS_BUNDLED_MODEL {
        commands.push(vec!["summarize", article, "--threads", "1"]);
        commands.push(vec!["explain", article, "--threads", "1"]);
    }
    for args in &commands {
        if std::path::Path::new("/dev/full").exists() {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let o = Command::new(env!("CARGO_BIN_EXE_abridge"))
                .args(args)
                .stdout(Stdio::from(full))
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains("error:") && !err.contains("panicked"),
                "{args:?}: {err}"
            );
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_abridge"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 1];
        let _ = child.stdout.take().unwrap().read(&mut first);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// An output path that is also the input is refused, and the input is left as it was.
#[test]
fn an_output_that_is_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.jsonl");
    let body = "{\"text\": \"one two . three four .\", \"summary\": \"one two .\"}\n".repeat(5);
    std::fs::write(&data, &body).unwrap();
    let d = data.to_str().unwrap();
    let mut cases = vec![vec!["vocab", "build", d, "--out", d]];
    if abridge::HAS_BUNDLED_MODEL {
        cases.push(vec!["eval", d, "--out", d, "--threads", "1"]);
        cases.push(vec!["explain", d, "--out", d, "--threads", "1"]);
    }
    for args in cases {
        let o = abridge(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains("is also an input"), "{args:?}: {err}");
        assert_eq!(std::fs::read_to_string(&data).unwrap(), body, "{args:?}");
    }
}

/// Numeric knobs out of range are refused before any work, naming the flag: no ten thousand
/// threads, no NaN learning rate, no Adagrad accumulator starting at 0.
#[test]
fn out_of_range_knobs_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"a b c .\", \"summary\": \"a .\"}\n".repeat(4),
    )
    .unwrap();
    let d = data.to_str().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    for (extra, says) in [
        (vec!["--threads", "100000"], "at most 1024"),
        (vec!["--lr", "nan"], "--lr must be"),
        (vec!["--lr=-1"], "--lr must be"),
        (vec!["--clip", "nan"], "--clip must be"),
        (vec!["--clip=-2"], "--clip must be"),
        (
            vec!["--adagrad-init", "0"],
            "accumulator must start above 0",
        ),
        (vec!["--cov-weight", "nan"], "--cov-weight must be"),
    ] {
        let o = abridge(&[&["train", d, "--out", o][..], &extra[..]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{extra:?}");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?}: work began");
    }
    let o = abridge(&["summarize", "--threads", "5000", d]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("at most 1024"));
    // A dev file with no valid pair is an error, not a silent fallback to the training loss.
    let bad_dev = dir.path().join("dev.jsonl");
    std::fs::write(&bad_dev, "{\"text\": \"\", \"summary\": \"\"}\nnot json\n").unwrap();
    let o = abridge(&[
        "train",
        d,
        "--out",
        out.to_str().unwrap(),
        "--dev",
        bad_dev.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no valid pairs"),
        "{err}"
    );
}

/// Under an MPI launcher, a build without the `mpi` feature refuses to train instead of letting
/// every rank train alone into the same run folder.
#[cfg(not(feature = "mpi"))]
#[test]
fn training_under_mpirun_without_mpi_support_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "train.jsonl",
        b"{\"text\": \"a b c .\", \"summary\": \"a .\"}\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(["train", &data, "--out"])
        .arg(dir.path().join("run"))
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .env("OMPI_COMM_WORLD_RANK", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("one of 2 MPI ranks") && err.contains("--features mpi"),
        "{err}"
    );
    assert!(!dir.path().join("run").exists(), "wrote a run folder");
}
