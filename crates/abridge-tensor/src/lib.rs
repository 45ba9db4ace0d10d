//! # abridge-tensor
//!
//! The numeric floor under Abridge: a [`Float`] trait implemented for `f32` (fast, for training and
//! inference) and `f64` (for gradient checks), strided matrix views with one [`gemm()`] entry point on top
//! of the `gemm` crate, and element-wise activations with slow references beside the fast ones.
//!
//! There is no autograd here and no tensor type with shapes at run time: layers own plain `Vec<T>`
//! buffers and document their shapes with the legend below.
//!
//! ## Shape legend (used by every numeric module of Abridge)
//! `T` time steps, `B` batch, `I` input size, `H` hidden size, `G` gates (4 for LSTM, 3 for GRU),
//! `L` layers, `D` directions (1 or 2). Buffers are row-major; `[T, B, I]` means time-major.

pub mod activation;
pub mod float;
pub mod half_matrix;
pub mod matmul;
pub mod packed;
pub mod rng;
pub mod simd;

pub use float::Float;
pub use half_matrix::HalfMatrix;
pub use matmul::{gemm, MatMut, MatRef, Par};
pub use packed::PackedMatrix;
pub use rng::Rng;
