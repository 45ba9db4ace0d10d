//! `abridge summarize --out --shard --resume`: a corpus split over two shards, one of them killed
//! with SIGKILL mid-way (and left with a torn line) and started again, yields exactly the records
//! of a one-process run: none lost, none twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::tiny_model as model;

const DOCS: usize = 60;

fn corpus(dir: &Path) -> std::path::PathBuf {
    let mut s = String::new();
    for i in 0..DOCS {
        let text = format!("the cat w{} sat on the mat . it was w{} . ", i % 5, i % 3).repeat(30);
        s += &serde_json::json!({"id": format!("doc-{i}"), "text": text}).to_string();
        s.push('\n');
    }
    let p = dir.join("in.jsonl");
    std::fs::write(&p, s).unwrap();
    p
}

fn summarize(input: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_abridge"));
    c.args(["summarize", input.to_str().unwrap(), "--model"])
        .arg(model())
        .args(["--out", out.to_str().unwrap(), "--threads", "1"])
        .args(["--beam", "8", "--min-len", "80", "--max-len", "150"])
        .args(extra);
    c
}

/// Each line of an output by `index`; no index twice, every line whole.
fn records(out: &Path) -> BTreeMap<u64, Value> {
    let text = std::fs::read_to_string(out).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let i = v["index"].as_u64().unwrap();
        assert!(
            m.insert(i, v).is_none(),
            "document {i} twice in {}",
            out.display()
        );
    }
    m
}

#[test]
fn two_shards_one_killed_and_resumed_equal_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path());
    let full = dir.path().join("full.jsonl");
    let st = summarize(&input, &full, &[]).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let one = records(&full);
    assert_eq!(one.len(), DOCS);
    assert_eq!(one[&7]["id"], "doc-7");
    assert!(one
        .values()
        .all(|v| v["summary"].as_str().is_some_and(|s| !s.is_empty())));

    // Shard 0 of 2, its index from Kubernetes' variable, its file named by `{shard}`.
    let s0 = dir.path().join("s0.jsonl");
    let st = summarize(
        &input,
        &dir.path().join("s{shard}.jsonl"),
        &["--shard", "auto/2"],
    )
    .env("JOB_COMPLETION_INDEX", "0")
    .output()
    .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    // Shard 1 of 2: killed once some of its lines are on disk, then resumed.
    let s1 = dir.path().join("s1.jsonl");
    let mut child = summarize(&input, &s1, &["--shard", "1/2"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let lines = std::fs::read_to_string(&s1).map_or(0, |t| t.lines().count());
        if lines > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no output after 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = records(&s1).len();
    assert!(
        before < DOCS / 2,
        "the kill came after the end ({before} lines)"
    );
    // A write cut short by the kill: half a line at the end.
    let mut bytes = std::fs::read(&s1).unwrap();
    bytes.extend_from_slice(br#"{"index": 99, "id": "doc-"#);
    std::fs::write(&s1, &bytes).unwrap();
    // Without --resume the existing output is refused, untouched.
    let st = summarize(&input, &s1, &["--shard", "1/2"])
        .output()
        .unwrap();
    assert!(!st.status.success());
    assert!(String::from_utf8_lossy(&st.stderr).contains("--resume"));
    assert_eq!(std::fs::read(&s1).unwrap(), bytes);
    let st = summarize(&input, &s1, &["--shard", "1/2", "--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(st.status.success(), "{err}");
    assert!(err.contains("torn last line"), "{err}");
    // Progress: the count left, the rate and the time left.
    assert!(
        err.contains(&format!(
            "summarized {} of about {}",
            DOCS / 2 - before,
            DOCS / 2 - before
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{before} earlier")), "{err}");

    let (r0, r1) = (records(&s0), records(&s1));
    assert!(r0.keys().all(|k| k % 2 == 0) && r1.keys().all(|k| k % 2 == 1));
    let mut union = r0;
    union.extend(r1);
    assert_eq!(union, one, "the shards' records differ from one process's");

    // Resuming against a changed input is an error naming the document.
    let changed = std::fs::read_to_string(&input)
        .unwrap()
        .replace("\"doc-1\"", "\"other\"");
    std::fs::write(&input, changed).unwrap();
    let st = summarize(&input, &s1, &["--shard", "1/2", "--resume"])
        .output()
        .unwrap();
    assert!(!st.status.success());
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("input changed"), "{err}");
}

/// `eval --shard` over 3 workers: the union of the parts is the one-process decodes, record for
/// record, and `rouge --pairs` over the parts prints exactly what it prints for the whole.
#[test]
fn sharded_eval_parts_score_as_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::new();
    for i in 0..20 {
        let text = format!("the cat w{} sat on the mat . it was w{} . ", i % 5, i % 3).repeat(3);
        let summary = format!("cat w{} .", i % 5);
        s += &serde_json::json!({"id": format!("p{i}"), "text": text, "summary": summary})
            .to_string();
        s.push('\n');
    }
    let data = dir.path().join("pairs.jsonl");
    std::fs::write(&data, s).unwrap();
    let eval = |out: &str, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_abridge"))
            .args(["eval", data.to_str().unwrap(), "--model"])
            .arg(model())
            .args([
                "--threads",
                "1",
                "--baseline",
                "none",
                "--max-examples",
                "17",
            ])
            .arg("--out")
            .arg(dir.path().join(out))
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    eval("all.jsonl", &[]);
    for i in 0..3 {
        let said = eval("part-{shard}.jsonl", &["--shard", &format!("{i}/3")]);
        assert!(said.contains(&format!("(shard {i}/3)")), "{said}");
    }
    let whole = records(&dir.path().join("all.jsonl"));
    assert_eq!(whole.len(), 17);
    let mut parts = BTreeMap::new();
    for i in 0..3 {
        for (k, v) in records(&dir.path().join(format!("part-{i}.jsonl"))) {
            assert_eq!(k % 3, i, "pair {k} in shard {i}");
            assert!(parts.insert(k, v).is_none(), "pair {k} in two shards");
        }
    }
    assert_eq!(parts, whole);
    let rouge = |files: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_abridge"));
        c.args(["rouge", "--stem", "--pairs"]);
        for f in files {
            c.arg(dir.path().join(f));
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let all = rouge(&["all.jsonl"]);
    assert!(all.contains("17 pairs"), "{all}");
    assert_eq!(
        rouge(&["part-2.jsonl", "part-0.jsonl", "part-1.jsonl"]),
        all
    );
}
