//! Vocabularies: built from token counts, saved and loaded as versioned JSON; and the per-example
//! extended vocabulary that lets a pointer-generator emit source words outside the vocabulary
//! (See, Liu & Manning 2017).

use std::path::Path;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Padding (id 0).
pub const PAD: u32 = 0;
/// Unknown word (id 1).
pub const UNK: u32 = 1;
/// Start of a target sequence (id 2).
pub const BOS: u32 = 2;
/// End of a target sequence (id 3).
pub const EOS: u32 = 3;
/// The special tokens, in id order.
pub const SPECIALS: [&str; 4] = ["<pad>", "<unk>", "<s>", "</s>"];

const FORMAT: &str = "abridge-vocab";
const VERSION: u32 = 1;

/// Limits applied when building.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VocabConfig {
    /// Most tokens kept, specials included (`None`: no limit).
    pub max_size: Option<usize>,
    /// Fewest occurrences a token needs.
    pub min_count: u64,
}

impl Default for VocabConfig {
    /// 50,000 tokens (See et al. 2017), no minimum count.
    fn default() -> Self {
        Self {
            max_size: Some(50_000),
            min_count: 1,
        }
    }
}

/// Why a vocabulary file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not an Abridge vocabulary: {msg}")]
    Parse { path: String, msg: String },
    #[error("{path}: vocabulary format version {found} is not supported (this build reads version {VERSION}); rebuild it with `abridge vocab build`")]
    Version { path: String, found: u32 },
    #[error("{path}: {msg}")]
    Invalid { path: String, msg: String },
}

#[derive(Serialize, Deserialize)]
struct VocabFile {
    format: String,
    version: u32,
    specials: Vec<String>,
    tokens: Vec<String>,
    counts: Vec<u64>,
    /// How the corpus was tokenized when the vocabulary was counted (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokenizer: Option<crate::tokenize::Tokenizer>,
}

/// Token ↔ id. Ids `0..4` are [`SPECIALS`]; the rest are by decreasing count (ties alphabetical).
#[derive(Clone, Debug, PartialEq)]
pub struct Vocab {
    tokens: Vec<String>,
    counts: Vec<u64>,
    index: FxHashMap<String, u32>,
    tokenizer: Option<crate::tokenize::Tokenizer>,
}

impl Vocab {
    /// Builds from counts; specials present in `counts` are not duplicated.
    pub fn from_counts(counts: &FxHashMap<String, u64>, cfg: VocabConfig) -> Self {
        let mut items: Vec<(&String, u64)> = counts
            .iter()
            .filter(|(t, &c)| c >= cfg.min_count && !SPECIALS.contains(&t.as_str()))
            .map(|(t, &c)| (t, c))
            .collect();
        items.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        if let Some(max) = cfg.max_size {
            items.truncate(max.saturating_sub(SPECIALS.len()));
        }
        let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
        let mut cs = vec![0; SPECIALS.len()];
        for (t, c) in items {
            tokens.push(t.clone());
            cs.push(c);
        }
        Self::from_parts(tokens, cs)
    }

    fn from_parts(tokens: Vec<String>, counts: Vec<u64>) -> Self {
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Self {
            tokens,
            counts,
            index,
            tokenizer: None,
        }
    }

    /// The vocabulary, recording that its corpus was tokenized with `tok` (saved with it).
    pub fn with_tokenizer(mut self, tok: crate::tokenize::Tokenizer) -> Self {
        self.tokenizer = Some(tok);
        self
    }

    /// How the corpus was tokenized when this vocabulary was counted, if recorded.
    pub fn tokenizer(&self) -> Option<crate::tokenize::Tokenizer> {
        self.tokenizer
    }

    /// Number of ids, specials included (`V`).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of `token`, if known.
    pub fn get(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// The id of `token`, or [`UNK`].
    pub fn id(&self, token: &str) -> u32 {
        self.get(token).unwrap_or(UNK)
    }

    /// The token of an in-vocabulary id.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// How often the token of `id` occurred in the corpus it was built from (0 for specials).
    pub fn count(&self, id: u32) -> u64 {
        self.counts.get(id as usize).copied().unwrap_or(0)
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// `fnv1a64:…` of the tokens in id order (each followed by a newline): two vocabularies with
    /// the same fingerprint map every token to the same id.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for t in &self.tokens {
            for &b in t.as_bytes().iter().chain(b"\n") {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("fnv1a64:{h:016x}")
    }

    pub fn encode<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<u32> {
        tokens.iter().map(|t| self.id(t.as_ref())).collect()
    }

    /// Writes the vocabulary atomically (a temporary file renamed over `path`).
    pub fn save(&self, path: &Path) -> Result<(), VocabError> {
        let file = VocabFile {
            format: FORMAT.into(),
            version: VERSION,
            specials: SPECIALS.iter().map(|s| s.to_string()).collect(),
            tokens: self.tokens.clone(),
            counts: self.counts.clone(),
            tokenizer: self.tokenizer,
        };
        let io = |source| VocabError::Io {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(&file).expect("serialising a vocabulary"),
        )
        .map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a vocabulary written by [`Vocab::save`], checking its format and version.
    pub fn load(path: &Path) -> Result<Self, VocabError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| VocabError::Io {
            path: p.clone(),
            source,
        })?;
        Self::from_json(&bytes, &p)
    }

    /// Parses the bytes of a file written by [`Vocab::save`]; `name` is where they came from
    /// (for errors).
    pub fn from_json(bytes: &[u8], name: &str) -> Result<Self, VocabError> {
        let p = name.to_string();
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| VocabError::Parse {
                path: p.clone(),
                msg: e.to_string(),
            })?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(VocabError::Parse {
                path: p,
                msg: format!("missing \"format\": \"{FORMAT}\""),
            });
        }
        let found = v.get("version").and_then(|x| x.as_u64()).unwrap_or(0) as u32;
        if found != VERSION {
            return Err(VocabError::Version { path: p, found });
        }
        let f: VocabFile = serde_json::from_value(v).map_err(|e| VocabError::Parse {
            path: p.clone(),
            msg: e.to_string(),
        })?;
        if f.tokens.len() != f.counts.len() {
            return Err(VocabError::Invalid {
                path: p,
                msg: format!("{} tokens but {} counts", f.tokens.len(), f.counts.len()),
            });
        }
        if f.tokens.len() < SPECIALS.len() || f.tokens[..SPECIALS.len()] != SPECIALS {
            return Err(VocabError::Invalid {
                path: p,
                msg: format!("the first tokens must be the specials {SPECIALS:?}"),
            });
        }
        let mut vocab = Self::from_parts(f.tokens, f.counts);
        vocab.tokenizer = f.tokenizer;
        if vocab.index.len() != vocab.tokens.len() {
            return Err(VocabError::Invalid {
                path: p,
                msg: "a token appears twice".into(),
            });
        }
        Ok(vocab)
    }
}

/// A source text's ids over the vocabulary extended by its own out-of-vocabulary words: the k-th
/// distinct OOV word gets id `V + k`, so a pointer-generator can copy it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extended {
    /// `[S]` source ids in the extended vocabulary.
    pub src: Vec<u32>,
    /// The OOV words, in order of first appearance; word `k` has id `V + k`.
    pub oovs: Vec<String>,
}

impl Extended {
    /// Extends `vocab` by the OOV words of `src`.
    pub fn new<S: AsRef<str>>(vocab: &Vocab, src: &[S]) -> Self {
        let mut oovs: Vec<String> = Vec::new();
        let ids = src
            .iter()
            .map(|t| {
                let t = t.as_ref();
                vocab.get(t).unwrap_or_else(|| {
                    let k = oovs.iter().position(|o| o == t).unwrap_or_else(|| {
                        oovs.push(t.to_string());
                        oovs.len() - 1
                    });
                    (vocab.len() + k) as u32
                })
            })
            .collect();
        Self { src: ids, oovs }
    }

    /// Target ids for training the pointer: in-vocabulary words as usual, OOV words that occur in
    /// the source as their extended id, other OOV words as [`UNK`].
    pub fn target<S: AsRef<str>>(&self, vocab: &Vocab, tgt: &[S]) -> Vec<u32> {
        tgt.iter()
            .map(|t| {
                let t = t.as_ref();
                vocab.get(t).unwrap_or_else(|| {
                    self.oovs
                        .iter()
                        .position(|o| o == t)
                        .map_or(UNK, |k| (vocab.len() + k) as u32)
                })
            })
            .collect()
    }

    /// The word of an extended id (`None` past `V + #oovs`).
    pub fn word<'a>(&'a self, vocab: &'a Vocab, id: u32) -> Option<&'a str> {
        vocab.token(id).or_else(|| {
            self.oovs
                .get((id as usize).checked_sub(vocab.len())?)
                .map(String::as_str)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(words: &[(&str, u64)]) -> FxHashMap<String, u64> {
        words.iter().map(|(w, c)| (w.to_string(), *c)).collect()
    }

    #[test]
    fn build_orders_by_count_then_alphabet_and_applies_limits() {
        let c = counts(&[
            ("the", 10),
            ("cat", 3),
            ("bat", 3),
            ("rare", 1),
            ("<unk>", 99),
        ]);
        let v = Vocab::from_counts(
            &c,
            VocabConfig {
                max_size: Some(7),
                min_count: 2,
            },
        );
        assert_eq!(
            v.tokens(),
            ["<pad>", "<unk>", "<s>", "</s>", "the", "bat", "cat"]
        );
        assert_eq!(v.id("rare"), UNK);
        assert_eq!(v.count(4), 10);
        let v = Vocab::from_counts(
            &c,
            VocabConfig {
                max_size: Some(5),
                min_count: 1,
            },
        );
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn save_load_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vocab::from_counts(
            &counts(&[("a", 2), ("b", 1), ("ü", 5)]),
            VocabConfig::default(),
        );
        let p = dir.path().join("v.json");
        v.save(&p).unwrap();
        assert_eq!(Vocab::load(&p).unwrap(), v);
        std::fs::write(&p, r#"{"format": "abridge-vocab", "version": 99, "specials": [], "tokens": [], "counts": []}"#).unwrap();
        assert!(matches!(
            Vocab::load(&p),
            Err(VocabError::Version { found: 99, .. })
        ));
        std::fs::write(&p, "{not json").unwrap();
        assert!(Vocab::load(&p)
            .unwrap_err()
            .to_string()
            .contains("not an Abridge vocabulary"));
        std::fs::write(&p, r#"{"format": "abridge-vocab", "version": 1, "specials": [], "tokens": ["x"], "counts": [1]}"#).unwrap();
        assert!(Vocab::load(&p)
            .unwrap_err()
            .to_string()
            .contains("specials"));
    }

    #[test]
    fn extended_vocabulary_gives_oovs_temporary_ids() {
        let v = Vocab::from_counts(&counts(&[("the", 5), ("said", 3)]), VocabConfig::default());
        let n = v.len() as u32; // 6
        let e = Extended::new(&v, &["the", "zorblax", "said", "qux", "zorblax"]);
        assert_eq!(e.src, vec![4, n, 5, n + 1, n]);
        assert_eq!(e.oovs, ["zorblax", "qux"]);
        assert_eq!(
            e.target(&v, &["qux", "said", "unseen"]),
            vec![n + 1, 5, UNK]
        );
        assert_eq!(e.word(&v, n + 1), Some("qux"));
        assert_eq!(e.word(&v, 5), Some("said"));
        assert_eq!(e.word(&v, n + 2), None);
    }
}
