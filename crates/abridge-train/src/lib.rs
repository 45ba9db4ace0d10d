//! # abridge-train
//!
//! * [`checkpoint`]: self-describing checkpoint folders (safetensors weights under PyTorch-style
//!   names, JSON config, vocabulary, optimizer state, training state), written atomically.
//! * [`trainer`]: the training loop — batches, teacher-forced loss, clipping, the optimizer,
//!   non-finite batches skipped and reported, periodic evaluation, best and latest checkpoints,
//!   early stopping, a JSONL metrics log, and bit-identical `--resume`.
//! * The content selector's two files inside a model folder: [`abridge::selector_file`].
//! * [`plot`]: the loss curve as SVG, written beside the checkpoints.

pub mod checkpoint;
pub mod plot;
pub mod trainer;
