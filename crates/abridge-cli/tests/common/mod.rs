//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A tiny model (embeddings and states of 8) trained for 4 steps, once per test binary, in
/// Cargo's per-target scratch folder.
pub fn tiny_model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| train_tiny("", &[]))
}

/// Trains a tiny model with `extra` training flags into a folder named after the test binary and
/// `tag`; returns its run folder.
#[allow(dead_code)] // not every test binary uses every helper
pub fn train_tiny(tag: &str, extra: &[&str]) -> PathBuf {
    {
        let name = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tiny-model-{name}{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut corpus = String::new();
        for i in 0..16 {
            corpus += &format!(
                "{{\"text\": \"the cat w{} sat on the mat . it was w{} .\", \"summary\": \"cat w{} .\"}}\n",
                i % 5,
                i % 3,
                i % 5
            );
        }
        let data = dir.join("train.jsonl");
        std::fs::write(&data, corpus).unwrap();
        let run = dir.join("run");
        let out = Command::new(env!("CARGO_BIN_EXE_abridge"))
            .args([
                "train",
                data.to_str().unwrap(),
                "--out",
                run.to_str().unwrap(),
            ])
            .args([
                "--emb",
                "8",
                "--hidden",
                "8",
                "--attn",
                "8",
                "--batch-size",
                "4",
            ])
            .args(["--max-steps", "4", "--eval-every", "0", "--threads", "1"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run
    }
}
