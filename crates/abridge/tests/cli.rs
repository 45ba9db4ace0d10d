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
            "5",
            "--batch",
            "3",
            "--input",
            "4",
            "--hidden",
            "7",
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
        assert_eq!(v["shape"], serde_json::json!([5, 3, 4, 7]));
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
