//! Checkpoint folders.
//!
//! A run folder holds checkpoint folders (`step-000100/`, …) and two pointer files, `latest` and
//! `best`, each holding a folder name. A checkpoint folder holds:
//!
//! | file | content |
//! |---|---|
//! | `config.json`, `generation_config.json`, `tokenizer_config.json`, `vocab.json`, `model.safetensors` | a model folder ([`abridge::folder`]; f32 weights) |
//! | `optimizer.safetensors` | the optimizer's state (`m.*`/`v.*` or `acc.*`, f32), hyper-parameters in the metadata |
//! | `state.json` | step, epoch, position in the epoch, seed, best dev loss, skipped batches, training config |
//!
//! Saving writes `NAME.tmp/` (each file flushed to disk), moves an existing `NAME/` aside to
//! `NAME.old/`, renames `NAME.tmp/` to `NAME/`, replaces the pointer files through temporary files
//! and renames, and only then deletes `NAME.old/`; directories are flushed after each rename. A
//! checkpoint a pointer names is never removed before its replacement is in place: after a kill
//! at any step, [`recover`] (run when training starts or resumes) puts back a folder a pointer
//! names from `NAME.old/` or a complete `NAME.tmp/`, and readers find it there meanwhile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use abridge::folder::{read_model, resolve, write_model, FolderMeta};
pub use abridge::tensors::WeightType;
use abridge::tensors::{f32_bytes, st_write, sync_dir, write_atomic, write_synced};
use abridge::{folder::TokenizerConfig, GenerationConfig};
use abridge_model::{ModelConfig, Optimizer, Params};
use abridge_text::vocab::{Vocab, VocabError};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "abridge-checkpoint";
pub const VERSION: &str = "1";

/// Repairs a run folder after a save was killed: a checkpoint that `latest` or `best` names but
/// that is missing is put back from `NAME.old/` (the previous copy) or, failing that, from a
/// complete `NAME.tmp/`; other leftover `.tmp`/`.old` folders are deleted. Returns the names it
/// put back.
pub fn recover(run: &Path) -> Result<Vec<String>, CheckpointError> {
    let mut restored = Vec::new();
    for ptr in ["latest", "best"] {
        let Ok(name) = std::fs::read_to_string(run.join(ptr)) else {
            continue;
        };
        let name = name.trim().to_string();
        let dir = run.join(&name);
        if dir.exists() {
            continue;
        }
        for suffix in ["old", "tmp"] {
            let alt = run.join(format!("{name}.{suffix}"));
            if alt.join("state.json").is_file() {
                std::fs::rename(&alt, &dir).map_err(io(&dir))?;
                sync_dir(run)?;
                restored.push(name.clone());
                break;
            }
        }
    }
    for e in std::fs::read_dir(run).map_err(io(run))?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("step-")
            && (n.ends_with(".tmp") || n.ends_with(".old"))
            && e.path().is_dir()
        {
            std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
        }
    }
    Ok(restored)
}

thread_local! {
    static FAIL_AT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Test hook: the next [`Checkpoint::save`] on this thread stops with an error right after its
/// file-system step `k` (0: the new folder written; 1: the old one moved aside; 2: the new one in
/// place; 3: `latest` replaced; 4: `best` replaced), leaving the folder as a kill there would.
#[doc(hidden)]
pub fn fail_next_save_after(k: Option<usize>) {
    FAIL_AT.with(|f| f.set(k));
}

fn failpoint(k: usize) -> Result<(), CheckpointError> {
    if FAIL_AT.with(|f| f.get()) == Some(k) {
        FAIL_AT.with(|f| f.set(None));
        return Err(CheckpointError::Io {
            path: PathBuf::from(format!("(injected failure after save step {k})")),
            source: std::io::Error::other("injected"),
        });
    }
    Ok(())
}

/// Why a checkpoint could not be written or read; names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error(transparent)]
    Vocab(#[from] VocabError),
    #[error(transparent)]
    Folder(#[from] abridge::Error),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.into(),
        source,
    }
}

pub(crate) fn invalid(path: &Path, msg: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid {
        path: path.into(),
        msg: msg.into(),
    }
}

/// Where training stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps taken.
    pub step: u64,
    /// Current epoch (0-based) and batches of it already done.
    pub epoch: usize,
    pub batch_in_epoch: usize,
    pub seed: u64,
    pub best_dev_loss: Option<f64>,
    /// Best mean dev ROUGE F1 so far (with `select = rouge`).
    #[serde(default)]
    pub best_dev_rouge: Option<f64>,
    /// Evaluations since the best one (for early stopping).
    pub evals_since_best: usize,
    /// Batches skipped for a non-finite loss or gradient.
    pub skipped_batches: u64,
    /// The training configuration, as given.
    pub train_config: serde_json::Value,
}

/// Everything a run needs to continue.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub config: ModelConfig,
    pub params: Params<f32>,
    pub vocab: Vocab,
    /// The decoding defaults and tokenizer settings written with every checkpoint (so that each
    /// is a model folder).
    pub generation: GenerationConfig,
    pub tokenizer: TokenizerConfig,
    pub optimizer: Optimizer,
    pub state: TrainState,
}

fn write_optimizer(
    path: &Path,
    opt: &Optimizer,
    names: &[(String, Vec<usize>)],
) -> Result<(), CheckpointError> {
    let mut meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
    ]);
    let mut tensors = Vec::new();
    let mut push = |prefix: &str, bufs: &[Vec<f32>]| {
        for ((n, _), b) in names.iter().zip(bufs) {
            tensors.push((
                format!("{prefix}.{n}"),
                vec![b.len()],
                Dtype::F32,
                f32_bytes(b),
            ));
        }
    };
    match opt {
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
            t,
            m,
            v,
        } => {
            meta.insert("kind".into(), "adam".into());
            meta.insert(
                "hyper".into(),
                serde_json::json!({"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "t": t})
                    .to_string(),
            );
            push("m", m);
            push("v", v);
        }
        Optimizer::Adagrad { lr, acc, initial } => {
            meta.insert("kind".into(), "adagrad".into());
            meta.insert(
                "hyper".into(),
                serde_json::json!({"lr": lr, "initial": initial}).to_string(),
            );
            push("acc", acc);
        }
    }
    Ok(st_write(path, tensors, meta)?)
}

fn read_optimizer(
    path: &Path,
    names: &[(String, Vec<usize>)],
) -> Result<Optimizer, CheckpointError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| invalid(path, format!("not a safetensors file: {e}")))?;
    let m = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(&bytes).map_err(|e| invalid(path, e.to_string()))?;
    let hyper: serde_json::Value =
        serde_json::from_str(m.get("hyper").map(String::as_str).unwrap_or("{}"))
            .map_err(|e| invalid(path, e.to_string()))?;
    let f = |k: &str| {
        hyper[k]
            .as_f64()
            .ok_or_else(|| invalid(path, format!("optimizer hyper-parameter `{k}` missing")))
    };
    let read = |prefix: &str| -> Result<Vec<Vec<f32>>, CheckpointError> {
        if st.names().is_empty() {
            return Ok(vec![]); // no step taken yet
        }
        names
            .iter()
            .map(|(n, _)| {
                let t = st.tensor(&format!("{prefix}.{n}")).map_err(|_| {
                    invalid(path, format!("optimizer tensor `{prefix}.{n}` is missing"))
                })?;
                abridge::tensors::verify_checksum(&m, &format!("{prefix}.{n}"), t.data())
                    .map_err(|msg| invalid(path, msg))?;
                if t.dtype() != Dtype::F32 {
                    return Err(invalid(
                        path,
                        format!(
                            "optimizer tensor `{prefix}.{n}` is {:?}, expected F32",
                            t.dtype()
                        ),
                    ));
                }
                Ok(t.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect())
            })
            .collect()
    };
    match m.get("kind").map(String::as_str) {
        Some("adam") => Ok(Optimizer::Adam {
            lr: f("lr")?,
            beta1: f("beta1")?,
            beta2: f("beta2")?,
            eps: f("eps")?,
            t: hyper["t"].as_u64().unwrap_or(0),
            m: read("m")?,
            v: read("v")?,
        }),
        Some("adagrad") => Ok(Optimizer::Adagrad {
            lr: f("lr")?,
            initial: f("initial")?,
            acc: read("acc")?,
        }),
        other => Err(invalid(path, format!("unknown optimizer kind {other:?}"))),
    }
}

impl Checkpoint {
    /// Saves into `run/NAME/` atomically and points `run/latest` (and `run/best` if `best`) at it.
    pub fn save(&mut self, run: &Path, name: &str, best: bool) -> Result<PathBuf, CheckpointError> {
        let final_dir = run.join(name);
        let tmp = run.join(format!("{name}.tmp"));
        let old = run.join(format!("{name}.old"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        let meta = FolderMeta {
            config: self.config.clone(),
            generation: self.generation.clone(),
            tokenizer: self.tokenizer.clone(),
            vocab: self.vocab.clone(),
        };
        write_model(&tmp, &meta, &mut self.params, WeightType::F32)?;
        let names: Vec<(String, Vec<usize>)> = self
            .params
            .tensors_mut()
            .into_iter()
            .map(|(n, s, _)| (n, s))
            .collect();
        write_optimizer(&tmp.join("optimizer.safetensors"), &self.optimizer, &names)?;
        let state = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        write_synced(&tmp.join("state.json"), &state)?;
        sync_dir(&tmp)?;
        failpoint(0)?;
        if final_dir.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(io(&old))?;
            }
            std::fs::rename(&final_dir, &old).map_err(io(&old))?;
            failpoint(1)?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        sync_dir(run)?;
        failpoint(2)?;
        write_atomic(&run.join("latest"), name.as_bytes())?;
        failpoint(3)?;
        if best {
            write_atomic(&run.join("best"), name.as_bytes())?;
            failpoint(4)?;
        }
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(final_dir)
    }

    /// Loads a checkpoint folder, or the one a run folder's `latest` points at (after
    /// [`recover`]ing an interrupted save).
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        if path.join("latest").is_file() {
            recover(path)?;
        }
        let dir = resolve(path, "latest")?;
        let (meta, mut params) = read_model(&dir)?;
        let names: Vec<(String, Vec<usize>)> = params
            .tensors_mut()
            .into_iter()
            .map(|(n, s, _)| (n, s))
            .collect();
        let optimizer = read_optimizer(&dir.join("optimizer.safetensors"), &names)?;
        let sp = dir.join("state.json");
        let state: TrainState = serde_json::from_slice(&std::fs::read(&sp).map_err(io(&sp))?)
            .map_err(|e| invalid(&sp, e.to_string()))?;
        Ok(Self {
            config: meta.config,
            params,
            vocab: meta.vocab,
            generation: meta.generation,
            tokenizer: meta.tokenizer,
            optimizer,
            state,
        })
    }
}
