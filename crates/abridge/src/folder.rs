//! The model folder: what `abridge train` and `abridge export` write and what
//! [`crate::Summarizer::open`] reads, in the layout of the Hugging Face Hub.
//!
//! | file | content | required |
//! |---|---|---|
//! | `config.json` | the architecture ([`ModelConfig`]) and `model_type` | yes |
//! | `generation_config.json` | decoding defaults ([`GenerationConfig`]) | yes |
//! | `tokenizer_config.json` | how raw text becomes tokens ([`TokenizerConfig`]) | yes |
//! | `vocab.json` | the vocabulary (its own format and version) | yes |
//! | `model.safetensors` | weights, f32 or f16, PyTorch-style names (`encoder.weight_ih_l0`, …); metadata: each tensor's CRC-32 and the vocabulary's fingerprint, verified on load | yes |
//! | `selector.json` + `selector.safetensors` | the content selector ([`crate::selector_file`]) | no |
//! | `README.md` | a model card with YAML front matter ([`ModelCard`]) | no |
//!
//! Every JSON file carries `"abridge_format": 2`. A file that is missing, unreadable, of an older
//! format (run `abridge migrate DIR`) or of a newer one (upgrade Abridge) is an error naming it;
//! no setting is guessed from other files.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use abridge_model::{ModelConfig, Params, Selector};
use abridge_tensor::Rng;
use abridge_text::tokenize::Tokenizer;
use abridge_text::vocab::Vocab;
use safetensors::SafeTensors;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};
use crate::options::GenerationConfig;
use crate::selector_file::{self, SelectorFile};
use crate::tensors::{
    add_checksums, encode_tensors, fill_tensors, st_write_atomic, write_atomic, WeightType,
};

pub const CONFIG: &str = "config.json";
pub const GENERATION: &str = "generation_config.json";
pub const TOKENIZER: &str = "tokenizer_config.json";
pub const VOCAB: &str = "vocab.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const CARD: &str = "README.md";
/// The format of the folder's JSON files (`abridge_format`).
pub const FORMAT_VERSION: u32 = 2;
/// `model_type` in `config.json`.
pub const MODEL_TYPE: &str = "abridge-pointer-generator";
/// Metadata of `model.safetensors`.
pub const WEIGHTS_FORMAT: &str = "abridge-checkpoint";
pub const WEIGHTS_VERSION: &str = "1";
/// Metadata of `model.safetensors`: [`Vocab::fingerprint`] of the vocabulary it was trained with.
pub const VOCAB_FINGERPRINT: &str = "vocab_fingerprint";

/// How raw text becomes the model's tokens: `tokenizer_config.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// Lower-case text before tokenizing (the vocabulary has no capitals).
    pub lowercase: bool,
    /// Rewrite brackets and quotes into Penn Treebank forms (`-lrb-`, ``` `` ```), as the
    /// training corpus spelt them.
    pub ptb: bool,
    /// Source tokens the model was trained on; documents are cut there unless asked otherwise.
    pub max_source_tokens: usize,
}

impl TokenizerConfig {
    /// The settings of a model trained on text tokenized with `lowercase` into vocabulary
    /// `vocab`: lower-casing also when the corpus itself came lower-cased (a vocabulary with
    /// capitals in under 1 % of its entries), PTB forms when the vocabulary spells brackets
    /// `-lrb-` and has no `(`.
    pub fn for_training(vocab: &Vocab, lowercase: bool, max_source_tokens: usize) -> Self {
        let upper = vocab
            .tokens()
            .iter()
            .filter(|t| t.chars().any(char::is_uppercase))
            .count();
        Self {
            lowercase: lowercase || upper * 100 < vocab.len(),
            ptb: vocab.get("-lrb-").is_some() && vocab.get("(").is_none(),
            max_source_tokens,
        }
    }

    /// The word tokenizer these settings describe (raw text in).
    pub fn tokenizer(&self) -> Tokenizer {
        Tokenizer {
            lowercase: self.lowercase,
            pretokenized: false,
        }
    }

    /// Tokens of raw text as the model's training data spelt them (not cut).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        self.tokenize_with(&self.tokenizer(), text)
    }

    /// As [`TokenizerConfig::tokenize`] with another word tokenizer (pre-tokenized input).
    pub fn tokenize_with(&self, tok: &Tokenizer, text: &str) -> Vec<String> {
        let mut t = tok.tokenize(text);
        if self.ptb {
            abridge_text::tokenize::to_ptb(&mut t);
        }
        t
    }
}

/// `config.json`'s extra field beside the architecture.
#[derive(Serialize, Deserialize)]
struct ConfigFile {
    model_type: String,
    #[serde(flatten)]
    model: ModelConfig,
}

/// Parses one of the folder's JSON files, checking `abridge_format`; `path` names it in errors.
pub fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(path, format!("not valid JSON: {e}")))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| Error::invalid(path, "not a JSON object"))?;
    let dir = path
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match obj.remove("abridge_format").map(|f| f.as_u64()) {
        None => {
            return Err(Error::invalid(
                path,
                format!(
                "written by an older Abridge (no `abridge_format`); run `abridge migrate {dir}` \
                     to bring the folder to format {FORMAT_VERSION}"
            ),
            ))
        }
        Some(Some(n)) if n == FORMAT_VERSION as u64 => {}
        Some(Some(n)) if n < FORMAT_VERSION as u64 => {
            return Err(Error::invalid(
                path,
                format!(
                    "model folder format {n} is older than this build's ({FORMAT_VERSION}); run \
                     `abridge migrate {dir}`"
                ),
            ))
        }
        Some(Some(n)) => {
            return Err(Error::invalid(
                path,
                format!(
                    "model folder format {n} is newer than this build reads ({FORMAT_VERSION}); \
                     upgrade Abridge"
                ),
            ))
        }
        Some(None) => return Err(Error::invalid(path, "`abridge_format` is not a number")),
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        if at == "." || at.is_empty() {
            Error::invalid(path, inner.to_string())
        } else {
            Error::invalid(path, format!("`{at}`: {inner}"))
        }
    })
}

/// `value` as one of the folder's JSON files (pretty, `abridge_format` first).
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::Map::new();
    out.insert("abridge_format".into(), FORMAT_VERSION.into());
    match serde_json::to_value(value).expect("serialises") {
        serde_json::Value::Object(m) => out.extend(m),
        other => panic!("a model folder file is an object, got {other}"),
    }
    let mut bytes = serde_json::to_vec_pretty(&out).expect("serialises");
    bytes.push(b'\n');
    bytes
}

/// Everything in a model folder but the weights and the selector.
#[derive(Clone, Debug)]
pub struct FolderMeta {
    pub config: ModelConfig,
    pub generation: GenerationConfig,
    pub tokenizer: TokenizerConfig,
    pub vocab: Vocab,
}

/// A whole model folder, read.
pub struct ModelFolder {
    pub meta: FolderMeta,
    pub params: Params<f32>,
    pub selector: Option<(SelectorFile, Selector<f32>)>,
}

impl ModelFolder {
    /// Reads model folder `dir` (every required file; the selector if present).
    pub fn read(dir: &Path) -> Result<Self> {
        Self::from_files(dir, |name| {
            let p = dir.join(name);
            match std::fs::read(&p) {
                Ok(b) => Ok(Some(Cow::Owned(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(&p)(e)),
            }
        })
    }

    /// A model folder from its files' bytes, `get(name)` giving each (`None`: absent), e.g.
    /// embedded in a binary; `dir` names them in errors.
    pub fn from_files<'a>(
        dir: &Path,
        get: impl Fn(&str) -> Result<Option<Cow<'a, [u8]>>>,
    ) -> Result<Self> {
        let need = |name: &str| -> Result<Cow<'a, [u8]>> {
            get(name)?.ok_or_else(|| {
                Error::invalid(
                    &dir.join(name),
                    "missing: not a model folder of this Abridge (a folder written by \
                     `abridge train` or `abridge export`; an older one is updated with \
                     `abridge migrate`)",
                )
            })
        };
        // config.json first: a folder of an older format fails on it, naming `abridge migrate`.
        let meta = meta_from_bytes(
            dir,
            &need(CONFIG)?,
            &need(GENERATION)?,
            &need(TOKENIZER)?,
            &need(VOCAB)?,
        )?;
        let params = params_from_bytes(&need(WEIGHTS)?, &dir.join(WEIGHTS), &meta)?;
        let selector = match get(selector_file::CONFIG)? {
            None => None,
            Some(json) => {
                let weights = get(selector_file::WEIGHTS)?.ok_or_else(|| {
                    Error::invalid(
                        &dir.join(selector_file::WEIGHTS),
                        "missing (selector.json is there)",
                    )
                })?;
                Some(selector_file::from_bytes(
                    dir,
                    &json,
                    &weights,
                    &meta.vocab,
                    2 * meta.config.hidden,
                )?)
            }
        };
        Ok(Self {
            meta,
            params,
            selector,
        })
    }
}

/// The four JSON files of a folder, parsed and checked against each other.
pub fn meta_from_bytes(
    dir: &Path,
    config: &[u8],
    generation: &[u8],
    tokenizer: &[u8],
    vocab: &[u8],
) -> Result<FolderMeta> {
    let cfg_path = dir.join(CONFIG);
    let c: ConfigFile = parse_json(&cfg_path, config)?;
    if c.model_type != MODEL_TYPE {
        return Err(Error::invalid(
            &cfg_path,
            format!(
                "model_type {:?} is not one this build runs ({MODEL_TYPE:?})",
                c.model_type
            ),
        ));
    }
    c.model
        .validate()
        .map_err(|m| Error::invalid(&cfg_path, m))?;
    let gen_path = dir.join(GENERATION);
    let generation: GenerationConfig = parse_json(&gen_path, generation)?;
    generation
        .validate()
        .map_err(|e| Error::invalid(&gen_path, e.to_string()))?;
    let tok_path = dir.join(TOKENIZER);
    let tokenizer: TokenizerConfig = parse_json(&tok_path, tokenizer)?;
    if tokenizer.max_source_tokens == 0 {
        return Err(Error::invalid(
            &tok_path,
            "max_source_tokens must be at least 1",
        ));
    }
    let vocab = Vocab::from_json(vocab, &dir.join(VOCAB).display().to_string())?;
    if vocab.len() != c.model.vocab {
        return Err(Error::invalid(
            dir,
            format!(
                "vocab.json has {} entries but config.json says the model has {}",
                vocab.len(),
                c.model.vocab
            ),
        ));
    }
    Ok(FolderMeta {
        config: c.model,
        generation,
        tokenizer,
        vocab,
    })
}

/// The params of the shapes `meta.config` gives from the bytes of a `model.safetensors` (f32 or
/// f16), `path` naming them in errors. Each tensor's checksum is verified, and the weights must
/// have been trained with `meta.vocab` (the file records [`Vocab::fingerprint`] of its
/// vocabulary under `vocab_fingerprint`; files written before that are not checked).
pub fn params_from_bytes(bytes: &[u8], path: &Path, meta: &FolderMeta) -> Result<Params<f32>> {
    let cfg = &meta.config;
    let (_, st_meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::invalid(path, format!("not a safetensors file: {e}")))?;
    let m = st_meta.metadata().clone().unwrap_or_default();
    if m.get("format").map(String::as_str) != Some(WEIGHTS_FORMAT) {
        return Err(Error::invalid(
            path,
            format!("not Abridge weights (metadata `format` is not `{WEIGHTS_FORMAT}`)"),
        ));
    }
    if m.get("version").map(String::as_str) != Some(WEIGHTS_VERSION) {
        return Err(Error::invalid(
            path,
            format!(
                "weights version {:?} is not supported (this build reads {WEIGHTS_VERSION})",
                m.get("version")
            ),
        ));
    }
    if let Some(fp) = m.get(VOCAB_FINGERPRINT) {
        let ours = meta.vocab.fingerprint();
        if *fp != ours {
            return Err(Error::invalid(
                path,
                format!(
                    "these weights were trained with another vocabulary ({fp}) than the folder's \
                     vocab.json ({ours}): the files do not belong together"
                ),
            ));
        }
    }
    // Sizes are checked against the file before anything is allocated for them: a config.json
    // claiming `hidden: 1000000000` is an error, not an allocation failure.
    let held: usize = st_meta
        .tensors()
        .values()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    let gates = 3usize; // at least the GRU's three blocks per recurrent weight
    let needed = cfg
        .vocab
        .saturating_mul(cfg.emb)
        .saturating_add(
            cfg.enc_layers
                .saturating_mul(gates)
                .saturating_mul(cfg.hidden.saturating_mul(cfg.hidden)),
        )
        .saturating_add(2usize.saturating_mul(cfg.hidden).saturating_mul(cfg.attn));
    if needed > held {
        return Err(Error::invalid(
            path,
            format!(
                "config.json's sizes (vocab {}, emb {}, hidden {}, attn {}, {} encoder layer(s)) \
                 need at least {needed} weights but this file holds {held}: the config does not \
                 belong to these weights",
                cfg.vocab, cfg.emb, cfg.hidden, cfg.attn, cfg.enc_layers
            ),
        ));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::invalid(path, e.to_string()))?;
    let mut params = Params::<f32>::init(cfg, &mut Rng::new(0));
    fill_tensors(&st, &m, path, params.tensors_mut())?;
    // A diverged run's weights load but cannot decode: refused here, by tensor.
    for (name, _, t) in params.tensors_mut() {
        if let Some(k) = t.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(
                path,
                format!(
                    "tensor `{name}` holds a non-finite value ({} at index {k}); the model \
                     cannot decode (a diverged training run?)",
                    t[k]
                ),
            ));
        }
    }
    Ok(params)
}

/// Reads `dir`'s metadata and weights (not the selector): what resuming training needs.
pub fn read_model(dir: &Path) -> Result<(FolderMeta, Params<f32>)> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(io(&p))
    };
    let meta = meta_from_bytes(
        dir,
        &read(CONFIG)?,
        &read(GENERATION)?,
        &read(TOKENIZER)?,
        &read(VOCAB)?,
    )?;
    let params = params_from_bytes(&read(WEIGHTS)?, &dir.join(WEIGHTS), &meta)?;
    Ok((meta, params))
}

/// Writes the model's required files into `dir` (created if needed): weights in `dtype`, then
/// the JSON files, each through a temporary name and a rename.
pub fn write_model(
    dir: &Path,
    meta: &FolderMeta,
    params: &mut Params<f32>,
    dtype: WeightType,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tensors = encode_tensors(params.tensors_mut(), dtype);
    let st_meta = HashMap::from([
        ("format".to_string(), WEIGHTS_FORMAT.to_string()),
        ("version".to_string(), WEIGHTS_VERSION.to_string()),
        (VOCAB_FINGERPRINT.to_string(), meta.vocab.fingerprint()),
    ]);
    st_write_atomic(&dir.join(WEIGHTS), tensors, st_meta)?;
    write_meta(dir, meta)
}

/// Writes the four JSON files of `meta` into `dir` (config.json last).
pub fn write_meta(dir: &Path, meta: &FolderMeta) -> Result<()> {
    meta.vocab.save(&dir.join(VOCAB))?;
    write_atomic(&dir.join(TOKENIZER), &to_json(&meta.tokenizer))?;
    write_atomic(&dir.join(GENERATION), &to_json(&meta.generation))?;
    let cfg = ConfigFile {
        model_type: MODEL_TYPE.into(),
        model: meta.config.clone(),
    };
    write_atomic(&dir.join(CONFIG), &to_json(&cfg))
}

/// `path` itself if it holds a model, else the folder its pointer file `which` (`best`,
/// `latest`) names.
pub fn resolve(path: &Path, which: &str) -> Result<PathBuf> {
    if path.join(WEIGHTS).is_file() {
        return Ok(path.into());
    }
    let ptr = path.join(which);
    let name = std::fs::read_to_string(&ptr).map_err(io(&ptr))?;
    let dir = path.join(name.trim());
    if !dir.exists() {
        // A save killed while replacing this checkpoint: the previous copy (`NAME.old`), else
        // the complete new one (`NAME.tmp`, whose `state.json` or weights are written last).
        for suffix in ["old", "tmp"] {
            let alt = path.join(format!("{}.{suffix}", name.trim()));
            if alt.join(WEIGHTS).is_file() && alt.join(CONFIG).is_file() {
                return Ok(alt);
            }
        }
    }
    Ok(dir)
}

/// The folder holding the weights: `path` itself, or a run folder's `best` (else `latest`)
/// checkpoint.
pub fn model_dir(path: &Path) -> Result<PathBuf> {
    resolve(path, "best")
        .or_else(|_| resolve(path, "latest"))
        .map_err(|_| {
            Error::invalid(
                path,
                "neither a model folder (no model.safetensors) nor a run folder with a `best` or \
                 `latest` checkpoint",
            )
        })
}

/// A model card (`README.md`): YAML front matter as the Hugging Face Hub reads it, then text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelCard {
    pub name: String,
    /// Dataset ids (`cnn_dailymail`, or a local corpus's name).
    pub datasets: Vec<String>,
    /// The dataset and split the results were measured on (`cnn_dailymail`, `validation`).
    pub eval_dataset: Option<(String, String)>,
    /// `(type, display name, value)`, e.g. `("rouge1", "ROUGE-1", 41.40)`.
    pub results: Vec<(String, String, f64)>,
    /// Markdown after the front matter.
    pub body: String,
}

impl ModelCard {
    /// The card's text.
    pub fn render(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string");
        let mut y = String::from("---\nlibrary_name: abridge\npipeline_tag: summarization\n");
        y += "tags:\n- summarization\n- pointer-generator\n- rnn\n";
        if !self.datasets.is_empty() {
            y += "datasets:\n";
            for d in &self.datasets {
                y += &format!("- {}\n", q(d));
            }
        }
        y += "metrics:\n- rouge\n";
        if let (Some((ds, split)), false) = (&self.eval_dataset, self.results.is_empty()) {
            y += &format!(
                "model-index:\n- name: {}\n  results:\n  - task:\n      type: summarization\n      \
                 name: Summarization\n    dataset:\n      name: {}\n      type: {}\n      split: {}\n    \
                 metrics:\n",
                q(&self.name),
                q(ds),
                q(ds),
                q(split)
            );
            for (t, n, v) in &self.results {
                y += &format!(
                    "    - type: {}\n      name: {}\n      value: {v:.2}\n",
                    q(t),
                    q(n)
                );
            }
        }
        y += "---\n\n";
        y + &self.body
    }

    /// Writes `dir/README.md`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(CARD), self.render().as_bytes())
    }
}

/// What [`migrate`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Migration {
    /// Files written.
    pub written: Vec<String>,
    /// The settings it had to infer from the old folder (to check).
    pub inferred: Vec<String>,
}

/// Brings a model (or checkpoint) folder of format 1 (config.json with `"version": 1`, tokenizer
/// settings in a `manifest.json` here or in the run folder above, decoding defaults in the CLI)
/// to the current format: writes `tokenizer_config.json` and `generation_config.json` (the
/// decoding defaults format-1 models were decoded with), then a new `config.json`. The
/// vocabulary and the weights' values are untouched; weights files without checksums get them
/// (and the vocabulary's fingerprint). A folder already current is left as it is.
pub fn migrate(dir: &Path) -> Result<Migration> {
    let cfg_path = dir.join(CONFIG);
    let bytes = std::fs::read(&cfg_path).map_err(io(&cfg_path))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(&cfg_path, format!("not valid JSON: {e}")))?;
    if v.get("abridge_format").is_some() {
        parse_json::<ConfigFile>(&cfg_path, &bytes)?;
        return Ok(Migration {
            written: add_integrity(dir, &Vocab::load(&dir.join(VOCAB))?)?,
            inferred: vec![],
        });
    }
    let old: abridge_model::config::ModelConfigFile = serde_json::from_value(v)
        .map_err(|e| Error::invalid(&cfg_path, format!("not a format-1 model config: {e}")))?;
    let config = ModelConfig::try_from(&old).map_err(|m| Error::invalid(&cfg_path, m))?;
    let vocab_path = dir.join(VOCAB);
    let vocab = Vocab::load(&vocab_path)?;
    let manifest = [dir.join("manifest.json"), dir.join("../manifest.json")]
        .into_iter()
        .find(|p| p.is_file())
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let lowercase = manifest
        .as_ref()
        .and_then(|m| m["data"]["tokenizer"]["lowercase"].as_bool())
        .unwrap_or(true);
    let max_source_tokens = manifest
        .as_ref()
        .and_then(|m| {
            m["train"]["max_src_len"]
                .as_u64()
                .or_else(|| m["run"]["train"]["max_src_len"].as_u64())
        })
        .map(|n| n as usize)
        .unwrap_or(400);
    // Format 1 guessed these at every load; migration decides them once, as it did.
    let tokenizer = TokenizerConfig::for_training(&vocab, lowercase, max_source_tokens);
    let inferred = vec![
        format!(
            "lowercase = {} (the run's tokenizer setting, or a vocabulary without capitals)",
            tokenizer.lowercase
        ),
        format!(
            "ptb = {} (the vocabulary spells brackets as -lrb-)",
            tokenizer.ptb
        ),
        format!("max_source_tokens = {max_source_tokens} (the run's max_src_len, else 400)"),
    ];
    let meta = FolderMeta {
        config,
        generation: GenerationConfig::default(),
        tokenizer,
        vocab,
    };
    write_atomic(&dir.join(TOKENIZER), &to_json(&meta.tokenizer))?;
    write_atomic(&dir.join(GENERATION), &to_json(&meta.generation))?;
    let cfg = ConfigFile {
        model_type: MODEL_TYPE.into(),
        model: meta.config.clone(),
    };
    write_atomic(&cfg_path, &to_json(&cfg))?;
    let mut written = vec![TOKENIZER.into(), GENERATION.into(), CONFIG.into()];
    written.extend(add_integrity(dir, &meta.vocab)?);
    Ok(Migration { written, inferred })
}

/// Adds checksums (and, to the weights, the vocabulary's fingerprint) to a folder's safetensors
/// files written before they existed; returns the files rewritten.
fn add_integrity(dir: &Path, vocab: &Vocab) -> Result<Vec<String>> {
    let mut written = vec![];
    if add_checksums(
        &dir.join(WEIGHTS),
        &[(VOCAB_FINGERPRINT, vocab.fingerprint())],
    )? {
        written.push(WEIGHTS.to_string());
    }
    let sel = dir.join(selector_file::WEIGHTS);
    if sel.is_file() && add_checksums(&sel, &[])? {
        written.push(selector_file::WEIGHTS.to_string());
    }
    Ok(written)
}
