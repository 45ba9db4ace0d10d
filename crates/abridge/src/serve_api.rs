//! The HTTP API's request and error types: parsing and validation only, no I/O, so that every
//! rule is unit- and property-tested without a socket.
//!
//! `POST /v1/summarize` takes `{"text": "..."}` or `{"texts": ["...", ...]}` and optional decoding
//! knobs named as the CLI's flags (`beam`, `min_len`, `max_len`, `length_penalty`, `alpha`,
//! `coverage_penalty`, `beta`, `block_ngram`). Unknown fields are errors (a misspelt knob must
//! not be silently ignored).

use serde::Deserialize;

use crate::cli::{CoveragePenaltyArg, DecodeArgs, LengthPenaltyArg, SelectorArg};

/// Upper bounds on the knobs a client may ask for (they bound the work of one request).
pub const MAX_BEAM: usize = 16;
pub const MAX_LEN: usize = 400;
pub const MAX_NGRAM: usize = 10;
pub const MAX_PENALTY_WEIGHT: f64 = 10.0;

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
    /// `{"error": {"code": ..., "message": ...}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    text: Option<String>,
    texts: Option<Vec<String>>,
    beam: Option<usize>,
    min_len: Option<usize>,
    max_len: Option<usize>,
    length_penalty: Option<String>,
    alpha: Option<f64>,
    coverage_penalty: Option<String>,
    beta: Option<f64>,
    block_ngram: Option<usize>,
    selector: Option<String>,
    select_threshold: Option<f32>,
}

/// A validated request.
#[derive(Clone, Debug)]
pub struct SummarizeRequest {
    pub texts: Vec<String>,
    /// Whether the client sent `texts` (the response then answers with a list only).
    pub many: bool,
    pub decode: DecodeArgs,
}

/// Limits the server enforces on requests.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// Most documents in one request.
    pub max_docs: usize,
}

fn parse_enum<T: clap::ValueEnum>(field: &str, v: &str) -> Result<T, ApiError> {
    T::from_str(v, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        ApiError::field(
            field,
            format!("unknown value {v:?}; expected one of {}", names.join(", ")),
        )
    })
}

fn weight(field: &str, v: f64) -> Result<f64, ApiError> {
    if v.is_finite() && (0.0..=MAX_PENALTY_WEIGHT).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::field(
            field,
            format!("must be a number in [0, {MAX_PENALTY_WEIGHT}], got {v}"),
        ))
    }
}

/// Checks decoding knobs (also the CLI's); the error names the field.
pub fn validate_decode(d: &DecodeArgs) -> Result<(), ApiError> {
    if !(1..=MAX_BEAM).contains(&d.beam) {
        return Err(ApiError::field(
            "beam",
            format!("must be between 1 and {MAX_BEAM}, got {}", d.beam),
        ));
    }
    if !(1..=MAX_LEN).contains(&d.max_len) {
        return Err(ApiError::field(
            "max_len",
            format!("must be between 1 and {MAX_LEN}, got {}", d.max_len),
        ));
    }
    if d.min_len > d.max_len {
        return Err(ApiError::field(
            "min_len",
            format!("{} is above max_len {}", d.min_len, d.max_len),
        ));
    }
    if d.block_ngram > MAX_NGRAM {
        return Err(ApiError::field(
            "block_ngram",
            format!("must be between 0 and {MAX_NGRAM}, got {}", d.block_ngram),
        ));
    }
    weight("alpha", d.alpha)?;
    weight("beta", d.beta)?;
    if let Some(t) = d.select_threshold {
        if !(t.is_finite() && (0.0..1.0).contains(&t)) {
            return Err(ApiError::field(
                "select_threshold",
                format!("must be a number in [0, 1), got {t}"),
            ));
        }
    }
    Ok(())
}

/// Parses and validates a request body against the server's default knobs `defaults`.
pub fn parse_request(
    body: &[u8],
    defaults: &DecodeArgs,
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
    let raw: Raw = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let data = inner.classify() == serde_json::error::Category::Data;
        if !data || path == "." || path.is_empty() {
            ApiError::new(400, "invalid_json", format!("invalid JSON: {inner}"))
        } else {
            ApiError::field(&path, inner)
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
    let mut d = defaults.clone();
    if let Some(v) = raw.beam {
        d.beam = v;
    }
    if let Some(v) = raw.min_len {
        d.min_len = v;
    }
    if let Some(v) = raw.max_len {
        d.max_len = v;
        // A client lowering max_len below the server's min_len default means "shorter".
        if raw.min_len.is_none() {
            d.min_len = d.min_len.min(v);
        }
    }
    if let Some(v) = raw.length_penalty {
        d.length_penalty = parse_enum::<LengthPenaltyArg>("length_penalty", &v)?;
    }
    if let Some(v) = raw.alpha {
        d.alpha = v;
    }
    if let Some(v) = raw.coverage_penalty {
        d.coverage_penalty = parse_enum::<CoveragePenaltyArg>("coverage_penalty", &v)?;
    }
    if let Some(v) = raw.beta {
        d.beta = v;
    }
    if let Some(v) = raw.block_ngram {
        d.block_ngram = v;
    }
    if let Some(v) = raw.selector {
        d.selector = parse_enum::<SelectorArg>("selector", &v)?;
    }
    if let Some(v) = raw.select_threshold {
        d.select_threshold = Some(v);
    }
    validate_decode(&d)?;
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

    fn defaults() -> DecodeArgs {
        DecodeArgs {
            beam: 4,
            min_len: 35,
            max_len: 100,
            length_penalty: LengthPenaltyArg::Avg,
            alpha: 1.0,
            coverage_penalty: CoveragePenaltyArg::None,
            beta: 0.0,
            block_ngram: 3,
            max_src_len: Some(400),
            selector: SelectorArg::Auto,
            select_threshold: None,
        }
    }
    const LIM: RequestLimits = RequestLimits { max_docs: 8 };

    fn err(body: &str) -> ApiError {
        parse_request(body.as_bytes(), &defaults(), LIM).unwrap_err()
    }

    #[test]
    fn a_text_with_knobs_overrides_the_defaults() {
        let r = parse_request(
            br#"{"text": "a b c", "beam": 2, "length_penalty": "gnmt", "alpha": 0.6, "max_len": 20}"#,
            &defaults(),
            LIM,
        )
        .unwrap();
        assert_eq!(r.texts, vec!["a b c"]);
        assert!(!r.many);
        assert_eq!(r.decode.beam, 2);
        assert_eq!(r.decode.length_penalty, LengthPenaltyArg::Gnmt);
        assert_eq!((r.decode.min_len, r.decode.max_len), (20, 20));
        let r = parse_request(br#"{"texts": ["x", "y"]}"#, &defaults(), LIM).unwrap();
        assert!(r.many && r.texts.len() == 2 && r.decode.beam == 4);
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
        let e = parse_request(b"{\"text\": \"\xff\"}", &defaults(), LIM).unwrap_err();
        assert_eq!(e.code, "invalid_utf8");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any bytes: a request or a 4xx error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            match parse_request(&body, &defaults(), LIM) {
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
            match parse_request(body.as_bytes(), &defaults(), LIM) {
                Ok(r) => {
                    prop_assert!(validate_decode(&r.decode).is_ok());
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
