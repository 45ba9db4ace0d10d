//! `abridge`: the command-line interface. Argument parsing and wiring only; the work is in the
//! library crates.

mod bench;
mod cli;
mod data;
mod rouge;
mod train;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Bench(cmd) => bench::run(cmd),
        cli::Command::Rouge(args) => rouge::run(&args),
        cli::Command::Data(cmd) => data::data(cmd),
        cli::Command::Vocab(cmd) => data::vocab(cmd),
        cli::Command::Embeddings(cmd) => data::embeddings(cmd),
        cli::Command::Train(args) => train::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`abridge ... | head`) is not an error.
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `f` on a rayon pool of `threads` workers (0 = one per core).
pub(crate) fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    let n = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("building the thread pool")
        .install(f)
}
