//! `abridge export`: a run's best checkpoint as a compact model folder for inference (what ships
//! as the bundled model): f16 or f32 weights, the folder's JSON files, a model card, and a
//! manifest recording where the model came from. `abridge migrate`: an older folder brought to
//! the current format.

use anyhow::{bail, Context, Result};
use serde_json::json;

use abridge::folder::{self, read_model, write_model, ModelCard};
use abridge::tensors::WeightType;

use crate::cli::{DtypeArg, ExportArgs, MigrateArgs};

pub fn run(a: &ExportArgs) -> Result<()> {
    let dir = folder::model_dir(&a.src)?;
    // Only a model folder is ever replaced, and only with --force: anything else at OUT (a run,
    // the current directory, a file) is refused untouched.
    if a.out.exists() {
        let is_model = a.out.join(folder::WEIGHTS).is_file();
        if !is_model {
            bail!(
                "{} exists and is not a model folder; choose a new path for the export (nothing \
                 was changed)",
                a.out.display()
            );
        }
        if !a.force {
            bail!(
                "{} already holds a model; pass --force to replace it",
                a.out.display()
            );
        }
    }
    let src_abs = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
    if let Ok(out_abs) = std::fs::canonicalize(&a.out) {
        if src_abs.starts_with(&out_abs) {
            bail!(
                "{} holds the checkpoint being exported ({}); export to another folder",
                a.out.display(),
                dir.display()
            );
        }
    }
    let (meta, mut params) = read_model(&dir)?;
    let dtype = match a.dtype {
        DtypeArg::F16 => WeightType::F16,
        DtypeArg::F32 => WeightType::F32,
    };
    // Write beside the target and rename, so a failed export never leaves half a model.
    let tmp = a.out.with_extension("export-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    write_model(&tmp, &meta, &mut params, dtype)?;
    let state: Option<serde_json::Value> = std::fs::read(dir.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let run: Option<serde_json::Value> = dir
        .parent()
        .map(|p| p.join("manifest.json"))
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    let manifest = json!({
        "format": "abridge-model-record",
        "abridge_version": env!("CARGO_PKG_VERSION"),
        "dtype": format!("{:?}", a.dtype).to_lowercase(),
        "source": dir.display().to_string(),
        "step": state.as_ref().map(|s| s["step"].clone()),
        "best_dev_loss": state.as_ref().map(|s| s["best_dev_loss"].clone()),
        "run": run,
    });
    std::fs::write(
        tmp.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    let train_data = run
        .as_ref()
        .and_then(|r| r["data"]["train"]["path"].as_str())
        .map(|p| abridge_text::io::base_name(std::path::Path::new(p)).to_string());
    let name = a
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "abridge-model".into());
    card(&name, train_data.as_deref(), &meta).write(&tmp)?;
    // The run's loss curve travels with the model.
    if let Some(svg) = dir
        .parent()
        .map(|r| r.join("loss.svg"))
        .filter(|p| p.is_file())
    {
        std::fs::copy(&svg, tmp.join("loss.svg"))
            .with_context(|| format!("copying {}", svg.display()))?;
    }
    // Check the round trip before replacing anything.
    let (_, back) = read_model(&tmp)?;
    let mut worst = 0f32;
    let mut orig = params;
    let mut back = back;
    for ((_, _, a), (_, _, b)) in orig.tensors_mut().into_iter().zip(back.tensors_mut()) {
        for (x, y) in a.iter().zip(b.iter()) {
            worst = worst.max((x - y).abs() / x.abs().max(1e-3));
        }
    }
    // Replace: the old model is moved aside first, so a failure leaves one of the two in place.
    let old = a.out.with_extension("export-old");
    if a.out.exists() {
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(&a.out, &old)
            .with_context(|| format!("moving the old model {} aside", a.out.display()))?;
    }
    if let Err(e) = std::fs::rename(&tmp, &a.out) {
        if old.exists() {
            let _ = std::fs::rename(&old, &a.out);
        }
        return Err(e).with_context(|| format!("writing {}", a.out.display()));
    }
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the replaced model {}", old.display()))?;
    }
    let bytes = std::fs::metadata(a.out.join(folder::WEIGHTS))?.len();
    outln!(
        "exported {} → {} ({:?} weights, {:.1} MB; largest relative rounding error {:.1e})",
        dir.display(),
        a.out.display(),
        a.dtype,
        bytes as f64 / 1e6,
        worst
    )?;
    Ok(())
}

/// A model card for an exported model (no measured results: `abridge eval --card` adds them).
fn card(name: &str, train_data: Option<&str>, meta: &folder::FolderMeta) -> ModelCard {
    let c = &meta.config;
    ModelCard {
        name: name.into(),
        datasets: train_data.map(|d| vec![d.to_string()]).unwrap_or_default(),
        eval_dataset: None,
        results: vec![],
        body: format!(
            "# {name}\n\nA pointer-generator summarizer{} trained with \
             [Abridge](https://crates.io/crates/abridge): {} encoder–decoder, embeddings {}, hidden \
             {}, vocabulary {}, sources cut to {} tokens{}.\n\nDecoding defaults are in \
             `generation_config.json`; `abridge summarize --model DIR FILE` or, in Python, \
             `abridge.Summarizer(\"DIR\").summarize(text)` uses them.\n",
            if c.coverage { " with coverage" } else { "" },
            c.cell.name().to_uppercase(),
            c.emb,
            c.hidden,
            c.vocab,
            meta.tokenizer.max_source_tokens,
            train_data
                .map(|d| format!(", trained on `{d}`"))
                .unwrap_or_default(),
        ),
    }
}

/// `abridge migrate DIR`: a model or checkpoint folder, or every checkpoint of a run folder.
pub fn migrate(a: &MigrateArgs) -> Result<()> {
    let mut dirs = Vec::new();
    if a.dir.join(folder::WEIGHTS).is_file() {
        dirs.push(a.dir.clone());
    } else {
        for e in
            std::fs::read_dir(&a.dir).with_context(|| format!("reading {}", a.dir.display()))?
        {
            let p = e?.path();
            if p.join(folder::WEIGHTS).is_file() {
                dirs.push(p);
            }
        }
        dirs.sort();
    }
    if dirs.is_empty() {
        bail!(
            "{}: no model folder here (no model.safetensors in it or in a folder inside it)",
            a.dir.display()
        );
    }
    for d in dirs {
        let m = folder::migrate(&d)?;
        if m.written.is_empty() {
            outln!("{}: already current", d.display())?;
        } else {
            outln!("{}: wrote {}", d.display(), m.written.join(", "))?;
            for i in &m.inferred {
                outln!("  {i}")?;
            }
        }
    }
    Ok(())
}
