//! # abridge-text
//!
//! The path real data takes into the model, streaming and without a Python preprocessing step:
//!
//! * [`io`]: opening plain, gzip and zstd files (detected by content, not by name);
//! * [`corpus`]: JSON Lines, CSV/TSV with a header, and line-aligned `.source`/`.target` pairs, read in
//!   chunks; bad records (invalid JSON or UTF-8, missing fields, empty text) reported with file and line;
//! * [`tokenize`]: a word-level tokenizer for summarization, its detokenizer (PTB forms included) and a
//!   sentence splitter;
//! * [`vocab`]: vocabularies with special tokens, saved as versioned JSON, and the per-example
//!   extended vocabulary of the pointer-generator;
//! * [`batch`]: truncation, length bucketing, seeded shuffling, padding and masks in the recurrent
//!   layers' time-major layout;
//! * [`embeddings`]: GloVe, word2vec (text and binary) and fastText vectors for a vocabulary, and
//!   nearest neighbours.

pub mod batch;
pub mod corpus;
pub mod embeddings;
pub mod io;
pub mod stats;
pub mod tokenize;
pub mod vocab;
