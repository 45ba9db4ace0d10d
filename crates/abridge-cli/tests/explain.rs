//! `abridge explain` end to end: the JSON report's numbers are consistent, and the HTML report is
//! one self-contained file (and renders in headless Chromium when one is installed).

use std::process::Command;

use serde_json::Value;

mod common;

fn explain(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(["explain", "--model", common::tiny_model().to_str().unwrap()])
        .args([
            "--threads",
            "1",
            "--beam",
            "3",
            "--min-len",
            "2",
            "--max-len",
            "6",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_json_report_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "The cat w1 sat on the mat (zzz). It was w2.").unwrap();
    let out = explain(&["--format", "json", doc.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let src = v["source"].as_array().unwrap();
    assert_eq!(src.len(), 15);
    assert_eq!(src[0], "the", "lower-cased like the training data");
    let steps = v["steps"].as_array().unwrap();
    assert!((2..=7).contains(&steps.len()), "{}", steps.len());
    let mut cov = vec![0.0; src.len()];
    for s in steps {
        let a: Vec<f64> = s["attention"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(a.len(), src.len());
        assert!(
            (a.iter().sum::<f64>() - 1.0).abs() < 1e-4,
            "attention sums to 1"
        );
        let c: Vec<f64> = s["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        for (got, want) in c.iter().zip(&cov) {
            assert!(
                (got - want).abs() < 1e-4,
                "coverage = attention of the steps before"
            );
        }
        cov.iter_mut().zip(&a).for_each(|(c, a)| *c += a);
        let pg = s["p_gen"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&pg));
        let p = s["prob"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0);
    }
    let enc = v["encoder"].as_array().unwrap();
    assert_eq!(enc.len(), 2, "one layer, both directions");
    for e in enc {
        assert_eq!(e["mean"].as_array().unwrap().len(), src.len());
        assert_eq!(e["gates"].as_array().unwrap().len(), 4);
        assert!(e["memory_norm"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.as_f64().unwrap() >= 0.0));
    }
    assert_eq!(v["decoder"]["mean"].as_array().unwrap().len(), steps.len());
    let beam = v["beam"].as_array().unwrap();
    assert!(beam.iter().any(|n| n["fate"] == "finished"));
    for n in beam {
        let want = n["log_prob"].as_f64().unwrap() / n["length_penalty"].as_f64().unwrap()
            - n["coverage_penalty"].as_f64().unwrap();
        assert!((n["score"].as_f64().unwrap() - want).abs() < 1e-9);
    }
}

#[test]
fn the_html_report_is_self_contained_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "the cat w1 sat on the <mat> & \"it\" was w2 .").unwrap();
    let html = dir.path().join("report.html");
    let out = explain(&[doc.to_str().unwrap(), "--out", html.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = std::fs::read_to_string(&html).unwrap();
    assert!(s.starts_with("<!DOCTYPE html>") && s.trim_end().ends_with("</html>"));
    for section in [
        "Attention",
        "Coverage",
        "Generate or copy",
        "Gates and memory",
        "Beam search",
    ] {
        assert!(s.contains(section), "{section} missing");
    }
    assert_eq!(s.matches("<svg").count(), s.matches("</svg>").count());
    assert!(s.matches("<svg").count() >= 8);
    for banned in ["http:", "https:", "<script", "<link", "<img", "url("] {
        assert!(
            !s.contains(banned),
            "the report must not load anything ({banned})"
        );
    }
    assert!(
        s.contains("&lt;") && !s.contains("<mat>"),
        "source text is escaped"
    );
    // Headless Chromium, where installed (CHROMIUM=path, or chromium on PATH).
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let png = dir.path().join("report.png");
    match Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,2000",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
    {
        Ok(o) if o.status.success() => {
            let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
            assert!(size > 10_000, "Chromium drew a {size}-byte screenshot");
        }
        _ => eprintln!("SKIPPED: rendering in headless Chromium ({chromium} not available)"),
    }
}

#[test]
fn the_source_is_cut_where_training_cut_it_unless_told_otherwise() {
    let model = common::train_tiny("-src6", &["--max-src-len", "6"]);
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "the cat w1 sat on the mat . it was w2 .").unwrap();
    let run = |extra: &[&str]| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_abridge"))
            .args([
                "explain",
                "--model",
                model.to_str().unwrap(),
                "--format",
                "json",
            ])
            .args([
                "--threads",
                "1",
                "--min-len",
                "1",
                "--max-len",
                "3",
                doc.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = run(&[]);
    assert_eq!(v["source"].as_array().unwrap().len(), 6);
    assert_eq!(v["truncated_from"], 12);
    let v = run(&["--max-src-len", "9"]);
    assert_eq!(v["source"].as_array().unwrap().len(), 9);
}

/// A megabyte without a space (once a 724 MB report using 2 GB) gives a report bounded by the
/// source length, the token length cap and the summary length, not by the input's size.
#[test]
fn a_huge_token_gives_a_bounded_report() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("big.txt");
    std::fs::write(&doc, "a".repeat(1_000_000)).unwrap();
    let out_file = dir.path().join("r.html");
    let out = explain(&[doc.to_str().unwrap(), "--out", out_file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(&out_file).unwrap().len();
    assert!(size < 4_000_000, "a {size}-byte report");
}
