//! The HTTP API's request and error types: parsing and validation only, no I/O, so that every
//! rule is unit- and property-tested without a socket.
//!
//! `POST /v1/summarize` takes `{"text": "..."}` or `{"texts": ["...", ...]}` and optional decoding
//! knobs named as the CLI's flags (`beam`, `min_len`, `max_len`, `length_penalty`, `alpha`,
//! `coverage_penalty`, `beta`, `block_ngram`). Unknown fields are errors (a misspelt knob must
//! not be silently ignored).
//!
//! The wire types are the library's (`abridge::http`); the OpenAPI document (`GET /openapi.json`)
//! is generated from them (`crate::serve::ApiDoc`).

pub use abridge::http::{
    ErrorBody, ErrorDetail, Health, SummarizeRequestBody, SummarizeResponse, SummaryOut,
};
use abridge::{DecodeOptions, GenerationConfig};

/// A client error: HTTP status, a stable machine-readable code, and a message naming the field.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    fn field(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(400, "invalid_field", format!("`{field}`: {message}"))
    }
    /// A library error about a request: a bad option names its field (the message is the
    /// library's, as the CLI prints it); anything else is the server's fault.
    pub fn from_lib(e: &abridge::Error) -> Self {
        match e {
            abridge::Error::Option { .. } => Self::new(400, "invalid_field", e.to_string()),
            abridge::Error::EmptyDocument => Self::new(400, "empty_document", e.to_string()),
            _ => Self::new(500, "internal", e.to_string()),
        }
    }
    /// `{"error": {"code": ..., "message": ...}}`.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

/// A validated request.
#[derive(Clone, Debug)]
pub struct SummarizeRequest {
    pub texts: Vec<String>,
    /// Whether the client sent `texts` (the response then answers with a list only).
    pub many: bool,
    /// The server's defaults with the request's fields over them (checked).
    pub decode: DecodeOptions,
}

/// Limits the server enforces on requests.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// Most documents in one request.
    pub max_docs: usize,
}

/// Parses a request body and checks its options laid over the server's `defaults` and the
/// model's `generation` defaults.
pub fn parse_request(
    body: &[u8],
    defaults: &DecodeOptions,
    generation: &GenerationConfig,
    limits: RequestLimits,
) -> Result<SummarizeRequest, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            400,
            "invalid_utf8",
            format!(
                "the request body is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::new(
            400,
            "invalid_json",
            "the request body is empty; send a JSON object such as {\"text\": \"...\"}",
        ));
    }
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::new(
            400,
            "invalid_json",
            "the request body must be a JSON object such as {\"text\": \"...\"}",
        ));
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: SummarizeRequestBody = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let data = inner.classify() == serde_json::error::Category::Data;
        if !data || path == "." || path.is_empty() {
            ApiError::new(400, "invalid_json", format!("invalid JSON: {inner}"))
        } else {
            // The field names the place; serde_json's " at line 1 column N" would only repeat it.
            let msg = inner.to_string();
            let at = format!(" at line {} column {}", inner.line(), inner.column());
            ApiError::field(&path, msg.strip_suffix(&at).unwrap_or(&msg))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::new(400, "invalid_json", format!("invalid JSON: {e}")))?;
    let (texts, many) = match (raw.text, raw.texts) {
        (Some(t), None) => (vec![t], false),
        (None, Some(ts)) => (ts, true),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                400,
                "invalid_field",
                "send either `text` or `texts`, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::new(
                400,
                "missing_field",
                "the request needs `text` (a string) or `texts` (a list of strings)",
            ))
        }
    };
    if texts.is_empty() {
        return Err(ApiError::field("texts", "is empty"));
    }
    if texts.len() > limits.max_docs {
        return Err(ApiError::new(
            413,
            "too_many_documents",
            format!(
                "`texts` holds {} documents; this server takes at most {} per request",
                texts.len(),
                limits.max_docs
            ),
        ));
    }
    let req = DecodeOptions {
        beam: raw.beam,
        min_len: raw.min_len,
        max_len: raw.max_len,
        length_penalty: raw.length_penalty,
        alpha: raw.alpha,
        coverage_penalty: raw.coverage_penalty,
        beta: raw.beta,
        block_ngram: raw.block_ngram,
        max_src_len: None,
        selector: raw.selector,
        select_threshold: raw.select_threshold,
    };
    let d = defaults.overlay(&req);
    d.resolve(generation).map_err(|e| ApiError::from_lib(&e))?;
    Ok(SummarizeRequest {
        texts,
        many,
        decode: d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn defaults() -> DecodeOptions {
        DecodeOptions::new().max_src_len(400)
    }
    fn generation() -> GenerationConfig {
        GenerationConfig {
            min_len: 35,
            length_penalty: abridge::LengthPenaltyKind::Avg,
            ..Default::default()
        }
    }
    const LIM: RequestLimits = RequestLimits { max_docs: 8 };

    fn err(body: &str) -> ApiError {
        parse_request(body.as_bytes(), &defaults(), &generation(), LIM).unwrap_err()
    }

    #[test]
    fn a_text_with_knobs_overrides_the_defaults() {
        let r = parse_request(
            br#"{"text": "a b c", "beam": 2, "length_penalty": "gnmt", "alpha": 0.6, "max_len": 20}"#,
            &defaults(),
            &generation(),
            LIM,
        )
        .unwrap();
        assert_eq!(r.texts, vec!["a b c"]);
        assert!(!r.many);
        assert_eq!(r.decode.beam, Some(2));
        assert_eq!(
            r.decode.length_penalty,
            Some(abridge::LengthPenaltyKind::Gnmt)
        );
        let res = r.decode.resolve(&generation()).unwrap();
        assert_eq!((res.beam.min_len, res.beam.max_len), (20, 20));
        let r =
            parse_request(br#"{"texts": ["x", "y"]}"#, &defaults(), &generation(), LIM).unwrap();
        assert!(r.many && r.texts.len() == 2 && r.decode.beam.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let e = err(r#"{"text": "a", "beam": 0}"#);
        assert_eq!((e.status, e.code), (400, "invalid_field"));
        assert!(e.message.contains("`beam`"), "{}", e.message);
        assert!(err(r#"{"text": "a", "beam": "four"}"#)
            .message
            .contains("`beam`"));
        assert!(err(r#"{"text": "a", "beem": 4}"#).message.contains("beem"));
        assert!(err(r#"{"text": 5}"#).message.contains("`text`"));
        assert!(err(r#"{"texts": ["a", 3]}"#).message.contains("texts[1]"));
        assert!(err(r#"{"text": "a", "length_penalty": "long"}"#)
            .message
            .contains("expected one of none, gnmt, avg, power"));
        assert!(err(r#"{"text": "a", "min_len": 50, "max_len": 10}"#)
            .message
            .contains("`min_len`"));
        assert!(err(r#"{"text": "a", "alpha": -1}"#)
            .message
            .contains("`alpha`"));
        assert!(err(r#"{"text": "a", "max_len": 100000}"#)
            .message
            .contains("`max_len`"));
        assert_eq!(err(r#"{"beam": 2}"#).code, "missing_field");
        assert_eq!(
            err(r#"{"text": "a", "texts": ["b"]}"#).code,
            "invalid_field"
        );
        assert_eq!(err(r#"{"texts": []}"#).code, "invalid_field");
        assert_eq!(
            err(r#"{"texts": ["a","a","a","a","a","a","a","a","a"]}"#).status,
            413
        );
        assert_eq!(err("").code, "invalid_json");
        assert_eq!(err("{").code, "invalid_json");
        assert_eq!(err("[1, 2]").code, "invalid_json");
        assert_eq!(err("null").code, "invalid_json");
        assert_eq!(err(r#"{"text": "a"} trailing"#).code, "invalid_json");
        let e =
            parse_request(b"{\"text\": \"\xff\"}", &defaults(), &generation(), LIM).unwrap_err();
        assert_eq!(e.code, "invalid_utf8");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any bytes: a request or a 4xx error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            match parse_request(&body, &defaults(), &generation(), LIM) {
                Ok(r) => prop_assert!(!r.texts.is_empty()),
                Err(e) => prop_assert!((400..500).contains(&e.status)),
            }
        }

        /// JSON objects mixing real and bogus fields with values of every type.
        #[test]
        fn arbitrary_json_objects_are_validated(
            fields in proptest::collection::vec((
                prop_oneof![Just("text"), Just("texts"), Just("beam"), Just("min_len"),
                    Just("max_len"), Just("alpha"), Just("beta"), Just("length_penalty"),
                    Just("coverage_penalty"), Just("block_ngram"), Just("other")],
                prop_oneof![
                    any::<i64>().prop_map(|x| x.to_string()),
                    any::<f64>().prop_map(|x| if x.is_finite() { x.to_string() } else { "1e999".into() }),
                    "[a-z ]{0,8}".prop_map(|s| format!("{s:?}")),
                    Just("null".to_string()), Just("[]".to_string()), Just("[\"x\"]".to_string()),
                    Just("{}".to_string()), Just("true".to_string()),
                ]), 0..6)
        ) {
            let body = format!("{{{}}}", fields.iter().map(|(k, v)| format!("\"{k}\": {v}"))
                .collect::<Vec<_>>().join(", "));
            match parse_request(body.as_bytes(), &defaults(), &generation(), LIM) {
                Ok(r) => {
                    prop_assert!(r.decode.resolve(&generation()).is_ok());
                    prop_assert!(!r.texts.is_empty() && r.texts.len() <= LIM.max_docs);
                }
                Err(e) => {
                    prop_assert!((400..500).contains(&e.status));
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
    }
}
