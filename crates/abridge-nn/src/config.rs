//! Layer configuration.

/// Which recurrent cell (`"lstm"` / `"gru"` in files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Long short-term memory (Hochreiter & Schmidhuber 1997, forget gate of Gers et al. 2000).
    Lstm,
    /// Gated recurrent unit (Cho et al. 2014), PyTorch's variant.
    Gru,
}

impl CellKind {
    /// Gates per hidden unit: 4 (i, f, g, o) for LSTM, 3 (r, z, n) for GRU.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }

    /// Parses `"lstm"` or `"gru"` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "lstm" => Some(CellKind::Lstm),
            "gru" => Some(CellKind::Gru),
            _ => None,
        }
    }
}

/// Shape of a recurrent stack, as `nn.LSTM(input_size, hidden_size, num_layers, bidirectional=...)`.
///
/// Biases are always present (PyTorch's default `bias=True`); dropout between layers belongs to the
/// model that owns the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnConfig {
    pub cell: CellKind,
    /// `I`: features per input time step.
    pub input_size: usize,
    /// `H`: hidden units per direction.
    pub hidden_size: usize,
    /// `L`: stacked layers (≥ 1); layer `k > 0` reads layer `k-1`'s `D·H` outputs.
    pub num_layers: usize,
    /// `D = 2` when true: a second pass runs from each sequence's own end back to its start.
    pub bidirectional: bool,
}

impl RnnConfig {
    pub fn new(cell: CellKind, input_size: usize, hidden_size: usize) -> Self {
        Self {
            cell,
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
        }
    }
    pub fn with_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }
    /// `D`: 1 or 2.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }
    /// Feature size of layer `layer`'s input.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.directions() * self.hidden_size
        }
    }
    /// `D·H`: feature size of the output.
    pub fn output_size(&self) -> usize {
        self.directions() * self.hidden_size
    }
}
