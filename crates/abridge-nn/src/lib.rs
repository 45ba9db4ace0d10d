//! # abridge-nn
//!
//! Recurrent layers with PyTorch's equations, parameter names and weight layout, and backpropagation
//! through time written out by hand.
//!
//! * [`lstm`] — the LSTM equations and its fused per-step kernels (forward and backward).
//! * [`gru`] — the GRU equations (PyTorch's variant: reset gate applied after the hidden matmul).
//! * [`rnn`] — [`Rnn`]: multi-layer, bidirectional, variable-length sequences, initial states; the
//!   fast path (one GEMM for all input projections, one recurrent GEMM per step, batched weight
//!   gradients, the batch split across threads).
//! * [`cell`] — single-step [`Cell`]s (`nn.LSTMCell` / `nn.GRUCell`), for decoders.
//! * [`reference`](mod@reference) — a slow scalar implementation, one sequence at a time, that the fast path is
//!   tested against.
//!
//! Shapes use the legend of `abridge-tensor`: `T` time, `B` batch, `I` input, `H` hidden,
//! `G` gates (4 LSTM, 3 GRU), `L` layers, `D` directions.
//!
//! ## Example, worked by hand
//! With every weight and bias zero, each LSTM gate is `σ(0) = 0.5` and the candidate `tanh(0) = 0`, so
//! from `c0 = 1` one step gives `c = 0.5·1 + 0.5·0 = 0.5` and `h = 0.5·tanh(0.5) = 0.2310586`; the
//! gradient of `h` reaching `c0` is `0.5·(1 − tanh²(0.5))·0.5 = 0.1966119`.
//!
//! ```
//! use abridge_nn::{CellKind, Rnn, RnnCache, RnnConfig, RnnGradOut, RnnInput, RnnParams};
//!
//! let cfg = RnnConfig::new(CellKind::Lstm, 2, 1); // I = 2, H = 1
//! let rnn = Rnn::new(RnnParams::<f64>::zeros(cfg));
//! let (x, c0) = ([3.0, -4.0], [1.0]); // T = 1, B = 1
//! let mut cache = RnnCache::new();
//! rnn.forward(&RnnInput { c0: Some(&c0), ..RnnInput::new(&x, 1, 1) }, &mut cache).unwrap();
//! assert!((cache.c_n()[0] - 0.5).abs() < 1e-15);
//! assert!((cache.output()[0] - 0.5 * 0.5f64.tanh()).abs() < 1e-15);
//!
//! let mut grads = RnnParams::zeros(cfg);
//! let d_out = [1.0];
//! rnn.backward(&mut cache, &RnnGradOut { d_output: Some(&d_out), ..Default::default() }, &mut grads).unwrap();
//! let t = 0.5f64.tanh();
//! assert!((cache.dc0()[0] - 0.5 * (1.0 - t * t) * 0.5).abs() < 1e-15);
//! ```

pub mod cell;
pub mod config;
pub mod gru;
pub mod lstm;
pub mod params;
pub mod reference;
pub mod rnn;

pub use cell::Cell;
pub use config::{CellKind, RnnConfig};
pub use params::{DirParams, RnnParams};
pub use rnn::{PackedRecurrent, Rnn, RnnCache, RnnError, RnnGradOut, RnnInput};
