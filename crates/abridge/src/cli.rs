//! Command-line definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "abridge",
    version,
    about = "Neural summarization with recurrent networks, CPU-first"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Benchmarks that print numbers (not tests).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// One recurrent layer, forward+backward and forward-only, with PyTorch's anchor shapes.
    Rnn(RnnBenchArgs),
    /// f32 GEMM throughput (the machine's peak that the RNN figures are compared with).
    Gemm(GemmBenchArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CellArg {
    Lstm,
    Gru,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct RnnBenchArgs {
    #[arg(long, value_enum, default_value = "lstm")]
    pub cell: CellArg,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 2, env = "ABRIDGE_THREADS")]
    pub threads: usize,
    /// Time steps `T`.
    #[arg(long, default_value_t = 200)]
    pub seq: usize,
    /// Batch `B`.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Input features `I`.
    #[arg(long, default_value_t = 128)]
    pub input: usize,
    /// Hidden units `H`.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Layers.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    #[arg(long)]
    pub bidirectional: bool,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Iterations per repetition.
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Which measurements: forward+backward, forward only, or both.
    #[arg(long, value_enum, default_value = "all")]
    pub phase: Phase,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Phase {
    All,
    Train,
    Infer,
}

#[derive(Args, Debug)]
pub struct GemmBenchArgs {
    #[arg(long, default_value_t = 2, env = "ABRIDGE_THREADS")]
    pub threads: usize,
    /// Square size n of the n×n·n×n product.
    #[arg(long, default_value_t = 2048)]
    pub size: usize,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}
