//! The HTTP API's wire types (`abridge serve`): what a client sends and receives, as serde structs.
//! With the `openapi` feature they also derive their OpenAPI schemas (utoipa), from which the
//! server's `/openapi.json` is generated.

use serde::{Deserialize, Serialize};

use crate::options::{CoveragePenaltyKind, LengthPenaltyKind, SelectorMode};

/// The body of `POST /v1/summarize`: one document (`text`) or several (`texts`), and decoding
/// options over the server's defaults (unset: the `serve` flags, then the model's
/// `generation_config.json`).
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SummarizeRequestBody {
    /// One document (or use `texts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Several documents (the response then holds only `summaries`).
    pub texts: Option<Vec<String>>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 16))]
    pub beam: Option<usize>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub min_len: Option<usize>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 400))]
    pub max_len: Option<usize>,
    pub length_penalty: Option<LengthPenaltyKind>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10))]
    pub alpha: Option<f64>,
    pub coverage_penalty: Option<CoveragePenaltyKind>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10))]
    pub beta: Option<f64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10))]
    pub block_ngram: Option<usize>,
    /// Content selection: copy only tokens the model's selector marks (auto: when it has one).
    pub selector: Option<SelectorMode>,
    /// Selection probability a token needs to be copied (default: the selector's).
    #[cfg_attr(feature = "openapi", schema(minimum = 0, exclusive_maximum = 1))]
    pub select_threshold: Option<f32>,
}

/// One document's summary.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SummaryOut {
    /// The summary on one line.
    pub summary: String,
    /// Its sentences.
    pub sentences: Vec<String>,
    /// Tokens in the summary.
    pub tokens: usize,
    /// Source tokens read (after any truncation).
    pub source_tokens: usize,
    /// Source words outside the vocabulary that the pointer copied.
    pub copied_oov: Vec<String>,
    pub score: f64,
    pub truncated: bool,
    /// Present when the document was truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// The answer to `POST /v1/summarize`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SummarizeResponse {
    /// With `text`: the summary (also `summaries[0].summary`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub summaries: Vec<SummaryOut>,
    pub model: String,
    pub elapsed_ms: f64,
}

/// `GET /health`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub model: String,
    /// `lstm` or `gru`.
    pub cell: String,
    pub vocab: usize,
    pub threads: usize,
    pub uptime_s: f64,
}

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable and machine-readable: `invalid_json`, `invalid_field`, `empty_document`, …
    pub code: String,
    /// Names the problem (the field, the document, the limit).
    pub message: String,
}
