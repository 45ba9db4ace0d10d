//! Decoding options: what a caller may ask for ([`DecodeOptions`], every field optional), the
//! model's own defaults ([`GenerationConfig`], its `generation_config.json`), and the one place
//! both are checked and merged ([`DecodeOptions::resolve`]). The CLI's flags, the HTTP server's
//! request fields and the Python keyword arguments all become a `DecodeOptions`, so all three
//! accept and reject the same values with the same message.

use std::fmt;
use std::str::FromStr;

use abridge_decode::{BeamConfig, CoveragePenalty, LengthPenalty};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Upper bounds on what one request may ask for (they bound the work of one summary).
pub const MAX_BEAM: usize = 16;
pub const MAX_LEN: usize = 400;
pub const MAX_NGRAM: usize = 10;
pub const MAX_PENALTY_WEIGHT: f64 = 10.0;
pub const MAX_SRC_LEN: usize = 100_000;

/// Declares a unit enum with lower-case names used by serde, `FromStr` (case-insensitive; the
/// error lists the names; deserializing goes through it) and `Display`.
macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        // Every name is the variant's, lower-cased (utoipa does not see `rename` through a macro).
        #[cfg_attr(feature = "openapi", schema(rename_all = "lowercase"))]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $v),+ }

        /// Read through `FromStr`: an unknown name gets the message the CLI gives.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// Every value's name.
            pub const NAMES: &'static [&'static str] = &[$($s),+];
            pub fn name(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                $(if s.eq_ignore_ascii_case($s) { return Ok(Self::$v); })+
                Err(format!("unknown value {s:?}; expected one of {}", Self::NAMES.join(", ")))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_enum!(
    /// How a finished hypothesis' log-probability is normalised by its length.
    LengthPenaltyKind {
        /// None: the raw sum (favours short summaries).
        None = "none",
        /// GNMT: `((5 + |Y|) / 6)^α`.
        Gnmt = "gnmt",
        /// The average log-probability.
        Avg = "avg",
        /// `|Y|^α`.
        Power = "power",
    }
);

named_enum!(
    /// What a hypothesis pays for how it covered the source.
    CoveragePenaltyKind {
        None = "none",
        /// GNMT: `−β Σ log min(cov, 1)` (source words never attended).
        Gnmt = "gnmt",
        /// OpenNMT's summary penalty: `β (Σ max(cov, 1) − |X|)` (words attended twice).
        Summary = "summary",
    }
);

named_enum!(
    /// Content selection: whether the pointer copies only what the model's selector marks.
    SelectorMode {
        /// On when the model has a selector.
        Auto = "auto",
        /// On; an error for a model without a selector.
        On = "on",
        Off = "off",
    }
);

/// A model's decoding defaults: `generation_config.json` in its folder (the format version is
/// added on writing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    pub beam: usize,
    /// Fewest tokens before `</s>` (when decoding, at most a quarter of the document's length).
    pub min_len: usize,
    /// Most tokens (when decoding, at most the document's length).
    pub max_len: usize,
    pub length_penalty: LengthPenaltyKind,
    /// α of the GNMT and power length penalties.
    pub alpha: f64,
    pub coverage_penalty: CoveragePenaltyKind,
    /// β of the coverage penalties.
    pub beta: f64,
    /// Block repeated n-grams of this size (0 = off).
    pub block_ngram: usize,
}

impl Default for GenerationConfig {
    /// The bundled CNN/DailyMail model's settings, tuned on its dev set (docs/ablation.md).
    fn default() -> Self {
        Self {
            beam: 4,
            min_len: 50,
            max_len: 100,
            length_penalty: LengthPenaltyKind::Gnmt,
            alpha: 2.0,
            coverage_penalty: CoveragePenaltyKind::None,
            beta: 0.0,
            block_ngram: 3,
        }
    }
}

impl GenerationConfig {
    /// Defaults for a model trained on summaries of these token lengths (before truncation):
    /// `min_len` at their 10th percentile, `max_len` at their 99th (within `[min_len + 1,
    /// MAX_LEN]`), beam 4, GNMT α = 1, trigram blocking (bigram for summaries under 20 tokens,
    /// where a repeated trigram is rare and a repeated bigram is the failure). An empty list
    /// gives [`GenerationConfig::default`].
    pub fn for_target_lengths(lengths: &[usize]) -> Self {
        if lengths.is_empty() {
            return Self::default();
        }
        let mut l = lengths.to_vec();
        l.sort_unstable();
        let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize];
        let min_len = q(0.10).min(MAX_LEN - 1);
        let max_len = q(0.99).clamp(min_len + 1, MAX_LEN);
        Self {
            beam: 4,
            min_len,
            max_len,
            length_penalty: LengthPenaltyKind::Gnmt,
            alpha: 1.0,
            coverage_penalty: CoveragePenaltyKind::None,
            beta: 0.0,
            block_ngram: if q(0.5) < 20 { 2 } else { 3 },
        }
    }

    /// Checks the file's values as [`DecodeOptions::resolve`] checks a request's.
    pub fn validate(&self) -> Result<()> {
        DecodeOptions::default().resolve(self).map(|_| ())
    }
}

/// What a caller asks for; `None` = the model's default ([`GenerationConfig`]). Build with
/// chained setters (`DecodeOptions::new().beam(2).max_len(30)`) or deserialize (unknown fields
/// are errors). Nothing is checked until [`DecodeOptions::resolve`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beam: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_penalty: Option<LengthPenaltyKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_penalty: Option<CoveragePenaltyKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_ngram: Option<usize>,
    /// Source tokens kept (default: the model's `max_source_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_src_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorMode>,
    /// ε: copy only tokens whose selection probability is at least this (default: the value
    /// stored with the selector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select_threshold: Option<f32>,
}

macro_rules! setters {
    ($($field:ident: $t:ty),+ $(,)?) => {
        $(
            #[doc = concat!("Sets `", stringify!($field), "`.")]
            pub fn $field(mut self, v: $t) -> Self {
                self.$field = Some(v);
                self
            }
        )+
    };
}

/// Decoding settings after merging and checking: what a search runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub beam: BeamConfig,
    /// Source tokens kept (`None` = the model's own length).
    pub max_src_len: Option<usize>,
    pub selector: SelectorMode,
    pub select_threshold: Option<f32>,
}

impl DecodeOptions {
    pub fn new() -> Self {
        Self::default()
    }

    setters!(
        beam: usize,
        min_len: usize,
        max_len: usize,
        length_penalty: LengthPenaltyKind,
        alpha: f64,
        coverage_penalty: CoveragePenaltyKind,
        beta: f64,
        block_ngram: usize,
        max_src_len: usize,
        selector: SelectorMode,
        select_threshold: f32,
    );

    /// `self` with every field `over` sets replaced by `over`'s (a request over a server's
    /// defaults).
    pub fn overlay(&self, over: &DecodeOptions) -> DecodeOptions {
        macro_rules! pick {
            ($($f:ident),+) => { DecodeOptions { $($f: over.$f.or(self.$f)),+ } };
        }
        pick!(
            beam,
            min_len,
            max_len,
            length_penalty,
            alpha,
            coverage_penalty,
            beta,
            block_ngram,
            max_src_len,
            selector,
            select_threshold
        )
    }

    /// Merges with a model's defaults and checks every value; the error names the field. A
    /// `max_len` given without `min_len` lowers the default `min_len` to it ("shorter").
    pub fn resolve(&self, d: &GenerationConfig) -> Result<Resolved> {
        let beam = self.beam.unwrap_or(d.beam);
        if !(1..=MAX_BEAM).contains(&beam) {
            return Err(Error::option(
                "beam",
                format!("must be between 1 and {MAX_BEAM}, got {beam}"),
            ));
        }
        let max_len = self.max_len.unwrap_or(d.max_len);
        if !(1..=MAX_LEN).contains(&max_len) {
            return Err(Error::option(
                "max_len",
                format!("must be between 1 and {MAX_LEN}, got {max_len}"),
            ));
        }
        let min_len = match (self.min_len, self.max_len) {
            (Some(m), _) => m,
            (None, Some(max)) => d.min_len.min(max),
            (None, None) => d.min_len,
        };
        if min_len > max_len {
            return Err(Error::option(
                "min_len",
                format!("{min_len} is above max_len {max_len}"),
            ));
        }
        let block = self.block_ngram.unwrap_or(d.block_ngram);
        if block > MAX_NGRAM {
            return Err(Error::option(
                "block_ngram",
                format!("must be between 0 and {MAX_NGRAM}, got {block}"),
            ));
        }
        let alpha = weight("alpha", self.alpha.unwrap_or(d.alpha))?;
        let beta = weight("beta", self.beta.unwrap_or(d.beta))?;
        if let Some(t) = self.select_threshold {
            if !(t.is_finite() && (0.0..1.0).contains(&t)) {
                return Err(Error::option(
                    "select_threshold",
                    format!("must be a number in [0, 1), got {t}"),
                ));
            }
        }
        if let Some(n) = self.max_src_len {
            if !(1..=MAX_SRC_LEN).contains(&n) {
                return Err(Error::option(
                    "max_src_len",
                    format!("must be between 1 and {MAX_SRC_LEN}, got {n}"),
                ));
            }
        }
        Ok(Resolved {
            beam: BeamConfig {
                beam,
                bos: abridge_text::vocab::BOS,
                eos: abridge_text::vocab::EOS,
                min_len,
                max_len,
                length_penalty: match self.length_penalty.unwrap_or(d.length_penalty) {
                    LengthPenaltyKind::None => LengthPenalty::None,
                    LengthPenaltyKind::Gnmt => LengthPenalty::Gnmt(alpha),
                    LengthPenaltyKind::Avg => LengthPenalty::Average,
                    LengthPenaltyKind::Power => LengthPenalty::Power(alpha),
                },
                coverage_penalty: match self.coverage_penalty.unwrap_or(d.coverage_penalty) {
                    CoveragePenaltyKind::None => CoveragePenalty::None,
                    CoveragePenaltyKind::Gnmt => CoveragePenalty::Gnmt(beta),
                    CoveragePenaltyKind::Summary => CoveragePenalty::Summary(beta),
                },
                block_ngram: block,
            },
            max_src_len: self.max_src_len,
            selector: self.selector.unwrap_or(SelectorMode::Auto),
            select_threshold: self.select_threshold,
        })
    }
}

fn weight(field: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && (0.0..=MAX_PENALTY_WEIGHT).contains(&v) {
        Ok(v)
    } else {
        Err(Error::option(
            field,
            format!("must be a number in [0, {MAX_PENALTY_WEIGHT}], got {v}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(o: DecodeOptions) -> String {
        o.resolve(&GenerationConfig::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_resolve_to_the_model_settings() {
        let r = DecodeOptions::new()
            .resolve(&GenerationConfig::default())
            .unwrap();
        assert_eq!((r.beam.beam, r.beam.min_len, r.beam.max_len), (4, 50, 100));
        assert_eq!(r.beam.length_penalty, LengthPenalty::Gnmt(2.0));
        assert_eq!(r.beam.block_ngram, 3);
    }

    #[test]
    fn a_max_len_alone_lowers_the_default_min_len() {
        let r = DecodeOptions::new()
            .max_len(20)
            .resolve(&GenerationConfig::default())
            .unwrap();
        assert_eq!((r.beam.min_len, r.beam.max_len), (20, 20));
        assert!(msg(DecodeOptions::new().min_len(30).max_len(20)).contains("`min_len`"));
    }

    #[test]
    fn every_bound_names_its_field() {
        assert_eq!(
            msg(DecodeOptions::new().beam(0)),
            "`beam`: must be between 1 and 16, got 0"
        );
        assert!(msg(DecodeOptions::new().beam(17)).starts_with("`beam`"));
        assert!(msg(DecodeOptions::new().max_len(0)).starts_with("`max_len`"));
        assert!(msg(DecodeOptions::new().max_len(401)).starts_with("`max_len`"));
        assert!(msg(DecodeOptions::new().block_ngram(11)).starts_with("`block_ngram`"));
        assert!(msg(DecodeOptions::new().alpha(f64::NAN)).starts_with("`alpha`"));
        assert!(msg(DecodeOptions::new().beta(-1.0)).starts_with("`beta`"));
        assert!(msg(DecodeOptions::new().select_threshold(1.0)).starts_with("`select_threshold`"));
        assert!(msg(DecodeOptions::new().max_src_len(0)).starts_with("`max_src_len`"));
    }

    #[test]
    fn names_parse_case_insensitively_and_errors_list_them() {
        assert_eq!(
            "GNMT".parse::<LengthPenaltyKind>(),
            Ok(LengthPenaltyKind::Gnmt)
        );
        assert_eq!(
            "x".parse::<CoveragePenaltyKind>().unwrap_err(),
            "unknown value \"x\"; expected one of none, gnmt, summary"
        );
        let o: DecodeOptions =
            serde_json::from_str(r#"{"length_penalty": "avg", "selector": "off"}"#).unwrap();
        assert_eq!(o.length_penalty, Some(LengthPenaltyKind::Avg));
        assert!(serde_json::from_str::<DecodeOptions>(r#"{"beem": 2}"#).is_err());
    }

    #[test]
    fn overlay_keeps_what_the_request_leaves_unset() {
        let server = DecodeOptions::new().beam(2).max_len(40);
        let req = DecodeOptions::new().max_len(30).alpha(1.0);
        let o = server.overlay(&req);
        assert_eq!((o.beam, o.max_len, o.alpha), (Some(2), Some(30), Some(1.0)));
    }

    #[test]
    fn target_lengths_give_defaults_around_them() {
        let subjects: Vec<usize> = (0..100).map(|i| 2 + i % 10).collect();
        let g = GenerationConfig::for_target_lengths(&subjects);
        assert_eq!((g.min_len, g.max_len, g.block_ngram), (3, 11, 2));
        g.validate().unwrap();
        assert_eq!(
            GenerationConfig::for_target_lengths(&[]),
            GenerationConfig::default()
        );
    }
}
