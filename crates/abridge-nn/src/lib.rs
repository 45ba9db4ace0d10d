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
//! * [`reference`] — a slow scalar implementation, one sequence at a time, that the fast path is
//!   tested against.
//!
//! Shapes use the legend of `abridge-tensor`: `T` time, `B` batch, `I` input, `H` hidden,
//! `G` gates (4 LSTM, 3 GRU), `L` layers, `D` directions.

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
pub use rnn::{Rnn, RnnCache, RnnError, RnnGradOut, RnnInput};
