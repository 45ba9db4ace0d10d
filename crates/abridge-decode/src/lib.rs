//! # abridge-decode
//!
//! Decoding strategies over any model that can score next tokens ([`StepModel`]): greedy and beam
//! search, with the length and coverage penalties of [`penalties`], `</s>` forbidden before the
//! minimum length, a maximum length, and repeated n-gram blocking that never leaves a hypothesis
//! without a legal token. The decomposition follows OpenNMT-py's `DecodeStrategy`; the model state
//! is reordered by the search through the `parents` it passes to [`StepModel::step`].

pub mod beam;
pub mod penalties;

pub use beam::{
    beam_search, beam_search_batch, beam_search_observed, greedy, BeamConfig, Candidate, Fate,
    Hypothesis, Observer, StepModel, StepOutput,
};
pub use penalties::{CoveragePenalty, LengthPenalty};
