//! Model configuration: plain data with documented defaults and a version.

use abridge_nn::CellKind;

/// Sizes and switches of the summarizer. Defaults follow See et al. (2017) where they say.
#[derive(Clone, Debug, PartialEq)]
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
        }
    }
}

impl ModelConfig {
    /// Encoder output size `2H`.
    pub fn enc_out(&self) -> usize {
        2 * self.hidden
    }
}
