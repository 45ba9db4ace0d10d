//! Summarize a text file with the bundled model, using only the library:
//!
//! ```sh
//! cargo run --release --example summarize -p abridge -- examples/article.txt
//! ```

use abridge::{DecodeOptions, Summarizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: summarize FILE")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let model = Summarizer::bundled()?;
    let summary = model.summarize(&text, &DecodeOptions::new())?;
    println!("{}", summary.text);
    Ok(())
}
