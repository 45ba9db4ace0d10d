//! Readers on tiny corpora written by the tests, in every format and compression, with bad records;
//! and one check over `../shared/data` (skipped when absent).

use std::io::Write;
use std::path::{Path, PathBuf};

use abridge_text::corpus::{Corpus, Fields, Format, ReadError};

fn gz(path: &Path, bytes: &[u8]) {
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    e.write_all(bytes).unwrap();
    e.finish().unwrap();
}

fn write_all_formats(dir: &Path) -> Vec<PathBuf> {
    let jsonl = "{\"text\": \"Doc one.\", \"summary\": \"Sum one.\"}\n\n{\"text\": \"Doc two.\", \"summary\": \"Sum two.\"}\n";
    let csv = "id,summary,text\n1,Sum one.,Doc one.\n2,\"Sum two.\",\"Doc two.\"\n";
    let tsv = "text\tsummary\nDoc one.\tSum one.\nDoc two.\tSum two.\n";
    // The same files with a UTF-8 byte order mark, as Windows editors write them.
    let (bom_jsonl, bom_csv) = (format!("\u{feff}{jsonl}"), format!("\u{feff}{csv}"));
    let mut out = Vec::new();
    for (name, content) in [
        ("c.jsonl", jsonl),
        ("c.csv", csv),
        ("c.tsv", tsv),
        ("bom.jsonl", bom_jsonl.as_str()),
        ("bom.csv", bom_csv.as_str()),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        out.push(p.clone());
        let pz = dir.join(format!("{name}.zst"));
        std::fs::write(&pz, zstd::encode_all(content.as_bytes(), 3).unwrap()).unwrap();
        out.push(pz);
        let pg = dir.join(format!("{name}.gz"));
        gz(&pg, content.as_bytes());
        out.push(pg);
    }
    std::fs::write(dir.join("train.source"), "Doc one.\nDoc two.\n").unwrap();
    std::fs::write(dir.join("train.target"), "Sum one.\nSum two.\n").unwrap();
    out.push(dir.join("train.source"));
    out
}

#[test]
fn every_format_and_compression_reads_the_same_pairs() {
    let dir = tempfile::tempdir().unwrap();
    for p in write_all_formats(dir.path()) {
        let c = Corpus::guess(&p, Fields::default()).unwrap();
        let (ex, stats) = c.read_all(true).unwrap();
        let got: Vec<(&str, &str)> = ex
            .iter()
            .map(|e| (e.text.as_str(), e.summary.as_str()))
            .collect();
        assert_eq!(
            got,
            [("Doc one.", "Sum one."), ("Doc two.", "Sum two.")],
            "{}",
            p.display()
        );
        assert_eq!((stats.examples, stats.bad), (2, 0));
    }
}

#[test]
fn custom_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.jsonl");
    std::fs::write(&p, "{\"article\": \"A\", \"highlights\": \"H\"}\n").unwrap();
    let c = Corpus::guess(
        &p,
        Fields {
            text: "article".into(),
            summary: "highlights".into(),
        },
    )
    .unwrap();
    assert_eq!(c.read_all(true).unwrap().0[0].summary, "H");
}

#[test]
fn bad_records_are_counted_or_stop_strict_mode_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    let mut content = b"{\"text\": \"ok\", \"summary\": \"ok\"}\n{broken\n{\"text\": \"no summary\"}\n{\"text\": \"\", \"summary\": \"s\"}\n".to_vec();
    content.extend_from_slice(b"{\"text\": \"\xff\xfe\", \"summary\": \"s\"}\n{\"text\": 5, \"summary\": \"s\"}\n{\"text\": \"fine\", \"summary\": \"too\"}\n");
    std::fs::write(&p, content).unwrap();
    let c = Corpus::guess(&p, Fields::default()).unwrap();
    let (ex, stats) = c.read_all(false).unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[1].line, 7);
    assert_eq!(stats.bad, 5);
    let reasons: Vec<String> = stats.first_bad.iter().map(|b| b.to_string()).collect();
    let name = p.display().to_string();
    assert!(
        reasons[0].starts_with(&format!("{name}:2: invalid JSON")),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], format!("{name}:3: missing field `summary`"));
    assert_eq!(reasons[2], format!("{name}:4: empty text"));
    assert_eq!(reasons[3], format!("{name}:5: invalid UTF-8"));
    assert_eq!(
        reasons[4],
        format!("{name}:6: field `text` is not a string")
    );
    match c.read_all(true) {
        Err(ReadError::Bad(b)) => assert_eq!(b.line, 2),
        other => panic!("strict mode should stop at line 2: {other:?}"),
    }
}

#[test]
fn structural_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.csv");
    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    let e = Corpus::guess(&p, Fields::default())
        .unwrap()
        .read_all(false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column `text`"), "{e}");
    std::fs::write(dir.path().join("t.source"), "a\nb\nc\n").unwrap();
    std::fs::write(dir.path().join("t.target"), "a\n").unwrap();
    let e = Corpus::guess(dir.path().join("t.source"), Fields::default())
        .unwrap()
        .read_all(false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.target: ends at line 1"), "{e}");
    let e = Corpus::guess(dir.path().join("x.parquet"), Fields::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot tell the format"), "{e}");
    let e = Corpus::new(
        dir.path().join("missing.jsonl"),
        Format::JsonLines(Fields::default()),
    )
    .read_all(false)
    .unwrap_err()
    .to_string();
    assert!(e.contains("missing.jsonl"), "{e}");
}

#[test]
fn real_cnndm_dev_reads_cleanly() {
    let Some(dir) =
        abridge_testkit::shared_or_skip("data/cnndm/dev.jsonl.zst", "real_cnndm_dev_reads_cleanly")
    else {
        return;
    };
    let c = Corpus::guess(&dir, Fields::default()).unwrap();
    let mut n = 0;
    let stats = c
        .for_each_chunk(false, 1000, |chunk| {
            n += chunk.len();
            assert!(chunk
                .iter()
                .all(|e| !e.text.is_empty() && e.summary.contains(' ')));
        })
        .unwrap();
    assert_eq!((stats.examples, n), (5000, 5000));
}

#[test]
fn reading_stops_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("many.jsonl");
    let line = "{\"text\": \"t\", \"summary\": \"s\"}\n";
    std::fs::write(&p, line.repeat(10_000)).unwrap();
    let c = Corpus::guess(&p, Fields::default()).unwrap();
    let mut calls = 0;
    let stats = c
        .for_each_chunk_while(false, 100, |_| {
            calls += 1;
            calls < 3
        })
        .unwrap();
    assert_eq!((calls, stats.examples), (3, 300));
}

#[test]
fn json_records_keep_their_id_and_further_references() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.jsonl");
    std::fs::write(
        &p,
        concat!(
            r#"{"id": "x-1", "text": "Doc.", "summary": "Sum.", "references": ["Sum.", "Other.", " "]}"#,
            "\n",
            r#"{"id": 42, "text": "Doc.", "summary": "Sum."}"#,
            "\n",
            r#"{"text": "Doc.", "summary": "Sum.", "references": "Other."}"#,
            "\n",
            r#"{"text": "Doc.", "summary": "Sum.", "references": [3]}"#,
            "\n",
        ),
    )
    .unwrap();
    let c = Corpus::new(&p, Format::JsonLines(Fields::default()));
    let (ex, stats) = c.read_all(false).unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!((ex[0].name(), ex[1].name()), ("x-1".into(), "42".into()));
    assert_eq!(ex[0].all_references(), vec!["Sum.", "Other."]);
    assert_eq!(ex[1].all_references(), vec!["Sum."]);
    assert_eq!(stats.bad, 2);
    let reasons: Vec<String> = stats.first_bad.iter().map(|b| b.to_string()).collect();
    assert!(
        reasons[0].ends_with("m.jsonl:3: field `references` is not a list"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].ends_with("m.jsonl:4: `references[0]` is not a string"),
        "{reasons:?}"
    );
}
