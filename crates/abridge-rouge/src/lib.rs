//! # abridge-rouge
//!
//! ROUGE (Lin 2004) exactly as the two reference scorers compute it, and fast. No numeric
//! dependencies; both stemmers' data are compiled in.
//!
//! * [`rouge_score`]: Google's rouge-score 0.1.2 (what HF `evaluate` reports): rouge1..N, rougeL,
//!   rougeLsum, with or without NLTK's Porter stemmer, `score_multi`, and its bootstrap.
//! * [`rouge155`]: `ROUGE-1.5.5.pl` as papers run it: ROUGE-N, L, W-1.2, S\*, SU\*, `-m`, `-s`,
//!   `-l`/`-b`, `-f A`/`-f B`, five-decimal rounding, and its corpus average with confidence interval.
//! * [`corpus`]: scoring many pairs in parallel and aggregating them.
//! * [`signals`]: faithfulness signals beside ROUGE (novel n-grams, verbatim sentences, repeats,
//!   numbers and names supported by the source).
//!
//! The behaviour of both, quirks included, is specified in `../shared/rouge/README.md`, and
//! `tests/conformance.rs` checks every published expected value.

pub mod bootstrap;
pub mod corpus;
pub mod intern;
pub mod lcs;
pub mod nltk_porter;
pub mod rouge155;
pub mod rouge_score;
pub mod signals;
pub mod stem;
pub mod tokenize;

pub use rouge155::{LengthLimit, MultiRef, Prf, Rouge155Options};
pub use rouge_score::{RougeScorer, RougeType, Score};
