//! Checkpoint folders.
//!
//! A run folder holds checkpoint folders (`step-000100/`, …) and two pointer files, `latest` and
//! `best`, each holding a folder name. A checkpoint folder holds:
//!
//! | file | content |
//! |---|---|
//! | `model.safetensors` | f32 weights under [`Params::tensors_mut`] names, metadata `format = abridge-checkpoint`, `version` |
//! | `config.json` | the model configuration (versioned) |
//! | `vocab.json` | the vocabulary (versioned) |
//! | `optimizer.safetensors` | the optimizer's state (`m.*`/`v.*` or `acc.*`, f32), hyper-parameters in the metadata |
//! | `state.json` | step, epoch, position in the epoch, seed, best dev loss, skipped batches, training config |
//!
//! Saving writes `NAME.tmp/`, renames it to `NAME/`, then replaces the pointer file through a
//! temporary file and a rename: a kill at any moment leaves the previous checkpoint and pointers
//! intact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use abridge_model::config::ModelConfigFile;
use abridge_model::{ModelConfig, Optimizer, Params};
use abridge_tensor::Rng;
use abridge_text::vocab::{Vocab, VocabError};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "abridge-checkpoint";
pub const VERSION: &str = "1";

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
    pub optimizer: Optimizer,
    pub state: TrainState,
}

pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

pub(crate) fn st_write(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Dtype, Vec<u8>)>,
    meta: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, shape, dt, bytes)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes)
                    .expect("shape matches data"),
            )
        })
        .collect();
    let bytes =
        safetensors::serialize(views, Some(meta)).map_err(|e| invalid(path, e.to_string()))?;
    std::fs::write(path, bytes).map_err(io(path))
}

/// The params of `cfg`'s shapes from the bytes of a `model.safetensors` (f32, or f16 as
/// [`write_model`] exports it), `path` naming them in errors.
fn params_from_bytes(
    bytes: &[u8],
    path: &Path,
    cfg: &ModelConfig,
) -> Result<Params<f32>, CheckpointError> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| invalid(path, format!("not a safetensors file: {e}")))?;
    let m = meta.metadata().clone().unwrap_or_default();
    if m.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(invalid(
            path,
            format!("not an Abridge checkpoint (metadata `format` is not `{FORMAT}`)"),
        ));
    }
    if m.get("version").map(String::as_str) != Some(VERSION) {
        return Err(invalid(
            path,
            format!(
                "checkpoint version {:?} is not supported (this build reads {VERSION})",
                m.get("version")
            ),
        ));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| invalid(path, e.to_string()))?;
    let mut params = Params::<f32>::init(cfg, &mut Rng::new(0));
    fill_tensors(&st, path, params.tensors_mut())?;
    Ok(params)
}

/// Reads every named tensor of `into` (`(name, shape, values)`) from `st`, f32 or f16, checking
/// its shape; `path` names the file in errors.
pub(crate) fn fill_tensors(
    st: &SafeTensors<'_>,
    path: &Path,
    into: Vec<(String, Vec<usize>, &mut [f32])>,
) -> Result<(), CheckpointError> {
    for (name, shape, data) in into {
        let t = st
            .tensor(&name)
            .map_err(|_| invalid(path, format!("tensor `{name}` is missing")))?;
        if !matches!(t.dtype(), Dtype::F32 | Dtype::F16) || t.shape() != shape.as_slice() {
            return Err(invalid(
                path,
                format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 or F16 {:?}",
                    t.dtype(),
                    t.shape(),
                    shape
                ),
            ));
        }
        if t.dtype() == Dtype::F16 {
            for (d, c) in data.iter_mut().zip(t.data().chunks_exact(2)) {
                *d = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        } else {
            for (d, c) in data.iter_mut().zip(t.data().chunks_exact(4)) {
                *d = f32::from_le_bytes(c.try_into().expect("4 bytes"));
            }
        }
    }
    Ok(())
}

/// Tensors as safetensors entries in `dtype` (f16 rounds to nearest).
pub(crate) fn encode_tensors(
    tensors: Vec<(String, Vec<usize>, &mut [f32])>,
    dtype: WeightType,
) -> Vec<(String, Vec<usize>, Dtype, Vec<u8>)> {
    tensors
        .into_iter()
        .map(|(n, shape, d)| match dtype {
            WeightType::F32 => (n, shape, Dtype::F32, f32_bytes(d)),
            WeightType::F16 => (
                n,
                shape,
                Dtype::F16,
                d.iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
            ),
        })
        .collect()
}

/// How [`write_model`] stores weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightType {
    F32,
    /// IEEE half precision (round to nearest): half the size; inference reads it back as f32.
    F16,
}

/// Writes the weights and config of a model alone (what inference needs) into `dir`.
pub fn write_model(
    dir: &Path,
    cfg: &ModelConfig,
    params: &mut Params<f32>,
    vocab: &Vocab,
    dtype: WeightType,
) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tensors = encode_tensors(params.tensors_mut(), dtype);
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
    ]);
    st_write(&dir.join("model.safetensors"), tensors, meta)?;
    let cfg_json =
        serde_json::to_vec_pretty(&ModelConfigFile::from(cfg)).expect("config serialises");
    std::fs::write(dir.join("config.json"), cfg_json).map_err(io(dir))?;
    vocab.save(&dir.join("vocab.json"))?;
    Ok(())
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
    st_write(path, tensors, meta)
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

/// Reads a model folder written by [`write_model`] (or a checkpoint folder).
pub fn read_model(dir: &Path) -> Result<(ModelConfig, Params<f32>, Vocab), CheckpointError> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(io(&p))
    };
    model_from_bytes(
        dir,
        &read("config.json")?,
        &read("vocab.json")?,
        &read("model.safetensors")?,
    )
}

/// A model from the bytes of its `config.json`, `vocab.json` and `model.safetensors` (e.g.
/// embedded in the binary); `dir` names them in errors.
pub fn model_from_bytes(
    dir: &Path,
    config: &[u8],
    vocab: &[u8],
    weights: &[u8],
) -> Result<(ModelConfig, Params<f32>, Vocab), CheckpointError> {
    let cfg_path = dir.join("config.json");
    let f: ModelConfigFile = serde_json::from_slice(config)
        .map_err(|e| invalid(&cfg_path, format!("invalid model config: {e}")))?;
    let cfg = ModelConfig::try_from(&f).map_err(|m| invalid(&cfg_path, m))?;
    let vocab = Vocab::from_json(vocab, &dir.join("vocab.json").display().to_string())?;
    if vocab.len() != cfg.vocab {
        return Err(invalid(
            dir,
            format!(
                "vocab.json has {} entries but the model was built for {}",
                vocab.len(),
                cfg.vocab
            ),
        ));
    }
    let params = params_from_bytes(weights, &dir.join("model.safetensors"), &cfg)?;
    Ok((cfg, params, vocab))
}

impl Checkpoint {
    /// Saves into `run/NAME/` atomically and points `run/latest` (and `run/best` if `best`) at it.
    pub fn save(&mut self, run: &Path, name: &str, best: bool) -> Result<PathBuf, CheckpointError> {
        let final_dir = run.join(name);
        let tmp = run.join(format!("{name}.tmp"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        write_model(
            &tmp,
            &self.config,
            &mut self.params,
            &self.vocab,
            WeightType::F32,
        )?;
        let names: Vec<(String, Vec<usize>)> = self
            .params
            .tensors_mut()
            .into_iter()
            .map(|(n, s, _)| (n, s))
            .collect();
        write_optimizer(&tmp.join("optimizer.safetensors"), &self.optimizer, &names)?;
        let state = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        std::fs::write(tmp.join("state.json"), state).map_err(io(&tmp))?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        write_atomic(&run.join("latest"), name.as_bytes())?;
        if best {
            write_atomic(&run.join("best"), name.as_bytes())?;
        }
        Ok(final_dir)
    }

    /// Loads a checkpoint folder, or the one a run folder's `latest` points at.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let dir = resolve(path, "latest")?;
        let (config, mut params, vocab) = read_model(&dir)?;
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
            config,
            params,
            vocab,
            optimizer,
            state,
        })
    }
}

/// `path` itself if it holds a model, else the folder its pointer file `which` names.
pub fn resolve(path: &Path, which: &str) -> Result<PathBuf, CheckpointError> {
    if path.join("model.safetensors").is_file() {
        return Ok(path.into());
    }
    let ptr = path.join(which);
    let name = std::fs::read_to_string(&ptr).map_err(io(&ptr))?;
    Ok(path.join(name.trim()))
}
