//! Data-parallel training under `mpirun` on loopback (the binary built with `--features mpi`):
//! two ranks against one process, resume with another rank count, and a rank that stops.
//!
//! Run with `cargo test --release -p abridge-cli --features mpi --test mpi`; needs Open MPI's
//! `mpirun` on the PATH (`.ci/run` installs it). Without the feature this file is empty.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A corpus of 96 pairs of varied lengths (so that the two ranks' shares differ in padding and
/// token counts), written once per test into its own folder.
fn corpus(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mpi-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let words = [
        "the", "cat", "sat", "on", "mat", "council", "voted", "to", "open", "a", "library", "in",
        "town", "it", "was", "rain", "and", "sun", "by", "friday",
    ];
    let mut state = 7u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    let mut lines = String::new();
    for _ in 0..96 {
        let len = 6 + next(30);
        let text: Vec<&str> = (0..len).map(|_| words[next(words.len())]).collect();
        let summary: Vec<&str> = text.iter().take(2 + next(5)).copied().collect();
        lines += &format!(
            "{{\"text\": \"{} .\", \"summary\": \"{} .\"}}\n",
            text.join(" "),
            summary.join(" ")
        );
    }
    std::fs::write(dir.join("train.jsonl"), &lines).unwrap();
    // The first 16 pairs again as the development set.
    let dev: String = lines.lines().take(16).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("dev.jsonl"), dev).unwrap();
    dir
}

fn train_args(dir: &Path, out: &str, steps: u64) -> Vec<String> {
    let d = |f: &str| dir.join(f).display().to_string();
    let mut v: Vec<String> = vec![
        "train".into(),
        d("train.jsonl"),
        "--dev".into(),
        d("dev.jsonl"),
    ];
    v.extend(
        [
            "--emb",
            "16",
            "--hidden",
            "16",
            "--attn",
            "16",
            "--batch-size",
            "8",
            "--eval-every",
            "10",
            "--threads",
            "1",
            "--optimizer",
            "adam",
            "--seed",
            "3",
            "--rank-timeout-s",
            "4",
        ]
        .map(String::from),
    );
    v.extend([
        "--max-steps".into(),
        steps.to_string(),
        "--out".into(),
        d(out),
    ]);
    v
}

fn abridge(ranks: usize, args: &[String]) -> Command {
    if ranks == 1 {
        let mut c = Command::new(env!("CARGO_BIN_EXE_abridge"));
        c.args(args);
        c
    } else {
        let mut c = Command::new("mpirun");
        c.args(["--allow-run-as-root", "--oversubscribe", "-np"])
            .arg(ranks.to_string())
            .arg(env!("CARGO_BIN_EXE_abridge"))
            .args(args);
        c
    }
}

fn run(ranks: usize, args: &[String]) -> Output {
    let out = abridge(ranks, args)
        .output()
        .unwrap_or_else(|e| panic!("starting mpirun (is Open MPI installed?): {e}"));
    assert!(
        out.status.success(),
        "{ranks} rank(s) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `(step, loss, dev_loss)` of every line of a run's metrics log.
fn losses(run: &Path) -> Vec<(u64, f64, Option<f64>)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64().unwrap(),
                v["dev_loss"].as_f64(),
            )
        })
        .collect()
}

/// The stated tolerance: the two runs compute the same sums in another order (one process adds
/// every example's gradient in one product; two ranks add two halves), so after 20 Adam steps
/// the losses agree to this relative difference, not to the bit.
const REL_TOL: f64 = 1e-6;

fn assert_close(a: &[(u64, f64, Option<f64>)], b: &[(u64, f64, Option<f64>)], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: different step counts");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.0, y.0, "{what}");
        let rel = (x.1 - y.1).abs() / x.1.abs().max(1e-12);
        assert!(
            rel < REL_TOL,
            "{what}: step {}: loss {} vs {}",
            x.0,
            x.1,
            y.1
        );
        assert_eq!(x.2.is_some(), y.2.is_some(), "{what}: step {}", x.0);
        if let (Some(p), Some(q)) = (x.2, y.2) {
            assert!(
                (p - q).abs() / p.abs() < REL_TOL,
                "{what}: dev loss {p} vs {q}"
            );
        }
    }
}

#[test]
fn two_ranks_take_the_steps_of_one_process_and_resume_with_either_count() {
    let dir = corpus("parity");
    run(1, &train_args(&dir, "one", 20));
    let two = run(2, &train_args(&dir, "two", 20));
    let err = String::from_utf8_lossy(&two.stderr);
    assert!(err.contains("world size 2"), "{err}");
    // Rank 0 alone speaks: one summary line, one set of progress lines.
    let out = String::from_utf8_lossy(&two.stdout);
    assert_eq!(out.matches("20 steps").count(), 1, "{out}");
    let (one, two) = (losses(&dir.join("one")), losses(&dir.join("two")));
    assert_eq!(one.len(), 20);
    assert_close(&one, &two, "1 rank vs 2 ranks");
    let tokens = |run: &str| -> Vec<u64> {
        std::fs::read_to_string(dir.join(run).join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["tokens"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(
        tokens("one"),
        tokens("two"),
        "rank 0 counts the whole batch's tokens"
    );

    // The same two-rank run again: the same bits (the sum's order is fixed).
    run(2, &train_args(&dir, "two-again", 20));
    assert_eq!(losses(&dir.join("two-again")), two, "two-rank runs differ");

    // 10 steps on 2 ranks, resumed on 1 to step 20; and the other way round.
    for (first, then, name) in [(2, 1, "2-then-1"), (1, 2, "1-then-2")] {
        run(first, &train_args(&dir, name, 10));
        let mut more = train_args(&dir, name, 20);
        more.push("--resume".into());
        run(then, &more);
        assert_close(&one, &losses(&dir.join(name)), name);
    }
}

/// The pid of rank `rank` among `mpirun`'s children (read from their environment).
fn rank_pid(rank: usize) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let (Ok(env), Ok(cmd)) = (
            std::fs::read(e.path().join("environ")),
            std::fs::read(e.path().join("cmdline")),
        ) else {
            continue;
        };
        let is_ours = String::from_utf8_lossy(&cmd).contains("mpi-faults");
        let want = format!("OMPI_COMM_WORLD_RANK={rank}");
        if is_ours && env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_rank_that_stops_or_dies_ends_the_job_naming_it_and_the_checkpoint_survives() {
    let dir = corpus("faults");
    for (signal, rank) in [("STOP", 1usize), ("STOP", 0), ("KILL", 1)] {
        let out = format!("run-{signal}-{rank}");
        let _ = std::fs::remove_dir_all(dir.join(&out));
        let child = abridge(2, &train_args(&dir, &out, 1_000_000))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mpirun");
        // Wait for the first checkpoint (step 10), then signal the rank.
        let began = Instant::now();
        while !dir.join(&out).join("latest").exists() {
            assert!(began.elapsed() < Duration::from_secs(60), "no checkpoint");
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = rank_pid(rank).expect("rank's process");
        let sent = Instant::now();
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let res = child.wait_with_output().unwrap();
        let waited = sent.elapsed();
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            !res.status.success(),
            "SIG{signal} rank {rank}: the job went on"
        );
        // The timeout is 4 s; the launcher's clean-up adds a little.
        assert!(
            waited < Duration::from_secs(15),
            "SIG{signal} rank {rank}: {waited:?}"
        );
        if signal == "STOP" {
            // Whatever the step was doing (the roll call, a sum), the other rank names it.
            let named = format!("rank {} of 2: ", 1 - rank);
            let culprit = format!("no answer from rank(s) {rank} within 4 s");
            assert!(err.contains(&culprit), "SIG{signal} rank {rank}: {err}");
            assert!(err.contains(&named), "SIG{signal} rank {rank}: {err}");
        } else {
            assert!(err.contains("rank 1"), "{err}");
        }
        // The last checkpoint is whole: the run resumes from it on one process.
        let mut resume = train_args(&dir, &out, 0);
        let at = resume.iter().position(|a| a == "--max-steps").unwrap();
        resume[at + 1] = "12".into();
        resume.push("--resume".into());
        let again = run(1, &resume);
        let said = String::from_utf8_lossy(&again.stderr);
        assert!(said.contains("resuming"), "{said}");
    }
}
