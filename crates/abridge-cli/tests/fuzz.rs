//! `abridge bench fuzz`: the kept corpus (`fuzz/corpus/`) replays without a finding on every
//! run of the tests, followed by a few seconds of mutants; and the harness itself reports a
//! panic and a hang, saving their inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn fuzz(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(["bench", "fuzz"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_kept_corpus_replays_and_mutants_find_nothing() {
    let crashes = tempfile::tempdir().unwrap();
    let (code, v, err) = fuzz(&[
        "--seconds",
        "6",
        "--corpus",
        corpus().to_str().unwrap(),
        "--crashes",
        crashes.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}\n{v}");
    assert_eq!(v["findings"], 0, "{v}");
    for target in ["tokenizer", "corpus", "folder", "request"] {
        let t = &v["targets"][target];
        let kept = t["kept_corpus"].as_u64().unwrap();
        let dir = corpus().join(target);
        assert_eq!(
            kept as usize,
            std::fs::read_dir(&dir).unwrap().count(),
            "{target}"
        );
        assert!(kept >= 3, "{target}: only {kept} kept inputs");
        // Replayed in full, then mutants.
        assert!(
            t["executions"].as_u64().unwrap() > kept + 10,
            "{target}: {t}"
        );
    }
    assert_eq!(
        std::fs::read_dir(crashes.path()).map_or(0, |d| d.count()),
        0
    );
}

#[test]
fn a_panic_and_a_hang_are_reported_with_their_inputs() {
    let corpus = tempfile::tempdir().unwrap();
    let crashes = tempfile::tempdir().unwrap();
    let seeds = corpus.path().join("panic-check");
    std::fs::create_dir_all(&seeds).unwrap();
    std::fs::write(seeds.join("a"), b"fine").unwrap();
    std::fs::write(seeds.join("b"), b"xxPANICxx").unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        [
            "--target",
            "panic-check",
            "--corpus",
            corpus.path().to_str().unwrap(),
            "--crashes",
            crashes.path().to_str().unwrap(),
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    let a = args(&["--seconds", "1"]);
    let (code, v, err) = fuzz(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(1), "{err}");
    assert!(v["findings"].as_u64().unwrap() >= 1, "{v}");
    assert!(err.contains("panic-check found its marker"), "{err}");
    let saved: Vec<_> = std::fs::read_dir(crashes.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(saved
        .iter()
        .all(|p| std::fs::read(p).unwrap().windows(5).any(|w| w == b"PANIC")));
    std::fs::write(seeds.join("c"), b"HANG").unwrap();
    let a = args(&["--seconds", "0", "--hang-ms", "300"]);
    let (code, _, err) = fuzz(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ran past 300 ms"), "{err}");
    let hang = std::fs::read_dir(crashes.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("panic-check-hang-"))
        .expect("the hanging input saved");
    assert_eq!(std::fs::read(hang).unwrap(), b"HANG");
}
