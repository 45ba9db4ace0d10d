//! `abridge serve` end to end: the real binary on a free loopback port, every route and every
//! error path, and a randomized barrage of hostile requests after which the server must still
//! answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::tiny_model as model;

/// A running server, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args(["serve", "--model", model().to_str().unwrap()])
        .args([
            "--addr",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--max-len",
            "12",
            "--min-len",
            "2",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server { child, addr }
}

/// Sends raw bytes and returns (status, headers, body) of the response.
fn raw(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Sends a request; the response must be what the server's OpenAPI document says it answers.
fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    let (status, head, text) = raw(addr, &r);
    if path != "/openapi.json" {
        conforms(addr, method, path, status, &head, &text);
    }
    (status, head, text)
}

thread_local! {
    /// Each server's OpenAPI document, fetched once.
    static DOCS: std::cell::RefCell<std::collections::HashMap<String, Value>> = Default::default();
}

/// Checks a response against the served OpenAPI document: the route lists the status, and a
/// JSON body validates against the schema it names (an undocumented route or method answers
/// with the documented error body).
fn conforms(addr: &str, method: &str, path: &str, status: u16, head: &str, body: &str) {
    let doc = DOCS.with(|d| {
        d.borrow_mut()
            .entry(addr.to_string())
            .or_insert_with(|| {
                let (st, _, b) = request(addr, "GET", "/openapi.json", b"");
                assert_eq!(st, 200);
                serde_json::from_str(&b).unwrap()
            })
            .clone()
    });
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let schema = if op.is_object() {
        let r = &op["responses"][status.to_string()];
        assert!(
            r.is_object(),
            "{method} {path} answered {status}, a status its OpenAPI entry does not list: {body}"
        );
        r["content"]["application/json"]["schema"].clone()
    } else {
        assert!(
            status >= 400,
            "{method} {path}: {status} on an undocumented route"
        );
        serde_json::json!({"$ref": "#/components/schemas/ErrorBody"})
    };
    if schema.is_null() {
        return;
    }
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{method} {path} {status}: not JSON: {head}"
    );
    let instance: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{method} {path} {status}: not JSON ({e}): {body}"));
    let errors = violations(&doc, &schema, &instance);
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match the OpenAPI document: {errors:?}\n{body}"
    );
}

fn post(addr: &str, body: &str) -> (u16, Value) {
    let (status, _, b) = request(addr, "POST", "/v1/summarize", body.as_bytes());
    let v = serde_json::from_str(&b).unwrap_or_else(|e| panic!("not JSON ({e}): {b:?}"));
    (status, v)
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// What makes `instance` fail `schema` (a schema of the OpenAPI document `doc`).
fn violations(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = schema.as_object().unwrap().clone();
    root.insert("components".into(), doc["components"].clone());
    let validator = jsonschema::validator_for(&Value::Object(root)).unwrap();
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn health_metrics_and_openapi() {
    let s = serve(&[]);
    let (st, _, b) = request(&s.addr, "GET", "/health", b"");
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["cell"], "lstm");
    let (st, _, b) = request(&s.addr, "GET", "/openapi.json", b"");
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert!(v["paths"]["/v1/summarize"]["post"].is_object());
    // The check every response here goes through rejects what the document does not allow.
    let resp = serde_json::json!({"$ref": "#/components/schemas/SummarizeResponse"});
    let bad = serde_json::json!({"summaries": [{"summary": 3}], "model": "m", "elapsed_ms": 1.0});
    assert!(!violations(&v, &resp, &bad).is_empty());
    let req = serde_json::json!({"$ref": "#/components/schemas/SummarizeRequestBody"});
    assert!(!violations(&v, &req, &serde_json::json!({"text": "a", "beam": 17})).is_empty());
    assert!(!violations(
        &v,
        &req,
        &serde_json::json!({"text": "a", "length_penalty": "x"})
    )
    .is_empty());
    assert!(violations(
        &v,
        &req,
        &serde_json::json!({"text": "a", "beam": 16, "selector": "off"})
    )
    .is_empty());
    post(&s.addr, r#"{"text": "the cat sat on the mat ."}"#);
    post(&s.addr, r#"{"beam": 2}"#);
    // Answers from routing and body limits are counted too.
    assert_eq!(request(&s.addr, "GET", "/nowhere", b"").0, 404);
    assert_eq!(request(&s.addr, "DELETE", "/health", b"").0, 405);
    let (st, head, b) = request(&s.addr, "GET", "/metrics", b"");
    assert_eq!(st, 200);
    assert!(head.contains("text/plain"));
    for needle in [
        "abridge_http_requests_total{code=\"200\"} 1",
        "abridge_http_requests_total{code=\"400\"} 1",
        "abridge_request_duration_seconds_count 2",
        "abridge_documents_total 1",
        "abridge_http_responses_total{code=\"404\"} 1",
        "abridge_http_responses_total{code=\"405\"} 1",
        "process_resident_memory_bytes ",
    ] {
        assert!(b.contains(needle), "{needle} missing from\n{b}");
    }
}

#[test]
fn summarizes_one_text_and_several() {
    let s = serve(&[]);
    let (st, v) = post(
        &s.addr,
        r#"{"text": "the cat w1 sat on the mat . it was w2 .", "beam": 2, "max_len": 5, "min_len": 1}"#,
    );
    assert_eq!(st, 200, "{v}");
    let one = &v["summaries"][0];
    assert!(v["summary"].is_string());
    assert_eq!(v["summary"], one["summary"]);
    let n = one["tokens"].as_u64().unwrap();
    assert!((1..=5).contains(&n), "{v}");
    assert_eq!(one["truncated"], false);
    assert_eq!(one["source_tokens"], 12);
    let (st, v) = post(
        &s.addr,
        r#"{"texts": ["the cat sat .", "it was w1 on the mat ."], "length_penalty": "gnmt", "alpha": 0.6, "coverage_penalty": "summary", "beta": 0.2, "block_ngram": 2}"#,
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["summaries"].as_array().unwrap().len(), 2);
    assert!(
        v.get("summary").is_none(),
        "`texts` answers with a list only"
    );
}

/// A bad decoding option gets the same message from the HTTP server as from the CLI (both go
/// through the library's one check).
#[test]
fn the_cli_and_the_server_reject_bad_options_alike() {
    let s = serve(&[]);
    let m = model();
    for (json, flags) in [
        (r#""beam": 0"#, vec!["--beam", "0"]),
        (r#""beam": 17"#, vec!["--beam", "17"]),
        (
            r#""min_len": 9, "max_len": 5"#,
            vec!["--min-len", "9", "--max-len", "5"],
        ),
        (r#""alpha": 11"#, vec!["--alpha", "11"]),
        (r#""block_ngram": 11"#, vec!["--block-ngram", "11"]),
        (
            r#""select_threshold": 1.5"#,
            vec!["--select-threshold", "1.5"],
        ),
        (
            r#""coverage_penalty": "x""#,
            vec!["--coverage-penalty", "x"],
        ),
    ] {
        let (st, v) = post(&s.addr, &format!(r#"{{"text": "a b c", {json}}}"#));
        assert_eq!(st, 400, "{json}: {v}");
        let http = v["error"]["message"].as_str().unwrap().to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_abridge"))
            .args(["summarize", "--model", m.to_str().unwrap()])
            .args(&flags)
            .arg("-")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let cli = String::from_utf8_lossy(&out.stderr);
        // An unparsable name is clap's error around the library's message.
        let want = if flags[0] == "--coverage-penalty" {
            http.split_once(": ").unwrap().1.to_string()
        } else {
            http.clone()
        };
        assert!(
            cli.contains(&want),
            "{json}: HTTP says {http:?}, the CLI {cli:?}"
        );
    }
}

#[test]
fn every_client_error_is_json_naming_the_problem() {
    let s = serve(&["--max-docs", "2", "--max-body-bytes", "2000"]);
    for (body, status, code, needle) in [
        ("{", 400, "invalid_json", "invalid JSON"),
        ("", 400, "invalid_json", "empty"),
        ("[\"text\"]", 400, "invalid_json", "JSON object"),
        (r#"{"text": "a", "beem": 4}"#, 400, "invalid_field", "beem"),
        (
            r#"{"text": "a", "beam": 0}"#,
            400,
            "invalid_field",
            "`beam`",
        ),
        (
            r#"{"text": "a", "beam": "x"}"#,
            400,
            "invalid_field",
            "`beam`",
        ),
        (
            r#"{"text": "a", "max_len": 1000000}"#,
            400,
            "invalid_field",
            "`max_len`",
        ),
        (r#"{"text": "a", "alpha": 1e400}"#, 400, "invalid_json", ""),
        (
            r#"{"text": "a", "coverage_penalty": "x"}"#,
            400,
            "invalid_field",
            "`coverage_penalty`",
        ),
        (r#"{"text": "   "}"#, 400, "empty_document", "`text`"),
        (
            r#"{"texts": ["a b", " "]}"#,
            400,
            "empty_document",
            "`texts[1]`",
        ),
        (
            r#"{"texts": ["a", "b", "c"]}"#,
            413,
            "too_many_documents",
            "at most 2",
        ),
        (r#"{"texts": "a"}"#, 400, "invalid_field", "`texts`"),
        (r#"{}"#, 400, "missing_field", "`text`"),
    ] {
        let (st, v) = post(&s.addr, body);
        assert_eq!((st, error_code(&v)), (status, code), "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    let big = format!("{{\"text\": \"{}\"}}", "word ".repeat(1000));
    let (st, v) = post(&s.addr, &big);
    assert_eq!((st, error_code(&v)), (413, "body_too_large"), "{v}");
    let (st, _, b) = request(
        &s.addr,
        "POST",
        "/v1/summarize",
        b"{\"text\": \"\xff\xfe\"}",
    );
    assert_eq!(st, 400, "{b}");
    assert!(b.contains("invalid_utf8"), "{b}");
    let (st, _, b) = request(&s.addr, "GET", "/v1/summarize", b"");
    assert_eq!(st, 405);
    assert!(b.contains("method_not_allowed"));
    let (st, _, b) = request(&s.addr, "GET", "/v2/nothing", b"");
    assert_eq!(st, 404);
    assert!(b.contains("not_found"));
}

#[test]
fn long_documents_are_truncated_with_a_notice_or_rejected() {
    let s = serve(&["--max-src-len", "4"]);
    let (st, v) = post(&s.addr, r#"{"text": "the cat sat on the mat ."}"#);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["summaries"][0]["truncated"], true);
    assert_eq!(v["summaries"][0]["source_tokens"], 4);
    assert!(v["summaries"][0]["notice"]
        .as_str()
        .unwrap()
        .contains("7 tokens"));
    let s = serve(&["--max-src-len", "4", "--long-docs", "reject"]);
    let (st, v) = post(
        &s.addr,
        r#"{"texts": ["cat .", "the cat sat on the mat ."]}"#,
    );
    assert_eq!((st, error_code(&v)), (413, "document_too_long"), "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`texts[1]` has 7 tokens"));
}

#[test]
fn overload_gets_503_and_slow_decodes_get_504() {
    let s = serve(&["--max-queue", "1"]);
    let (st, _, b) = request(
        &s.addr,
        "POST",
        "/v1/summarize",
        br#"{"texts": ["a b", "c d"]}"#,
    );
    assert_eq!(st, 503, "{b}");
    assert!(b.contains("busy"));
    let (_, head, _) = request(
        &s.addr,
        "POST",
        "/v1/summarize",
        br#"{"texts": ["a b", "c d"]}"#,
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let s = serve(&["--timeout-ms", "1"]);
    // A long document (the minimum length is capped at a quarter of it).
    let text = "the cat sat on the mat . ".repeat(60);
    let (st, v) = post(
        &s.addr,
        &format!(r#"{{"text": "{text}", "beam": 16, "max_len": 400, "min_len": 400}}"#),
    );
    assert_eq!((st, error_code(&v)), (504, "timeout"), "{v}");
}

/// A small deterministic generator (no dependency needed for this).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next() as usize % xs.len()]
    }
}

#[test]
fn hostile_requests_never_crash_the_server() {
    let s = serve(&["--max-body-bytes", "4096"]);
    let mut rng = Lcg(7);
    let keys = [
        "text",
        "texts",
        "beam",
        "min_len",
        "max_len",
        "alpha",
        "beta",
        "length_penalty",
        "coverage_penalty",
        "block_ngram",
        "\u{0}",
        "x",
    ];
    let vals = [
        "\"the cat .\"",
        "[\"a\", \"b\"]",
        "[]",
        "-1",
        "0",
        "1",
        "3",
        "99999999999999999999",
        "1.5",
        "-0.0",
        "null",
        "true",
        "{}",
        "\"gnmt\"",
        "\"\\ud800\"",
        "\"\"",
        "[[]]",
    ];
    for i in 0..150 {
        let body: Vec<u8> = match i % 3 {
            0 => {
                let n = rng.next() % 4;
                let fields: Vec<String> = (0..n)
                    .map(|_| format!("\"{}\": {}", rng.pick(&keys), rng.pick(&vals)))
                    .collect();
                format!("{{{}}}", fields.join(", ")).into_bytes()
            }
            1 => (0..rng.next() % 64).map(|_| rng.next() as u8).collect(),
            _ => {
                let mut b = br#"{"text": "the cat sat on the mat .", "beam": 2}"#.to_vec();
                let at = rng.next() as usize % b.len();
                b[at] = rng.next() as u8;
                b
            }
        };
        let (st, _, resp) = request(&s.addr, "POST", "/v1/summarize", &body);
        assert!(
            st == 200 || (400..500).contains(&st),
            "status {st} for {:?}: {resp}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            serde_json::from_str::<Value>(&resp).is_ok(),
            "not JSON: {resp}"
        );
    }
    // Broken HTTP: garbage, a lying Content-Length, a huge header.
    raw(&s.addr, b"\x00\x01garbage\r\n\r\n");
    let mut s2 = TcpStream::connect(&s.addr).unwrap();
    s2.write_all(b"POST /v1/summarize HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"te")
        .unwrap();
    drop(s2);
    let huge = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(2_000_000)
    );
    let (st, _, _) = raw(&s.addr, huge.as_bytes());
    assert_ne!(st, 200);
    let (st, _, _) = request(&s.addr, "GET", "/health", b"");
    assert_eq!(st, 200, "the server must still answer");
}

/// A megabyte of one special character (once quadratic to tokenize: a minute of frozen server)
/// is answered well within the deadline, and `/health` answers while it is read. A megabyte
/// without a space (once a 105 MB answer) gets an answer bounded by the summary's length.
#[test]
fn long_runs_of_special_characters_do_not_freeze_the_server() {
    let s = serve(&["--timeout-ms", "20000"]);
    for c in ['-', '\'', '`', '.', 'a'] {
        let body = format!(
            r#"{{"text": "{}", "beam": 1, "max_len": 5}}"#,
            c.to_string().repeat(1_000_000)
        );
        let addr = s.addr.clone();
        let big =
            std::thread::spawn(move || request(&addr, "POST", "/v1/summarize", body.as_bytes()));
        let (st, _, _) = request(&s.addr, "GET", "/health", b"");
        assert_eq!(st, 200);
        let (st, _, resp) = big.join().unwrap();
        assert_eq!(st, 200, "{c:?}: {}", &resp[..resp.len().min(500)]);
        assert!(resp.len() < 16_000, "{c:?}: a {}-byte answer", resp.len());
    }
}

#[test]
fn the_load_test_reports_throughput_latency_and_memory() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "the cat w1 sat on the mat . it was w2 .").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_abridge"))
        .args([
            "bench",
            "serve",
            "--addr",
            &s.addr,
            "--text",
            doc.to_str().unwrap(),
        ])
        .args([
            "--concurrency",
            "1,4",
            "--duration",
            "0.5",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (l, c) in lines.iter().zip([1, 4]) {
        assert_eq!(l["concurrency"], c);
        assert!(l["requests"].as_u64().unwrap() > 0, "{l}");
        assert_eq!(l["non_200"], 0, "{l}");
        assert_eq!(l["io_errors"], 0, "{l}");
        assert!(l["p99_ms"].as_f64().unwrap() >= l["p50_ms"].as_f64().unwrap());
        assert!(l["server_rss_mb_peak"].as_f64().unwrap() > 1.0, "{l}");
    }
}

#[test]
fn a_slow_body_gets_408_and_frees_the_connection() {
    let s = serve(&["--read-timeout-ms", "300"]);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = std::time::Instant::now();
    c.write_all(
        b"POST /v1/summarize HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"text\": \"the",
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    let resp = String::from_utf8_lossy(&buf[..n]);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(resp.contains("read_timeout"), "{resp}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let (st, _, _) = request(&s.addr, "GET", "/health", b"");
    assert_eq!(st, 200);
}

/// A client that sends half a request and then nothing cannot keep the server from shutting
/// down: after SIGTERM it exits within `--shutdown-timeout-ms` (plus slack).
#[cfg(unix)]
#[test]
fn a_stalled_client_does_not_block_shutdown() {
    let mut s = serve(&["--shutdown-timeout-ms", "300"]);
    let mut stalled = TcpStream::connect(&s.addr).unwrap();
    stalled
        .write_all(b"POST /v1/summarize HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let t0 = std::time::Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "still running 20 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(stalled);
}

/// A client that sends part of its headers, or opens a connection and sends nothing, is cut off
/// after `--header-timeout-ms`; the server goes on answering others.
#[test]
fn a_client_that_stalls_in_its_headers_is_cut_off() {
    let s = serve(&["--header-timeout-ms", "300"]);
    for partial in [
        &b"POST /v1/summarize HTTP/1.1\r\nHost: x\r\n"[..],
        b"GE",
        b"",
    ] {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let start = std::time::Instant::now();
        c.write_all(partial).unwrap();
        let mut buf = Vec::new();
        // The server closes the connection (a read of 0 bytes or a reset), well before 20 s.
        let _ = c.read_to_end(&mut buf);
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "{:?}: still open after {took:?}",
            String::from_utf8_lossy(partial)
        );
    }
    let (st, _, _) = request(&s.addr, "GET", "/health", b"");
    assert_eq!(st, 200);
}

/// Reads one counter or gauge from `/metrics`.
fn metric(addr: &str, name: &str) -> f64 {
    let (_, _, body) = request(addr, "GET", "/metrics", b"");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// A client that goes away cancels its documents: the queued ones are dropped, the running one
/// stops at its next decoder step, and admission counts a document until it has stopped (not
/// until its client left), so abandoned work neither keeps the cores nor bypasses --max-queue.
#[test]
fn an_abandoned_request_is_cancelled_and_counted_until_it_stops() {
    let s = serve(&["--timeout-ms", "600000", "--max-queue", "40"]);
    let text = "the cat sat on the mat . ".repeat(60);
    let doc = format!("\"{text}\"");
    let docs = vec![doc.as_str(); 32].join(",");
    let body = format!(r#"{{"texts": [{docs}], "beam": 16, "max_len": 400, "min_len": 100}}"#);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    write!(
        c,
        "POST /v1/summarize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Wait until the documents are admitted, then hang up.
    let t0 = std::time::Instant::now();
    while metric(&s.addr, "abridge_queue_documents") < 32.0 {
        assert!(t0.elapsed() < Duration::from_secs(20), "never admitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    // While it runs, a second request over the limit is refused: the 32 count.
    let (st, _, _) = request(
        &s.addr,
        "POST",
        "/v1/summarize",
        format!(r#"{{"texts": [{}]}}"#, ["\"a b\""; 9].join(",")).as_bytes(),
    );
    assert_eq!(st, 503);
    drop(c);
    let t1 = std::time::Instant::now();
    while metric(&s.addr, "abridge_queue_documents") > 0.0 {
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "abandoned documents still counted 10 s after the client left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancelled = metric(&s.addr, "abridge_cancelled_documents_total");
    assert!(cancelled >= 24.0, "{cancelled} documents cancelled");
    assert_eq!(metric(&s.addr, "abridge_documents_total"), 0.0);
    let (st, v) = post(&s.addr, r#"{"text": "the cat sat on the mat ."}"#);
    assert_eq!(st, 200, "{v}");
}
