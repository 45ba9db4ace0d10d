//! # abridge-train
//!
//! * [`checkpoint`]: self-describing checkpoint folders (safetensors weights under PyTorch-style
//!   names, JSON config, vocabulary, optimizer state, training state), written atomically.
//! * [`trainer`]: the training loop — batches, teacher-forced loss, clipping, the optimizer,
//!   non-finite batches skipped and reported, periodic evaluation, best and latest checkpoints,
//!   early stopping, a JSONL metrics log, and bit-identical `--resume`.
//! * The content selector's two files inside a model folder: [`abridge::selector_file`].
//! * [`dist`]: data parallelism over processes (MPI with the `mpi` feature): how a batch is
//!   split, and the rank-order gradient sum that keeps every rank's weights identical.
//! * [`plot`]: the loss curve as SVG, written beside the checkpoints.

pub mod checkpoint;
pub mod dist;
pub mod plot;
pub mod trainer;
