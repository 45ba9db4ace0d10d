//! `abridge bench serve`: a closed-loop HTTP/1.1 load generator for `abridge serve`.
//!
//! Each of `C` connections sends a request, waits for the answer, and sends the next (keep-alive),
//! for a fixed time or request count. It runs on one thread (tokio's current-thread runtime) so
//! that it takes as little as possible from the server it measures on the same machine. The
//! server's resident memory is sampled from its `/metrics` once a second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::cli::{Format, ServeBenchArgs};

/// One HTTP/1.1 exchange on a kept-alive connection; returns the status and body.
async fn exchange(
    conn: &mut BufReader<TcpStream>,
    request: &[u8],
) -> std::io::Result<(u16, Vec<u8>, bool)> {
    conn.get_mut().write_all(request).await?;
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::other("connection closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let (mut len, mut close) = (0usize, false);
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        } else if lower.starts_with("connection:") && lower.contains("close") {
            close = true;
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await?;
    Ok((status, body, close))
}

fn post(addr: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /v1/summarize HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// The server's resident memory from its `/metrics` (bytes).
async fn server_rss(addr: &str) -> Option<u64> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let mut conn = BufReader::new(stream);
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (_, body, _) = exchange(&mut conn, req.as_bytes()).await.ok()?;
    String::from_utf8_lossy(&body).lines().find_map(|l| {
        l.strip_prefix("process_resident_memory_bytes ")?
            .trim()
            .parse()
            .ok()
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Level {
    latencies_ms: Vec<f64>,
    non_200: u64,
    io_errors: u64,
    seconds: f64,
    rss_peak: u64,
}

async fn level(a: &ServeBenchArgs, body: Arc<Vec<u8>>, c: usize) -> Level {
    let until = Instant::now() + Duration::from_secs_f64(a.duration);
    let sent = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let (non_200, io_errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let done = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let sampler = {
        let (addr, done) = (a.addr.clone(), done.clone());
        tokio::spawn(async move {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = server_rss(&addr).await {
                    peak = peak.max(r);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            peak
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (addr, body, sent, lat) = (a.addr.clone(), body.clone(), sent.clone(), lat.clone());
        let (non_200, io_errors, max) = (non_200.clone(), io_errors.clone(), a.max_requests);
        tasks.push(tokio::spawn(async move {
            let req = post(&addr, &body);
            let mut conn: Option<BufReader<TcpStream>> = None;
            while Instant::now() < until
                && max.is_none_or(|m| sent.fetch_add(1, Ordering::Relaxed) < m)
            {
                if conn.is_none() {
                    match TcpStream::connect(&addr).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            conn = Some(BufReader::new(s));
                        }
                        Err(_) => {
                            io_errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let t = Instant::now();
                match exchange(conn.as_mut().expect("connected"), &req).await {
                    Ok((status, _, close)) => {
                        lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3);
                        if status != 200 {
                            non_200.fetch_add(1, Ordering::Relaxed);
                        }
                        if close {
                            conn = None;
                        }
                    }
                    Err(_) => {
                        io_errors.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let rss_peak = sampler.await.unwrap_or(0);
    let mut latencies_ms = std::mem::take(&mut *lat.lock().unwrap());
    latencies_ms.sort_by(f64::total_cmp);
    Level {
        latencies_ms,
        non_200: non_200.load(Ordering::Relaxed),
        io_errors: io_errors.load(Ordering::Relaxed),
        seconds,
        rss_peak,
    }
}

pub fn run(a: &ServeBenchArgs) -> Result<()> {
    if a.concurrency.is_empty()
        || a.concurrency.contains(&0)
        || a.duration.is_nan()
        || a.duration <= 0.0
    {
        bail!("--concurrency needs positive counts and --duration a positive number of seconds");
    }
    let text = std::fs::read_to_string(&a.text)
        .with_context(|| format!("reading {} (as UTF-8)", a.text.display()))?;
    let mut body: serde_json::Value =
        serde_json::from_str(&a.knobs).context("--knobs is not a JSON object")?;
    if !body.is_object() {
        bail!("--knobs must be a JSON object");
    }
    body["text"] = json!(text);
    let body = Arc::new(body.to_string().into_bytes());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let rss_idle = server_rss(&a.addr)
            .await
            .with_context(|| format!("no `abridge serve` answering /metrics at {}", a.addr))?;
        for &c in &a.concurrency {
            let l = level(a, body.clone(), c).await;
            let n = l.latencies_ms.len();
            let p = |q| percentile(&l.latencies_ms, q);
            let mb = |b: u64| b as f64 / (1 << 20) as f64;
            match a.format {
                Format::Json => outln!(
                    "{}",
                    json!({"bench": "abridge_serve", "concurrency": c, "seconds": l.seconds,
                        "requests": n, "rps": n as f64 / l.seconds,
                        "p50_ms": p(50.0), "p90_ms": p(90.0), "p99_ms": p(99.0),
                        "max_ms": l.latencies_ms.last().copied().unwrap_or(f64::NAN),
                        "non_200": l.non_200, "io_errors": l.io_errors,
                        "server_rss_mb_idle": mb(rss_idle), "server_rss_mb_peak": mb(l.rss_peak)})
                )?,
                Format::Text => outln!(
                    "concurrency {c:>3}: {n} requests in {:.1} s = {:.2} req/s; latency p50 {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}; non-200 {}, I/O errors {}; server RSS {:.0} MB idle, {:.0} MB peak",
                    l.seconds, n as f64 / l.seconds, p(50.0), p(90.0), p(99.0),
                    l.latencies_ms.last().copied().unwrap_or(f64::NAN),
                    l.non_200, l.io_errors, mb(rss_idle), mb(l.rss_peak)
                )?,
            }
        }
        Ok(())
    })
}
