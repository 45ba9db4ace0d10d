//! `abridge explain`: the library's explanation of one document, as JSON or as the HTML report
//! ([`crate::report`]).

use anyhow::{Context, Result};

use crate::cli::ExplainArgs;
use crate::summarize::load_default_or;
use crate::with_threads;

pub fn run(a: &ExplainArgs) -> Result<()> {
    let m = load_default_or(a.model.as_deref())?;
    let text = if a.input == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input (as UTF-8)")?;
        s
    } else {
        let bytes = std::fs::read(&a.input).with_context(|| format!("reading {}", a.input))?;
        String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: invalid UTF-8 at byte {}",
                a.input,
                e.utf8_error().valid_up_to()
            )
        })?
    };
    if let Some(out) = &a.out {
        crate::refuse_overwriting_input(out, &[std::path::Path::new(&a.input)], "--out")?;
    }
    let ex = with_threads(a.threads, || m.explain(&text, &a.decode.options()))?;
    let doc = match a.format {
        crate::cli::ReportFormat::Json => serde_json::to_string_pretty(&ex)?,
        crate::cli::ReportFormat::Html => crate::report::html(&ex),
    };
    match &a.out {
        Some(p) => {
            std::fs::write(p, doc).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("wrote {}", p.display());
        }
        None => outln!("{doc}")?,
    }
    Ok(())
}
