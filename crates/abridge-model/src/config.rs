//! Model configuration: plain data with documented defaults and a version.

use abridge_nn::CellKind;
use serde::{Deserialize, Serialize};

/// Sizes and switches of the summarizer. Defaults follow See et al. (2017) where they say.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Recurrent cell of encoder and decoder (default LSTM).
    pub cell: CellKind,
    /// `V`: vocabulary size, specials included (default 50,000).
    pub vocab: usize,
    /// `E`: word embedding size (default 128).
    pub emb: usize,
    /// `H`: hidden size of the decoder and of each encoder direction (default 256).
    pub hidden: usize,
    /// `A`: attention size (default 256).
    pub attn: usize,
    /// Encoder layers, each bidirectional (default 1).
    pub enc_layers: usize,
    /// Pointer-generator: copy source words, including out-of-vocabulary ones (default on).
    pub pointer: bool,
    /// Coverage vector in the attention and coverage loss (default off: See et al. add it in a
    /// short final phase).
    pub coverage: bool,
    /// `λ`, weight of the coverage loss (default 1.0).
    pub cov_weight: f64,
    /// Tie the vocabulary projection to the word embedding (`W_v = E`, Press & Wolf 2017): the
    /// output layer `o_t` then has `E` units instead of `H` (default off).
    #[serde(default)]
    pub tie_output: bool,
    /// Dropout probability on the encoder's input embeddings and on the output layer `o_t`
    /// during training (Srivastava et al. 2014; default 0 = off, as See et al.).
    #[serde(default)]
    pub dropout: f64,
    /// Attention score (default Bahdanau).
    #[serde(default)]
    pub attention: AttentionKind,
    /// Feed the previous context vector into the decoder input, `x_t = W_x [emb(y_{t-1});
    /// ctx_{t-1}]` (input feeding; See et al. and Luong et al. both do; default on). Off:
    /// `x_t = W_x emb(y_{t-1})`.
    #[serde(default = "yes")]
    pub input_feeding: bool,
    /// Separate source and target embeddings (default: one shared table, as See et al.). A tied
    /// output projection ties to the target table.
    #[serde(default)]
    pub separate_embeddings: bool,
}

fn yes() -> bool {
    true
}

/// How attention scores a source position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKind {
    /// Additive (Bahdanau, Cho & Bengio 2015): `e_i = vᵀ tanh(W_h h_i + W_s s_t + w_c c_i + b)`.
    #[default]
    Bahdanau,
    /// Multiplicative, Luong et al. (2015)'s "general" score in factored form:
    /// `e_i = (W_s s_t) · (W_h h_i + b)`, i.e. `s_tᵀ W_a h_i` with `W_a = W_sᵀ W_h` of rank `A`.
    Luong,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            cell: CellKind::Lstm,
            vocab: 50_000,
            emb: 128,
            hidden: 256,
            attn: 256,
            enc_layers: 1,
            pointer: true,
            coverage: false,
            cov_weight: 1.0,
            tie_output: false,
            dropout: 0.0,
            attention: AttentionKind::Bahdanau,
            input_feeding: true,
            separate_embeddings: false,
        }
    }
}

impl ModelConfig {
    /// Encoder output size `2H`.
    pub fn enc_out(&self) -> usize {
        2 * self.hidden
    }
    /// Units of the output layer `o_t`: `H`, or `E` when the output is tied to the embedding.
    pub fn out_size(&self) -> usize {
        if self.tie_output {
            self.emb
        } else {
            self.hidden
        }
    }
}

/// Version of the on-disk form of [`ModelConfig`].
pub const CONFIG_VERSION: u32 = 1;

impl ModelConfig {
    /// Checks sizes and combinations (the message says what is wrong).
    pub fn validate(&self) -> Result<(), String> {
        let m = self;
        if m.vocab < 5 || m.emb == 0 || m.hidden == 0 || m.attn == 0 || m.enc_layers == 0 {
            return Err("vocab ≥ 5 and every size ≥ 1 are required".into());
        }
        if m.coverage && m.attention != AttentionKind::Bahdanau {
            return Err(
                "coverage needs Bahdanau attention (its w_c term lives in the additive score)"
                    .into(),
            );
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return Err(format!("dropout {} is outside [0, 1)", m.dropout));
        }
        Ok(())
    }
}

/// [`ModelConfig`] with a version, as training runs record it in their manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfigFile {
    pub version: u32,
    #[serde(flatten)]
    pub model: ModelConfig,
}

impl From<&ModelConfig> for ModelConfigFile {
    fn from(c: &ModelConfig) -> Self {
        Self {
            version: CONFIG_VERSION,
            model: c.clone(),
        }
    }
}

impl TryFrom<&ModelConfigFile> for ModelConfig {
    type Error = String;
    fn try_from(f: &ModelConfigFile) -> Result<Self, String> {
        if f.version != CONFIG_VERSION {
            return Err(format!(
                "model config version {} is not supported (this build reads {CONFIG_VERSION})",
                f.version
            ));
        }
        f.model.validate()?;
        Ok(f.model.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_its_file_form() {
        let c = ModelConfig {
            cell: CellKind::Gru,
            coverage: true,
            ..Default::default()
        };
        let f = ModelConfigFile::from(&c);
        let json = serde_json::to_string(&f).unwrap();
        let back: ModelConfigFile = serde_json::from_str(&json).unwrap();
        assert_eq!(ModelConfig::try_from(&back).unwrap(), c);
        let bad = ModelConfigFile { version: 9, ..f };
        assert!(ModelConfig::try_from(&bad)
            .unwrap_err()
            .contains("version 9"));
    }
}
