//! The content selector end to end, as a user runs it: train a tiny summarizer, export it, train
//! its selector, decode with and without it, the selector as an extractive baseline, and the
//! errors for a selector that does not belong to the model.

use std::process::Command;

fn abridge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(args)
        .output()
        .expect("running abridge")
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: std::process::Output) -> Vec<serde_json::Value> {
    ok(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn selector_trains_decodes_and_refuses_a_foreign_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = String::new();
    for i in 0..40 {
        corpus += &format!(
            "{{\"text\": \"alpha beta w{} gamma delta w{} . epsilon zeta .\", \"summary\": \"w{} gamma .\"}}\n",
            i % 5,
            i % 3,
            i % 5
        );
    }
    let data = dir.path().join("d.jsonl");
    std::fs::write(&data, corpus).unwrap();
    let data = data.to_str().unwrap();
    let run = dir.path().join("run");
    let model = dir.path().join("model");
    let (run, model) = (run.to_str().unwrap(), model.to_str().unwrap());
    ok(abridge(&[
        "train",
        data,
        "--dev",
        data,
        "--out",
        run,
        "--emb",
        "8",
        "--hidden",
        "8",
        "--attn",
        "8",
        "--batch-size",
        "4",
        "--max-steps",
        "4",
        "--eval-every",
        "4",
        "--threads",
        "2",
    ]));
    ok(abridge(&["export", run, model]));
    let no_sel = abridge(&["summarize", "--model", model, "--selector", "on", data]);
    assert!(!no_sel.status.success());
    assert!(
        String::from_utf8_lossy(&no_sel.stderr).contains("has no content selector"),
        "{}",
        String::from_utf8_lossy(&no_sel.stderr)
    );
    let log = abridge(&[
        "selector",
        "train",
        data,
        "--model",
        model,
        "--dev",
        data,
        "--hidden",
        "8",
        "--batch-size",
        "8",
        "--max-steps",
        "60",
        "--eval-every",
        "20",
        "--lr",
        "0.02",
        "--threads",
        "2",
        "--input",
        "words",
        "--always-copy-top",
        "0",
    ]);
    let err = String::from_utf8_lossy(&log.stderr).to_string();
    assert!(log.status.success(), "{err}");
    assert!(err.contains("eval step 60"), "{err}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("model/selector.json")).unwrap())
            .unwrap();
    assert_eq!(file["format"], "abridge-selector");
    assert!(
        file["training"]["dev_auc"].as_f64().unwrap() > 0.9,
        "{file}"
    );
    // On the summarizer's encoder states (the default input) it trains and loads too.
    let enc_dir = dir.path().join("enc");
    let enc_out = enc_dir.to_str().unwrap();
    ok(abridge(&[
        "selector",
        "train",
        data,
        "--model",
        model,
        "--dev",
        data,
        "--hidden",
        "8",
        "--max-steps",
        "10",
        "--eval-every",
        "10",
        "--threads",
        "2",
        "--out",
        enc_out,
    ]));
    let enc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(enc_dir.join("selector.json")).unwrap()).unwrap();
    assert_eq!(enc["features"], 16, "2H of the summarizer: {enc}");

    // eval: with the selector by default, without it on request; faithfulness beside ROUGE.
    let on = &json(abridge(&[
        "eval", "--model", model, data, "--format", "json",
    ]))[0];
    let t = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!((t(&on["selector"]["threshold"]) - t(&file["threshold"])).abs() < 1e-6);
    assert!(
        on["faithfulness"]["model"]["novel_1gram"].is_number(),
        "{on}"
    );
    assert!(
        on["faithfulness"]["model"]["mean_p_gen"].is_number(),
        "{on}"
    );
    let off = &json(abridge(&[
        "eval",
        "--model",
        model,
        data,
        "--format",
        "json",
        "--selector",
        "off",
    ]))[0];
    assert!(off["selector"].is_null());
    let bad = abridge(&["eval", "--model", model, data, "--select-threshold", "1.5"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("`select_threshold`: must be a number in [0, 1), got 1.5"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // explain shows each source token's selection probability and what could be copied.
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "alpha beta w1 gamma delta w2 . epsilon zeta .").unwrap();
    let ex: serde_json::Value = serde_json::from_str(&ok(abridge(&[
        "explain",
        "--model",
        model,
        doc.to_str().unwrap(),
        "--format",
        "json",
    ])))
    .unwrap();
    let sel = &ex["selection"];
    assert_eq!(sel["probs"].as_array().unwrap().len(), 10, "{ex}");
    assert_eq!(sel["copyable"].as_array().unwrap().len(), 10);
    assert!(ex["faithfulness"]["novel_1gram"].is_number(), "{ex}");

    // The selector as an extractive summarizer, beside Lead-3.
    let rows = json(abridge(&[
        "baseline", "select", data, "--model", model, "--k", "1", "--format", "json",
    ]));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["baseline"], "select-1");
    assert_eq!(rows[1]["baseline"], "lead-1");

    // A selector trained for another vocabulary is refused by name.
    let mut f = file.clone();
    f["vocab_fingerprint"] = "fnv1a64:0000000000000000".into();
    std::fs::write(
        dir.path().join("model/selector.json"),
        serde_json::to_vec(&f).unwrap(),
    )
    .unwrap();
    let refused = abridge(&["summarize", "--model", model, data]);
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(
        msg.contains("selector.json") && msg.contains("another vocabulary"),
        "{msg}"
    );
    // Truncated weights: an error naming the file, not a panic.
    std::fs::write(
        dir.path().join("model/selector.json"),
        serde_json::to_vec(&file).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("model/selector.safetensors"), b"12345678").unwrap();
    let broken = abridge(&["summarize", "--model", model, data]);
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("selector.safetensors"));
}
