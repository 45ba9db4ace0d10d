//! `abridge`: the command-line interface. Argument parsing and wiring only; the work is in the
//! library crates.

/// `println!` that returns a write error (a closed pipe, a full disk) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod batch;
mod bench;
mod cli;
mod data;
mod explain;
mod export;
mod fuzz;
mod loadtest;
mod report;
mod rouge;
mod select;
mod serve;
mod serve_api;
mod summarize;
mod train;

use std::process::ExitCode;

use clap::Parser;

/// Keeps large freed blocks in the heap instead of returning them to the kernel: training frees
/// and reallocates tens of megabytes per step, and glibc's default (mmap above 128 KiB, unmapped on
/// free) makes every such block page-fault back in — about a tenth of a training step.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only adjusts allocator tunables; called before any other thread exists.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 30);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

fn main() -> ExitCode {
    if std::env::var_os("NO_TUNE").is_none() {
        tune_allocator();
    }
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Bench(cmd) => bench::run(cmd),
        cli::Command::Rouge(args) => rouge::run(&args),
        cli::Command::Data(cmd) => data::data(cmd),
        cli::Command::Vocab(cmd) => data::vocab(cmd),
        cli::Command::Embeddings(cmd) => data::embeddings(cmd),
        cli::Command::Train(args) => train::run(&args),
        cli::Command::Selector(cli::SelectorCommand::Train(args)) => select::train(&args),
        cli::Command::Summarize(args) => summarize::run(&args),
        cli::Command::Eval(args) => summarize::eval(&args),
        cli::Command::Baseline(cmd) => summarize::baseline(cmd),
        cli::Command::Serve(args) => serve::run(&args),
        cli::Command::Explain(args) => explain::run(&args),
        cli::Command::Export(args) => export::run(&args),
        cli::Command::Migrate(args) => export::migrate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`abridge ... | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses an output path that is one of the inputs (writing it would destroy the input).
pub(crate) fn refuse_overwriting_input(
    out: &std::path::Path,
    inputs: &[&std::path::Path],
    flag: &str,
) -> anyhow::Result<()> {
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    let Some(o) = canon(out) else {
        return Ok(()); // does not exist yet: cannot be an input
    };
    for i in inputs {
        if canon(i).as_ref() == Some(&o) {
            anyhow::bail!(
                "{flag} {} is also an input; writing it would destroy the input: choose another path",
                out.display()
            );
        }
    }
    Ok(())
}

/// Runs `f` on a rayon pool of `threads` workers (0 = one per core).
pub(crate) use abridge::with_threads;
