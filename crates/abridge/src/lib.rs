//! Abridge as a library: summarize text with a pointer-generator recurrent network.
//!
//! ```no_run
//! use abridge::{DecodeOptions, Summarizer};
//!
//! # fn main() -> Result<(), abridge::Error> {
//! let model = Summarizer::bundled()?; // or Summarizer::open("path/to/model")?
//! let text = std::fs::read_to_string("examples/article.txt").expect("an article");
//! let summary = model.summarize(&text, &DecodeOptions::new().beam(4).max_len(60))?;
//! println!("{}", summary.text);
//! # Ok(())
//! # }
//! ```
//!
//! - [`Summarizer`]: a loaded model: [`Summarizer::summarize`], [`Summarizer::summarize_batch`]
//!   (one batched search), [`Summarizer::summarize_all`] (many documents on many threads),
//!   [`Summarizer::lead`].
//! - [`DecodeOptions`]: what a caller asks for, every field optional; the model's own defaults
//!   are its [`GenerationConfig`]; [`Summarizer::decoding`] merges and checks them in one place.
//! - [`folder`]: the model folder format (`config.json`, `generation_config.json`,
//!   `tokenizer_config.json`, `vocab.json`, `model.safetensors`, a model card), its reader,
//!   writer and migration from the previous format.
//! - [`rouge`]: ROUGE as the reference scorers compute it (re-exported `abridge-rouge`).

mod bundled;
mod error;
pub mod explain;
pub mod folder;
pub mod http;
pub mod options;
pub mod selector_file;
mod summarizer;
pub mod tensors;

pub use abridge_rouge as rouge;
pub use error::{io, Error, Result};
pub use options::{
    CoveragePenaltyKind, DecodeOptions, GenerationConfig, LengthPenaltyKind, SelectorMode,
};
pub use summarizer::{capped_lengths, lead, Decoding, Summarizer, Summary};

/// Runs `f` on a pool of `threads` workers (0 = one per core). The model's kernels split their
/// work over the pool they run in (else rayon's global pool): a program that decodes on several
/// of its own threads runs each decode with `threads = 1`.
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    let n = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
        Ok(pool) => pool.install(f),
        // No thread could be spawned: run here, on whatever pool this thread is in.
        Err(_) => f(),
    }
}

/// Whether this build carries the bundled model ([`Summarizer::bundled`] works).
pub const HAS_BUNDLED_MODEL: bool = bundled::AVAILABLE;

/// The special tokens' ids, defined once (the vocabulary's first four entries).
pub mod special {
    pub use abridge_text::vocab::{BOS, EOS, PAD, UNK};
}

/// The README's Rust snippets, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The recurrent-layer guide's Rust snippet, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/recurrent-layers.md")]
pub struct RecurrentLayersDoctests;
