//! `abridge export`: a run's best checkpoint as a compact model folder for inference (what ships
//! as the bundled model): f16 or f32 weights, config, vocabulary, and a manifest that records the
//! tokenizer settings and where the model came from.

use anyhow::{bail, Context, Result};
use serde_json::json;

use abridge_train::checkpoint::{read_model, resolve, write_model, WeightType};

use crate::cli::{DtypeArg, ExportArgs};
use crate::summarize::{find_manifest, load_model};

pub fn run(a: &ExportArgs) -> Result<()> {
    let dir = resolve(&a.src, "best")
        .or_else(|_| resolve(&a.src, "latest"))
        .with_context(|| format!("{}: no model there", a.src.display()))?;
    if a.out.join("model.safetensors").exists() && !a.force {
        bail!(
            "{} already holds a model; pass --force to replace it",
            a.out.display()
        );
    }
    let m = load_model(&dir, None)?;
    let (cfg, mut params, vocab) = read_model(&dir)?;
    let dtype = match a.dtype {
        DtypeArg::F16 => WeightType::F16,
        DtypeArg::F32 => WeightType::F32,
    };
    // Write beside the target and rename, so a failed export never leaves half a model.
    let tmp = a.out.with_extension("export-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    write_model(&tmp, &cfg, &mut params, &vocab, dtype)?;
    let state: Option<serde_json::Value> = std::fs::read(dir.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let manifest = json!({
        "format": "abridge-model",
        "abridge_version": env!("CARGO_PKG_VERSION"),
        "dtype": format!("{:?}", a.dtype).to_lowercase(),
        "source": dir.display().to_string(),
        "step": state.as_ref().map(|s| s["step"].clone()),
        "best_dev_loss": state.as_ref().map(|s| s["best_dev_loss"].clone()),
        "data": {"tokenizer": {"lowercase": m.tokenizer.lowercase, "pretokenized": false, "ptb": m.ptb}},
        "run": find_manifest(&dir),
    });
    std::fs::write(
        tmp.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
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
    let (_, back, _) = read_model(&tmp)?;
    let mut worst = 0f32;
    let mut orig = params;
    let mut back = back;
    for ((_, _, a), (_, _, b)) in orig.tensors_mut().into_iter().zip(back.tensors_mut()) {
        for (x, y) in a.iter().zip(b.iter()) {
            worst = worst.max((x - y).abs() / x.abs().max(1e-3));
        }
    }
    if a.out.exists() {
        std::fs::remove_dir_all(&a.out)
            .with_context(|| format!("replacing {}", a.out.display()))?;
    }
    std::fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    let bytes = std::fs::metadata(a.out.join("model.safetensors"))?.len();
    println!(
        "exported {} → {} ({:?} weights, {:.1} MB; largest relative rounding error {:.1e})",
        dir.display(),
        a.out.display(),
        a.dtype,
        bytes as f64 / 1e6,
        worst
    );
    Ok(())
}
