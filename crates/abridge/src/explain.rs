//! `abridge explain`: what the model did for one document.
//!
//! 1. Beam search with an observer records every candidate of every step (kept, finished,
//!    pruned) with its log-probability, length penalty and coverage penalty: the search tree.
//! 2. The best summary is replayed through the decoder one token at a time, recording per output
//!    token the attention over the source, the coverage it saw, `p_gen` (generate vs copy), the
//!    decoder cell's gates and memory.
//! 3. The encoder's gates and memory per source token come from its forward cache.
//!
//! [`Explanation`] serialises to the JSON report; the CLI draws it as one self-contained HTML file.

use abridge_decode::{Candidate, Observer, StepModel};
use abridge_model::Stepper;
use abridge_text::vocab::{Extended, BOS, EOS};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::{DecodeOptions, Summarizer};

/// Every step's candidates.
#[derive(Default)]
struct Tree(Vec<Vec<Candidate>>);

impl Observer for Tree {
    fn step(&mut self, _: usize, c: &[Candidate]) -> bool {
        self.0.push(c.to_vec());
        true
    }
}

/// One recurrent layer direction: per token, mean activation of each gate and the memory norm.
#[derive(Serialize, Clone, Debug)]
pub struct GateTrace {
    pub name: String,
    /// Gate names in order (`i f g o` or `r z n`).
    pub gates: Vec<&'static str>,
    /// `[T][G]` mean activation of each gate over the hidden units.
    pub mean: Vec<Vec<f32>>,
    /// `[T]` L2 norm of the memory after the step (LSTM cell state `c_t`, GRU hidden state `h_t`).
    pub memory_norm: Vec<f32>,
    /// `[T][U]` the forget (LSTM) / update (GRU) gate of the first `U` units.
    pub units_forget: Vec<Vec<f32>>,
}

#[derive(Serialize, Clone, Debug)]
pub struct OutputStep {
    pub token: String,
    /// Whether the token is a source word outside the vocabulary (only copying can produce it).
    pub oov: bool,
    pub prob: f32,
    pub p_gen: Option<f32>,
    /// `[S]`
    pub attention: Vec<f32>,
    /// `[S]` coverage before this step.
    pub coverage: Vec<f32>,
}

#[derive(Serialize, Clone, Debug)]
pub struct TreeNode {
    pub step: usize,
    pub parent: usize,
    pub token: String,
    pub token_log_prob: f32,
    pub log_prob: f64,
    pub length_penalty: f64,
    pub coverage_penalty: f64,
    pub score: f64,
    /// `kept`, `finished` or `pruned`.
    pub fate: &'static str,
    /// Index among the next step's live hypotheses when kept.
    pub kept_as: Option<usize>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Explanation {
    pub model: String,
    pub cell: String,
    pub source: Vec<String>,
    pub truncated_from: Option<usize>,
    pub summary: String,
    pub decode: serde_json::Value,
    pub steps: Vec<OutputStep>,
    pub encoder: Vec<GateTrace>,
    pub decoder: GateTrace,
    pub beam: Vec<TreeNode>,
    /// Content selection: `[S]` each source token's selection probability, and the copy
    /// threshold (tokens below it could not be copied); absent when selection was off.
    pub selection: Option<Selection>,
    /// Faithfulness signals of the summary against the source (`abridge_rouge::signals`), %.
    pub faithfulness: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Selection {
    pub threshold: f32,
    pub probs: Vec<f32>,
    /// `[S]` whether the pointer could copy each token (`probs ≥ threshold`, or one of the
    /// always-copyable most frequent words).
    pub copyable: Vec<bool>,
}

/// Units shown in the per-unit forget/update heatmaps.
const UNITS: usize = 24;

fn gate_trace(name: String, lstm: bool, h: usize, tr: &[(Vec<f32>, Vec<f32>)]) -> GateTrace {
    let names: Vec<&'static str> = if lstm {
        vec!["input", "forget", "cell", "output"]
    } else {
        vec!["reset", "update", "new"]
    };
    let g = names.len();
    GateTrace {
        name,
        mean: tr
            .iter()
            .map(|(gates, _)| {
                (0..g)
                    .map(|k| gates[k * h..(k + 1) * h].iter().sum::<f32>() / h as f32)
                    .collect()
            })
            .collect(),
        memory_norm: tr
            .iter()
            .map(|(_, m)| m.iter().map(|x| x * x).sum::<f32>().sqrt())
            .collect(),
        units_forget: tr
            .iter()
            .map(|(gates, _)| gates[h..h + UNITS.min(h)].to_vec())
            .collect(),
        gates: names,
    }
}

/// What the model did for one document (see the module's documentation).
pub fn explain(m: &Summarizer, text: &str, opts: &DecodeOptions) -> Result<Explanation> {
    let beam = m.decoding(opts)?;
    let mut toks = m.tokenize(text);
    if toks.is_empty() {
        return Err(Error::EmptyDocument);
    }
    let max_src = beam.max_src_len;
    let truncated_from = (toks.len() > max_src).then_some(toks.len());
    toks.truncate(max_src);
    let ext = Extended::new(m.vocab(), &toks);
    let word = |id: u32| ext.word(m.vocab(), id).unwrap_or("<unk>").to_string();
    // 1. The search tree.
    let mut tree = Tree::default();
    let (mut summary, _) = m.summarize_tokens(&toks, &beam, &mut tree)?;
    m.recase(text, &mut summary);
    let beam_nodes = tree
        .0
        .iter()
        .enumerate()
        .flat_map(|(step, cands)| cands.iter().map(move |c| (step, c)))
        .map(|(step, c)| TreeNode {
            step,
            parent: c.parent,
            token: if c.token == EOS {
                "</s>".into()
            } else {
                word(c.token)
            },
            token_log_prob: c.token_log_prob,
            log_prob: c.log_prob,
            length_penalty: c.length_penalty,
            coverage_penalty: c.coverage_penalty,
            score: c.score,
            fate: match c.fate {
                abridge_decode::Fate::Kept(_) => "kept",
                abridge_decode::Fate::Finished => "finished",
                abridge_decode::Fate::Pruned => "pruned",
            },
            kept_as: match c.fate {
                abridge_decode::Fate::Kept(k) => Some(k),
                _ => None,
            },
        })
        .collect();
    // 2. Replay the best summary (and its `</s>` if it ended with one) token by token.
    let ids = summary.ids.clone();
    let src = m.vocab().encode(&toks);
    let mut st =
        Stepper::new(m.params(), m.config(), &src, &ext.src)?.with_half_vocab(m.half_vocab());
    let selection = match beam.select {
        Some(threshold) => {
            let copyable = m
                .copy_masks(&st, &[&src], Some(threshold))?
                .map(|mut v| v.remove(0))
                .unwrap_or_default();
            let probs = m
                .selection(&st, &[&src])?
                .map(|mut v| v.remove(0))
                .unwrap_or_default();
            st.set_copy_mask(std::slice::from_ref(&copyable));
            Some(Selection {
                threshold,
                probs,
                copyable,
            })
        }
        None => None,
    };
    let mut steps = Vec::new();
    let mut dec = Vec::new();
    let mut last = BOS;
    let v = st.vocab();
    let replay: Vec<u32> = ids.iter().copied().chain(std::iter::once(EOS)).collect();
    // Coverage as See et al. define it, whether or not the model feeds it to attention.
    let mut coverage = vec![0f32; toks.len()];
    for &y in &replay {
        let out = st.step(&[0], &[last]);
        let d = st
            .last_step_details(0)
            .ok_or_else(|| Error::Model("the decoder returned no step".into()))?;
        let prob = out
            .log_probs
            .get(y as usize)
            .filter(|_| (y as usize) < v)
            .map_or(0.0, |lp| lp.exp());
        if y == EOS && prob < 1e-6 && !ids.is_empty() {
            // The summary stopped at max_len, not with `</s>`: no step for it.
            break;
        }
        steps.push(OutputStep {
            token: if y == EOS { "</s>".into() } else { word(y) },
            oov: y as usize >= m.config().vocab,
            prob,
            p_gen: d.p_gen,
            coverage: coverage.clone(),
            attention: d.attention,
        });
        let att = &steps.last().expect("just pushed").attention;
        coverage.iter_mut().zip(att).for_each(|(c, a)| *c += a);
        dec.push((d.gates, d.memory));
        last = y;
    }
    let signals = abridge_rouge::signals::signals(
        &toks,
        &abridge_text::tokenize::split_sentences(&summary.tokens),
    );
    let mut means = abridge_rouge::signals::SignalMeans::default();
    means.add(&signals, summary.mean_p_gen());
    let faithfulness = means
        .means()
        .into_iter()
        .map(|(n, v)| (n.to_string(), serde_json::json!(v.map(|v| 100.0 * v))))
        .collect();
    // 3. The encoder.
    let lstm = m.config().cell == abridge_nn::CellKind::Lstm;
    let h = m.config().hidden;
    let mut encoder = Vec::new();
    for layer in 0..m.config().enc_layers {
        for (dir, name) in [(0, "left to right"), (1, "right to left")] {
            if let Some(tr) = st.encoder_trace(layer, dir) {
                encoder.push(gate_trace(
                    format!("encoder layer {} ({name})", layer + 1),
                    lstm,
                    h,
                    &tr,
                ));
            }
        }
    }
    Ok(Explanation {
        model: m.name().to_string(),
        cell: if lstm { "LSTM" } else { "GRU" }.into(),
        source: toks,
        truncated_from,
        summary: summary.text,
        decode: serde_json::json!({
            "beam": beam.beam.beam, "min_len": beam.beam.min_len, "max_len": beam.beam.max_len,
            "length_penalty": format!("{:?}", beam.beam.length_penalty).to_lowercase(),
            "coverage_penalty": format!("{:?}", beam.beam.coverage_penalty).to_lowercase(),
            "block_ngram": beam.beam.block_ngram,
        }),
        steps,
        encoder,
        decoder: gate_trace("decoder".into(), lstm, h, &dec),
        beam: beam_nodes,
        selection,
        faithfulness,
    })
}
