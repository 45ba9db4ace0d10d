//! `abridge serve`: the summarizer over HTTP (axum on tokio).
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/summarize` | `{"text": ...}` or `{"texts": [...]}` plus optional knobs → summaries |
//! | `GET /health` | liveness and the model's name |
//! | `GET /metrics` | Prometheus text: requests by status, latency histogram, documents, tokens, queue, memory |
//! | `GET /openapi.json` | the OpenAPI 3 description |
//!
//! Concurrency: tokio (one thread) only parses, validates and answers; every document is a job in
//! one FIFO queue served by `--threads` decoding lanes, each a thread with a one-thread rayon pool
//! (so the model's parallel kernels run sequentially inside it): one document per core, no
//! oversubscription, and a document never waits behind another that a busy worker stole (which
//! a shared work-stealing pool does under load). At most `--max-queue`
//! documents are admitted (queued or decoding); beyond that the answer is 503 with `Retry-After`.
//! A job that has not finished by the request's deadline (`--timeout-ms`) is stopped between
//! decoder steps and the request gets 504. A document holds its place in the admission count
//! until its decoding has really stopped, and a client that goes away cancels its request's
//! documents: queued ones are dropped, a running one stops at its next decoder step.
//!
//! Connections: hyper's HTTP/1 with a header deadline (`--header-timeout-ms`: a client that
//! sends half a request line, or keeps an idle connection open, is cut off), a body deadline
//! (`--read-timeout-ms`, 408) and a bounded graceful shutdown (`--shutdown-timeout-ms`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abridge_decode::{Candidate, Observer};
use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::cli::{LongDocs, ServeArgs};
use crate::serve_api::{
    parse_request, ApiError, ErrorBody, ErrorDetail, Health, RequestLimits, SummarizeRequestBody,
    SummarizeResponse, SummaryOut,
};
use crate::summarize::load_default_or;
use abridge::{DecodeOptions, Summarizer, Summary};

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters behind `GET /metrics`.
#[derive(Default)]
struct Metrics {
    by_status: Mutex<BTreeMap<u16, u64>>,
    /// Every answer of every route (404, 405, 408 and 413 included), by status.
    all_by_status: Mutex<BTreeMap<u16, u64>>,
    /// Cumulative counts per bucket of `BUCKETS`, then the total.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    documents: AtomicU64,
    source_tokens: AtomicU64,
    summary_tokens: AtomicU64,
    truncated: AtomicU64,
    timeouts: AtomicU64,
    /// Documents dropped or stopped because their client went away.
    cancelled: AtomicU64,
}

impl Metrics {
    fn observe(&self, status: u16, took: Duration) {
        *self
            .by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status)
            .or_default() += 1;
        let s = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.latency[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

struct AppState {
    model: Arc<Summarizer>,
    model_name: String,
    lanes: Lanes,
    threads: usize,
    defaults: DecodeOptions,
    limits: RequestLimits,
    long_docs: LongDocs,
    timeout: Duration,
    max_queue: usize,
    queue: Arc<tokio::sync::Semaphore>,
    metrics: Metrics,
    started: Instant,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// `n` decoding lanes serving one FIFO queue. A job that finds every other lane idle and nothing
/// queued runs on a shared `n`-thread pool instead (a lone request gets every core); otherwise it
/// runs on its lane's one thread.
struct Lanes {
    tx: Mutex<std::sync::mpsc::Sender<Job>>,
    /// Jobs submitted and not yet taken by a lane.
    queued: Arc<AtomicU64>,
}

impl Lanes {
    fn start(n: usize) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let queued = Arc::new(AtomicU64::new(0));
        let busy = Arc::new(AtomicU64::new(0));
        let wide = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("abridge-wide-{i}"))
                .build()
                .context("building the decoding pool")?,
        );
        for i in 0..n {
            let (rx, queued, busy, wide) = (rx.clone(), queued.clone(), busy.clone(), wide.clone());
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(move |_| format!("abridge-decode-{i}"))
                .build()
                .context("building a decoding lane")?;
            std::thread::Builder::new()
                .name(format!("abridge-lane-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { break };
                    queued.fetch_sub(1, Ordering::SeqCst);
                    let alone = busy.fetch_add(1, Ordering::SeqCst) == 0
                        && queued.load(Ordering::SeqCst) == 0;
                    if alone {
                        wide.install(job);
                    } else {
                        pool.install(job);
                    }
                    busy.fetch_sub(1, Ordering::SeqCst);
                })
                .context("starting a decoding lane")?;
        }
        Ok(Self {
            tx: Mutex::new(tx),
            queued,
        })
    }

    fn submit(&self, job: Job) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        // The lanes outlive the server; a send can only fail once they are gone.
        let _ = self.tx.lock().unwrap_or_else(|e| e.into_inner()).send(job);
    }
}

/// Stops a search at a deadline or when its request is cancelled.
struct Deadline {
    at: Instant,
    cancelled: Arc<AtomicBool>,
}

impl Observer for Deadline {
    fn step(&mut self, _: usize, _: &[Candidate]) -> bool {
        Instant::now() < self.at && !self.cancelled.load(Ordering::Relaxed)
    }
}

/// Raised when a request's handler ends or is dropped (hyper drops it when the client goes
/// away): its documents still queued or decoding have no one to answer and stop.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Resident set size of this process in bytes (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn json_response(status: u16, body: &impl serde::Serialize) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(body).expect("a response serialises"),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.status, &e.body());
    if e.status == 503 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

/// One decoded document and what happened to its input.
struct DocResult {
    summary: Summary,
    source_tokens: usize,
    truncated_from: Option<usize>,
}

#[utoipa::path(
    post,
    path = "/v1/summarize",
    summary = "Summarize one document (`text`) or several (`texts`).",
    request_body = SummarizeRequestBody,
    responses(
        (status = 200, description = "Summaries", body = SummarizeResponse),
        (status = 400, description = "Invalid JSON, an unknown or invalid field (named in the message), or an empty document", body = ErrorBody),
        (status = 408, description = "The request body did not arrive within --read-timeout-ms", body = ErrorBody),
        (status = 413, description = "Body, document (with --long-docs reject) or document count over the server's limit", body = ErrorBody),
        (status = 500, description = "The decoder failed on a document", body = ErrorBody),
        (status = 503, description = "The queue is full; retry after the Retry-After header", body = ErrorBody),
        (status = 504, description = "Decoding exceeded the server's time limit", body = ErrorBody),
    )
)]
async fn summarize(
    State(st): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let t0 = Instant::now();
    let (status, resp) = match handle(&st, body).await {
        Ok(v) => (200, json_response(200, &v)),
        Err(e) => (e.status, error_response(&e)),
    };
    st.metrics.observe(status, t0.elapsed());
    resp
}

async fn handle(
    st: &Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<SummarizeResponse, ApiError> {
    let t0 = Instant::now();
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                413,
                "body_too_large",
                "the request body exceeds this server's --max-body-bytes",
            )
        } else {
            ApiError::new(400, "invalid_body", r.body_text())
        }
    })?;
    let mut req = parse_request(&body, &st.defaults, st.model.generation_config(), st.limits)?;
    let beam = st
        .model
        .decoding(&req.decode)
        .map_err(|e| ApiError::from_lib(&e))?;
    let max_src = beam.max_src_len;
    let name = |i: usize| {
        if req.many {
            format!("texts[{i}]")
        } else {
            "text".to_string()
        }
    };
    // Tokenize off the I/O thread, under the request's deadline, then apply the length policy
    // before admitting any work.
    let deadline = t0 + st.timeout;
    let texts = std::mem::take(&mut req.texts);
    let model = st.model.clone();
    let tokenizing = tokio::task::spawn_blocking(move || {
        texts
            .into_iter()
            .map(|t| (model.tokenize(&t), t))
            .collect::<Vec<_>>()
    });
    let tokenized = match tokio::time::timeout_at(deadline.into(), tokenizing).await {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => return Err(ApiError::new(500, "internal", "tokenizing failed")),
        Err(_) => {
            st.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
            return Err(timeout_error(st.timeout));
        }
    };
    let mut docs = Vec::with_capacity(tokenized.len());
    for (i, (mut toks, text)) in tokenized.into_iter().enumerate() {
        if toks.is_empty() {
            return Err(ApiError::new(
                400,
                "empty_document",
                format!("`{}` has no words", name(i)),
            ));
        }
        let mut truncated_from = None;
        if toks.len() > max_src {
            if st.long_docs == LongDocs::Reject {
                return Err(ApiError::new(
                    413,
                    "document_too_long",
                    format!(
                        "`{}` has {} tokens; this server reads at most {max_src}",
                        name(i),
                        toks.len()
                    ),
                ));
            }
            truncated_from = Some(toks.len());
            toks.truncate(max_src);
        }
        docs.push((toks, truncated_from, text));
    }
    let mut permits = st
        .queue
        .clone()
        .try_acquire_many_owned(docs.len() as u32)
        .map_err(|_| {
            ApiError::new(
                503,
                "busy",
                format!(
                    "the server is at its limit of {} queued documents; retry shortly",
                    st.max_queue
                ),
            )
        })?;
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(cancelled.clone());
    let mut waiting = Vec::with_capacity(docs.len());
    for (toks, truncated_from, text) in docs {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let state = st.clone();
        let beam = beam.clone();
        let cancelled = cancelled.clone();
        // Each document's permit lives in its job: admission counts it until it stops.
        let permit = permits.split(1);
        st.lanes.submit(Box::new(move || {
            let _permit = permit;
            let model = &state.model;
            let r = if cancelled.load(Ordering::Relaxed) {
                state.metrics.cancelled.fetch_add(1, Ordering::Relaxed);
                return;
            } else if Instant::now() >= deadline {
                Ok(None)
            } else {
                let mut observer = Deadline {
                    at: deadline,
                    cancelled: cancelled.clone(),
                };
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    model.summarize_tokens(&toks, &beam, &mut observer)
                }))
                .map_err(|_| "the decoder panicked".to_string())
                .and_then(|r| r.map_err(|e| format!("{e:#}")))
                .map(|(mut summary, stopped)| {
                    if stopped && cancelled.load(Ordering::Relaxed) {
                        state.metrics.cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                    model.recase(&text, &mut summary);
                    (!stopped).then_some(DocResult {
                        summary,
                        source_tokens: toks.len(),
                        truncated_from,
                    })
                })
            };
            let _ = tx.send(r);
        }));
        waiting.push(rx);
    }
    let mut results = Vec::with_capacity(waiting.len());
    for rx in waiting {
        match rx.await {
            Ok(Ok(Some(r))) => results.push(r),
            Ok(Ok(None)) => {
                st.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(timeout_error(st.timeout));
            }
            Ok(Err(msg)) => {
                eprintln!("error: a decode failed: {msg}");
                return Err(ApiError::new(
                    500,
                    "internal",
                    "the decoder failed on this document",
                ));
            }
            Err(_) => return Err(ApiError::new(500, "internal", "a decode job was lost")),
        }
    }
    let m = &st.metrics;
    let summaries: Vec<SummaryOut> = results
        .into_iter()
        .map(|r| {
            m.documents.fetch_add(1, Ordering::Relaxed);
            m.source_tokens
                .fetch_add(r.source_tokens as u64, Ordering::Relaxed);
            m.summary_tokens
                .fetch_add(r.summary.tokens.len() as u64, Ordering::Relaxed);
            if r.truncated_from.is_some() {
                m.truncated.fetch_add(1, Ordering::Relaxed);
            }
            SummaryOut {
                tokens: r.summary.tokens.len(),
                source_tokens: r.source_tokens,
                score: r.summary.score,
                truncated: r.truncated_from.is_some(),
                notice: r.truncated_from.map(|n| {
                    format!(
                        "the document has {n} tokens; the first {} were summarized",
                        r.source_tokens
                    )
                }),
                summary: r.summary.one_line(),
                sentences: r.summary.sentences().map(str::to_string).collect(),
                copied_oov: r.summary.copied_oov,
            }
        })
        .collect();
    Ok(SummarizeResponse {
        summary: (!req.many).then(|| summaries[0].summary.clone()),
        summaries,
        model: st.model_name.clone(),
        elapsed_ms: t0.elapsed().as_secs_f64() * 1e3,
    })
}

fn timeout_error(limit: Duration) -> ApiError {
    ApiError::new(
        504,
        "timeout",
        format!(
            "decoding did not finish within this server's limit of {} ms",
            limit.as_millis()
        ),
    )
}

/// Counts every answer by status, whichever layer produced it.
async fn count_responses(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    *st.metrics
        .all_by_status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(resp.status().as_u16())
        .or_default() += 1;
    resp
}

/// Bounds the time and the bytes a client may take to deliver its body: the body is buffered
/// here, under both limits, so the handlers only ever see a complete one.
async fn read_body(
    State((limit, max_bytes)): State<(Duration, usize)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, max_bytes);
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        // `to_bytes` fails on a body over the limit (or a broken one).
        Ok(Err(_)) => error_response(&ApiError::new(
            413,
            "body_too_large",
            "the request body exceeds this server's --max-body-bytes (or could not be read)",
        )),
        Err(_) => error_response(&ApiError::new(
            408,
            "read_timeout",
            format!(
                "the request body did not arrive within {} ms",
                limit.as_millis()
            ),
        )),
    }
}

#[utoipa::path(get, path = "/health", summary = "Liveness and model",
    responses((status = 200, description = "OK", body = Health)))]
async fn health(State(st): State<Arc<AppState>>) -> Response {
    json_response(
        200,
        &Health {
            status: "ok".into(),
            model: st.model_name.clone(),
            cell: st.model.config().cell.name().into(),
            vocab: st.model.config().vocab,
            threads: st.threads,
            uptime_s: st.started.elapsed().as_secs_f64(),
        },
    )
}

#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics",
    responses((status = 200, description = "The Prometheus text exposition format", content_type = "text/plain")))]
async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    use std::fmt::Write;
    let m = &st.metrics;
    let mut s = String::new();
    let _ = writeln!(s, "# HELP abridge_http_requests_total Summarize requests answered, by HTTP status.\n# TYPE abridge_http_requests_total counter");
    for (code, n) in m.by_status.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(s, "abridge_http_requests_total{{code=\"{code}\"}} {n}");
    }
    let _ = writeln!(s, "# HELP abridge_http_responses_total Answers of every route (errors from routing and body limits included), by HTTP status.\n# TYPE abridge_http_responses_total counter");
    for (code, n) in m
        .all_by_status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = writeln!(s, "abridge_http_responses_total{{code=\"{code}\"}} {n}");
    }
    let _ = writeln!(s, "# HELP abridge_request_duration_seconds Latency of summarize requests.\n# TYPE abridge_request_duration_seconds histogram");
    for (i, b) in BUCKETS.iter().enumerate() {
        let _ = writeln!(
            s,
            "abridge_request_duration_seconds_bucket{{le=\"{b}\"}} {}",
            m.latency[i].load(Ordering::Relaxed)
        );
    }
    let count = m.latency[BUCKETS.len()].load(Ordering::Relaxed);
    let _ = writeln!(
        s,
        "abridge_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nabridge_request_duration_seconds_sum {}\nabridge_request_duration_seconds_count {count}",
        m.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let in_flight = st.max_queue - st.queue.available_permits();
    for (name, help, kind, v) in [
        (
            "abridge_documents_total",
            "Documents summarized.",
            "counter",
            m.documents.load(Ordering::Relaxed),
        ),
        (
            "abridge_source_tokens_total",
            "Source tokens read.",
            "counter",
            m.source_tokens.load(Ordering::Relaxed),
        ),
        (
            "abridge_summary_tokens_total",
            "Summary tokens written.",
            "counter",
            m.summary_tokens.load(Ordering::Relaxed),
        ),
        (
            "abridge_truncated_documents_total",
            "Documents cut to --max-src-len.",
            "counter",
            m.truncated.load(Ordering::Relaxed),
        ),
        (
            "abridge_timeouts_total",
            "Requests stopped at --timeout-ms.",
            "counter",
            m.timeouts.load(Ordering::Relaxed),
        ),
        (
            "abridge_cancelled_documents_total",
            "Documents dropped or stopped because their client went away.",
            "counter",
            m.cancelled.load(Ordering::Relaxed),
        ),
        (
            "abridge_queue_documents",
            "Documents admitted (queued or decoding) and not yet finished.",
            "gauge",
            in_flight as u64,
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory.",
            "gauge",
            rss_bytes(),
        ),
    ] {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s).into_response()
}

#[utoipa::path(get, path = "/openapi.json", summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
async fn openapi() -> Response {
    json_response(200, &openapi_doc())
}

async fn not_found() -> Response {
    error_response(&ApiError::new(
        404,
        "not_found",
        "no such route; see GET /openapi.json",
    ))
}

async fn method_not_allowed() -> Response {
    error_response(&ApiError::new(
        405,
        "method_not_allowed",
        "this route does not take that method; see GET /openapi.json",
    ))
}

/// The OpenAPI description, generated from the handlers' annotations and the wire types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Abridge",
        description = "Neural summarization (pointer-generator with attention) over HTTP."
    ),
    paths(summarize, health, metrics, openapi),
    components(schemas(
        SummarizeRequestBody,
        SummarizeResponse,
        SummaryOut,
        Health,
        ErrorBody,
        ErrorDetail
    ))
)]
pub struct ApiDoc;

/// The OpenAPI document served at `/openapi.json`.
pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    ApiDoc::openapi()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

pub fn run(a: &ServeArgs) -> Result<()> {
    if a.max_queue == 0 || a.max_docs == 0 {
        anyhow::bail!("--max-queue and --max-docs must be at least 1");
    }
    let model = load_default_or(a.model.as_deref())?;
    let defaults = a.decode.options();
    model.decoding(&defaults)?;
    let model_name = model.name().to_string();
    let threads = if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.threads
    };
    let lanes = Lanes::start(threads)?;
    let state = Arc::new(AppState {
        model: Arc::new(model),
        model_name,
        lanes,
        threads,
        defaults,
        limits: RequestLimits {
            max_docs: a.max_docs,
        },
        long_docs: a.long_docs,
        timeout: Duration::from_millis(a.timeout_ms.max(1)),
        max_queue: a.max_queue,
        queue: Arc::new(tokio::sync::Semaphore::new(a.max_queue)),
        metrics: Metrics::default(),
        started: Instant::now(),
    });
    let app = Router::new()
        .route(
            "/v1/summarize",
            post(summarize).fallback(method_not_allowed),
        )
        .route("/health", get(health).fallback(method_not_allowed))
        .route("/metrics", get(metrics).fallback(method_not_allowed))
        .route("/openapi.json", get(openapi).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(a.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            (
                Duration::from_millis(a.read_timeout_ms.max(1)),
                a.max_body_bytes,
            ),
            read_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("abridge-http")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let local = listener.local_addr()?;
        // The first line of standard output: scripts and tests read the port from it.
        outln!("listening on http://{local}")?;
        use std::io::Write;
        std::io::stdout().flush()?;
        // On SIGTERM/SIGINT: stop accepting, let requests in flight finish, but never wait longer
        // than --shutdown-timeout-ms (a client holding a half-sent request open must not keep
        // the server alive).
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_millis(a.header_timeout_ms.max(1)));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let signal = shutdown_signal();
        tokio::pin!(signal);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: say so, back off, go on.
                        eprintln!("warning: accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut signal => break,
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let conn = graceful
                .watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
            tokio::spawn(async move {
                // A connection's I/O errors (a reset, a header timeout) end only that connection.
                let _ = conn.await;
            });
        }
        drop(listener);
        let grace = Duration::from_millis(a.shutdown_timeout_ms);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            eprintln!(
                "connections still open {} ms after the shutdown signal; closing them",
                grace.as_millis()
            );
        }
        eprintln!("shut down");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use abridge::options::{MAX_BEAM, MAX_LEN, MAX_NGRAM, MAX_PENALTY_WEIGHT};

    /// The schema's bounds (literals in the derive's attributes) are the library's.
    #[test]
    fn the_request_schema_has_the_library_bounds() {
        let doc = serde_json::to_value(super::openapi_doc()).unwrap();
        let p = &doc["components"]["schemas"]["SummarizeRequestBody"]["properties"];
        assert_eq!(p["beam"]["maximum"], MAX_BEAM);
        assert_eq!(p["max_len"]["maximum"], MAX_LEN);
        assert_eq!(p["block_ngram"]["maximum"], MAX_NGRAM);
        assert_eq!(p["alpha"]["maximum"].as_f64(), Some(MAX_PENALTY_WEIGHT));
        assert_eq!(p["beta"]["maximum"].as_f64(), Some(MAX_PENALTY_WEIGHT));
        let lp = &doc["components"]["schemas"]["LengthPenaltyKind"]["enum"];
        assert_eq!(lp, &serde_json::json!(abridge::LengthPenaltyKind::NAMES));
    }
}
