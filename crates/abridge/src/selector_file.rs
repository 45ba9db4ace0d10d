//! The content selector inside a model folder: two files beside the summarizer's.
//!
//! | file | content |
//! |---|---|
//! | `selector.json` | [`SelectorFile`]: format, version, sizes, the vocabulary's fingerprint, the decoding threshold, how it was trained |
//! | `selector.safetensors` | weights under [`Selector::tensors_mut`] names (`embedding.weight`, `rnn.weight_ih_l0`, …, `out.bias`), f32 or f16 |
//!
//! A selector is tied to the summarizer's vocabulary (ids are shared): loading refuses one whose
//! fingerprint or size differs. Both files are written through a temporary name and a rename,
//! weights first, so a reader sees either the old pair or the new one's weights before its JSON.

use std::collections::HashMap;
use std::path::Path;

use abridge_model::{Selector, SelectorConfig};
use abridge_tensor::Rng;
use abridge_text::vocab::Vocab;
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};
use crate::tensors::{encode_tensors, fill_tensors, st_write_atomic, write_atomic, WeightType};

fn invalid(path: &Path, msg: impl Into<String>) -> Error {
    Error::invalid(path, msg)
}

pub const CONFIG: &str = "selector.json";
pub const WEIGHTS: &str = "selector.safetensors";
const FORMAT: &str = "abridge-selector";
const VERSION: u32 = 1;
/// Ids below this are the special tokens (`<pad>`, `<unk>`, `<s>`, `</s>`); words follow by
/// decreasing frequency.
const FIRST_WORD: u32 = 4;

/// `selector.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectorFile {
    pub format: String,
    pub version: u32,
    #[serde(flatten)]
    pub sizes: SelectorConfig,
    /// [`Vocab::fingerprint`] of the summarizer's vocabulary it was trained with.
    pub vocab_fingerprint: String,
    /// `ε`: copying is restricted to source tokens with selection probability at least this.
    pub threshold: f32,
    /// Source tokens it was trained on (documents are cut there, as the summarizer's).
    pub max_src_len: usize,
    /// The vocabulary's `N` most frequent words (ids `4..4+N`: function words, punctuation)
    /// stay copyable whatever their selection probability; a lone one is never a label.
    #[serde(default)]
    pub always_copy_top: u32,
    /// How it was trained (data, steps, dev metrics): a record, not read back.
    #[serde(default)]
    pub training: serde_json::Value,
}

impl SelectorFile {
    /// Whether vocabulary id `id` is one of the always-copyable most frequent words.
    pub fn always_copy(&self, id: u32) -> bool {
        id >= FIRST_WORD && id < FIRST_WORD + self.always_copy_top
    }

    pub fn new(
        sizes: SelectorConfig,
        vocab: &Vocab,
        threshold: f32,
        max_src_len: usize,
        always_copy_top: u32,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            sizes,
            vocab_fingerprint: vocab.fingerprint(),
            threshold,
            max_src_len,
            always_copy_top,
            training: serde_json::Value::Null,
        }
    }
}

/// Writes `selector.safetensors` and `selector.json` into the model folder `dir`.
pub fn write(
    dir: &Path,
    file: &SelectorFile,
    sel: &mut Selector<f32>,
    dtype: WeightType,
) -> Result<()> {
    let tensors = encode_tensors(sel.tensors_mut(), dtype);
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
    ]);
    st_write_atomic(&dir.join(WEIGHTS), tensors, meta)?;
    let json = serde_json::to_vec_pretty(file).expect("selector file serialises");
    write_atomic(&dir.join(CONFIG), &json)
}

/// The selector of model folder `dir`, `None` when it has none (no `selector.json`);
/// `encoder_width` is the summarizer's `2H` (what a feature-input selector reads).
pub fn read(
    dir: &Path,
    vocab: &Vocab,
    encoder_width: usize,
) -> Result<Option<(SelectorFile, Selector<f32>)>> {
    let cfg = dir.join(CONFIG);
    if !cfg.exists() {
        return Ok(None);
    }
    let json = std::fs::read(&cfg).map_err(io(&cfg))?;
    let w = dir.join(WEIGHTS);
    let weights = std::fs::read(&w).map_err(io(&w))?;
    from_bytes(dir, &json, &weights, vocab, encoder_width).map(Some)
}

/// A selector from the bytes of its two files (e.g. embedded in the binary), checked against
/// the summarizer's vocabulary; `dir` names them in errors.
pub fn from_bytes(
    dir: &Path,
    json: &[u8],
    weights: &[u8],
    vocab: &Vocab,
    encoder_width: usize,
) -> Result<(SelectorFile, Selector<f32>)> {
    let cfg_path = dir.join(CONFIG);
    let f: SelectorFile = serde_json::from_slice(json)
        .map_err(|e| invalid(&cfg_path, format!("invalid selector config: {e}")))?;
    if f.format != FORMAT || f.version != VERSION {
        return Err(invalid(
            &cfg_path,
            format!(
                "format {:?} version {} is not a selector this build reads ({FORMAT} {VERSION})",
                f.format, f.version
            ),
        ));
    }
    f.sizes.validate().map_err(|m| invalid(&cfg_path, m))?;
    if f.sizes.vocab != vocab.len() || f.vocab_fingerprint != vocab.fingerprint() {
        return Err(invalid(
            &cfg_path,
            format!(
                "the selector was trained with another vocabulary ({} entries, {}) than this \
                 model's ({} entries, {}); train one for this model with `abridge selector train`",
                f.sizes.vocab,
                f.vocab_fingerprint,
                vocab.len(),
                vocab.fingerprint()
            ),
        ));
    }
    if f.sizes.features != 0 && f.sizes.features != encoder_width {
        return Err(invalid(
            &cfg_path,
            format!(
                "the selector reads {} encoder features per token but this model's encoder gives \
                 {encoder_width}; train one for this model with `abridge selector train`",
                f.sizes.features
            ),
        ));
    }
    if !(f.threshold.is_finite() && (0.0..1.0).contains(&f.threshold)) {
        return Err(invalid(
            &cfg_path,
            format!("threshold {} is outside [0, 1)", f.threshold),
        ));
    }
    let w_path = dir.join(WEIGHTS);
    let (_, meta) = SafeTensors::read_metadata(weights)
        .map_err(|e| invalid(&w_path, format!("not a safetensors file: {e}")))?;
    let m = meta.metadata().clone().unwrap_or_default();
    if m.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(invalid(
            &w_path,
            format!("not a selector (metadata `format` is not `{FORMAT}`)"),
        ));
    }
    let st = SafeTensors::deserialize(weights).map_err(|e| invalid(&w_path, e.to_string()))?;
    let mut sel = Selector::<f32>::init(f.sizes, &mut Rng::new(0));
    fill_tensors(&st, &m, &w_path, sel.tensors_mut())?;
    if let Some((name, _, _)) = sel
        .tensors_mut()
        .into_iter()
        .find(|(_, _, d)| d.iter().any(|x| !x.is_finite()))
    {
        return Err(invalid(
            &w_path,
            format!("tensor `{name}` has non-finite values"),
        ));
    }
    Ok((f, sel))
}
