//! # abridge-model
//!
//! The summarizer: an attentional encoder–decoder with the pointer-generator and coverage of
//! See, Liu & Manning (2017), "Get To The Point: Summarization with Pointer-Generator Networks".
//! Every part has a forward pass with a cache and a backward pass written by hand; the whole model
//! is checked against finite differences in `tests/gradcheck.rs`.
//!
//! The equations are stated once, in [`seq2seq`].

pub mod attention;
mod backward;
pub mod config;
pub mod greedy;
pub mod head;
pub mod linear;
pub mod optim;
pub mod params;
pub mod selector;
pub mod seq2seq;
pub mod stepper;

pub use config::{AttentionKind, ModelConfig};
pub use greedy::Sources;
pub use linear::Linear;
pub use optim::{clip_global_norm, clip_tensors, Optimizer};
pub use params::Params;
pub use selector::{
    copy_labels, Selector, SelectorBatch, SelectorCache, SelectorConfig, SelectorError,
};
pub use seq2seq::{Forward, Inputs, Loss, ModelError};
pub use stepper::{StepDetails, Stepper};
