//! `abridge._abridge`: the Python extension over the `abridge` library. The Python package
//! (`python/abridge/__init__.py`) re-exports it and adds rouge-score's `Score` tuple.
//!
//! Decoding runs with the GIL released: two Python threads summarize in parallel.

use abridge::{DecodeOptions, Summarizer as Inner};
use abridge_rouge::{Rouge155Options, RougeScorer, RougeType};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(
    _abridge,
    AbridgeError,
    PyException,
    "An error from Abridge; the message names the problem and where (a file, an option, a \
     document)."
);

fn err(e: abridge::Error) -> PyErr {
    AbridgeError::new_err(e.to_string())
}

/// A model ready to summarize: `Summarizer()` is the bundled CNN/DailyMail model,
/// `Summarizer(path)` a model folder (or a training run folder).
#[pyclass(frozen, module = "abridge._abridge")]
struct Summarizer {
    inner: Inner,
}

/// One summary.
#[pyclass(frozen, get_all, module = "abridge._abridge")]
struct Summary {
    /// The summary, one sentence per line.
    text: String,
    /// Its sentences.
    sentences: Vec<String>,
    tokens: Vec<String>,
    /// The beam search's score (length-normalised log-probability with penalties).
    score: f64,
    /// Source words outside the vocabulary that the pointer copied.
    copied_oov: Vec<String>,
    /// Whether the document was cut to the model's source length.
    truncated: bool,
}

#[pymethods]
impl Summary {
    fn __repr__(&self) -> String {
        format!(
            "Summary(text={:?}, tokens=<{}>, score={:.4}, truncated={})",
            self.text,
            self.tokens.len(),
            self.score,
            if self.truncated { "True" } else { "False" }
        )
    }
    fn __str__(&self) -> String {
        self.text.clone()
    }
}

impl From<abridge::Summary> for Summary {
    fn from(s: abridge::Summary) -> Self {
        Self {
            sentences: s.sentences().map(str::to_string).collect(),
            text: s.text,
            tokens: s.tokens,
            score: s.score,
            copied_oov: s.copied_oov,
            truncated: s.truncated,
        }
    }
}

/// Keyword options as the library's `DecodeOptions` (names parsed here; ranges checked by the
/// library, with the same messages as the CLI and the HTTP server).
#[allow(clippy::too_many_arguments)]
fn options(
    beam: Option<usize>,
    min_len: Option<usize>,
    max_len: Option<usize>,
    length_penalty: Option<&str>,
    alpha: Option<f64>,
    coverage_penalty: Option<&str>,
    beta: Option<f64>,
    block_ngram: Option<usize>,
    max_src_len: Option<usize>,
    selector: Option<&str>,
    select_threshold: Option<f32>,
) -> PyResult<DecodeOptions> {
    fn parse<T: std::str::FromStr<Err = String>>(
        field: &str,
        v: Option<&str>,
    ) -> PyResult<Option<T>> {
        v.map(|s| {
            s.parse::<T>()
                .map_err(|m| AbridgeError::new_err(format!("`{field}`: {m}")))
        })
        .transpose()
    }
    Ok(DecodeOptions {
        beam,
        min_len,
        max_len,
        length_penalty: parse("length_penalty", length_penalty)?,
        alpha,
        coverage_penalty: parse("coverage_penalty", coverage_penalty)?,
        beta,
        block_ngram,
        max_src_len,
        selector: parse("selector", selector)?,
        select_threshold,
    })
}

#[pymethods]
impl Summarizer {
    #[new]
    #[pyo3(signature = (path=None))]
    fn new(py: Python<'_>, path: Option<std::path::PathBuf>) -> PyResult<Self> {
        let inner = py
            .detach(|| match path {
                Some(p) => Inner::open(p),
                None => Inner::bundled(),
            })
            .map_err(err)?;
        Ok(Self { inner })
    }

    /// Where the model came from (a path, or `bundled:...`).
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The model's decoding defaults (its generation_config.json) as a dict.
    #[getter]
    fn generation_config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = self.inner.generation_config();
        let d = PyDict::new(py);
        d.set_item("beam", g.beam)?;
        d.set_item("min_len", g.min_len)?;
        d.set_item("max_len", g.max_len)?;
        d.set_item("length_penalty", g.length_penalty.name())?;
        d.set_item("alpha", g.alpha)?;
        d.set_item("coverage_penalty", g.coverage_penalty.name())?;
        d.set_item("beta", g.beta)?;
        d.set_item("block_ngram", g.block_ngram)?;
        Ok(d)
    }

    /// Summarizes one document; keyword options override the model's defaults. `threads`:
    /// cores for this one decode (0 = all); several Python threads decoding at once each pass
    /// `threads=1`.
    #[pyo3(signature = (text, *, threads=0, beam=None, min_len=None, max_len=None, length_penalty=None,
        alpha=None, coverage_penalty=None, beta=None, block_ngram=None, max_src_len=None,
        selector=None, select_threshold=None))]
    #[allow(clippy::too_many_arguments)]
    fn summarize(
        &self,
        py: Python<'_>,
        text: String,
        threads: usize,
        beam: Option<usize>,
        min_len: Option<usize>,
        max_len: Option<usize>,
        length_penalty: Option<&str>,
        alpha: Option<f64>,
        coverage_penalty: Option<&str>,
        beta: Option<f64>,
        block_ngram: Option<usize>,
        max_src_len: Option<usize>,
        selector: Option<&str>,
        select_threshold: Option<f32>,
    ) -> PyResult<Summary> {
        let o = options(
            beam,
            min_len,
            max_len,
            length_penalty,
            alpha,
            coverage_penalty,
            beta,
            block_ngram,
            max_src_len,
            selector,
            select_threshold,
        )?;
        let inner = &self.inner;
        py.detach(|| abridge::with_threads(threads, || inner.summarize(&text, &o)))
            .map(Summary::from)
            .map_err(err)
    }

    /// Summarizes many documents on `threads` threads (0 = one per core), `batch_docs`
    /// documents per batched search; results in input order. A document that cannot be
    /// summarized raises, naming its index.
    #[pyo3(signature = (texts, *, threads=0, batch_docs=4, beam=None, min_len=None, max_len=None,
        length_penalty=None, alpha=None, coverage_penalty=None, beta=None, block_ngram=None,
        max_src_len=None, selector=None, select_threshold=None))]
    #[allow(clippy::too_many_arguments)]
    fn summarize_batch(
        &self,
        py: Python<'_>,
        texts: Vec<String>,
        threads: usize,
        batch_docs: usize,
        beam: Option<usize>,
        min_len: Option<usize>,
        max_len: Option<usize>,
        length_penalty: Option<&str>,
        alpha: Option<f64>,
        coverage_penalty: Option<&str>,
        beta: Option<f64>,
        block_ngram: Option<usize>,
        max_src_len: Option<usize>,
        selector: Option<&str>,
        select_threshold: Option<f32>,
    ) -> PyResult<Vec<Summary>> {
        let o = options(
            beam,
            min_len,
            max_len,
            length_penalty,
            alpha,
            coverage_penalty,
            beta,
            block_ngram,
            max_src_len,
            selector,
            select_threshold,
        )?;
        let d = self.inner.decoding(&o).map_err(err)?;
        let inner = &self.inner;
        let results = py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            inner.summarize_all(&refs, &d, batch_docs, threads)
        });
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.map(Summary::from)
                    .map_err(|e| AbridgeError::new_err(format!("texts[{i}]: {e}")))
            })
            .collect()
    }

    /// Lead-k: the first `k` sentences, one per line, as the model tokenizes them.
    #[pyo3(signature = (text, k=3))]
    fn lead(&self, text: &str, k: usize) -> String {
        self.inner.lead(text, k)
    }

    fn __repr__(&self) -> String {
        format!("Summarizer({:?})", self.inner.name())
    }
}

/// Per pair, `(type, precision, recall, fmeasure)` per ROUGE type.
type PairScores = Vec<Vec<(String, f64, f64, f64)>>;

/// References: one string per hypothesis, or a list of strings (several references).
#[derive(FromPyObject)]
enum Refs {
    One(Vec<String>),
    Many(Vec<Vec<String>>),
}

/// ROUGE of each hypothesis against its reference(s): a list (one per pair) of lists of
/// `(type, precision, recall, fmeasure)`. The Python wrapper turns them into rouge-score's
/// dicts of `Score` tuples.
#[pyfunction]
#[pyo3(signature = (hyps, refs, flavor="rouge-score", stem=true, types=None))]
fn rouge(
    py: Python<'_>,
    hyps: Vec<String>,
    refs: Refs,
    flavor: &str,
    stem: bool,
    types: Option<Vec<String>>,
) -> PyResult<PairScores> {
    let refs: Vec<Vec<String>> = match refs {
        Refs::One(v) => v.into_iter().map(|r| vec![r]).collect(),
        Refs::Many(v) => v,
    };
    if refs.len() != hyps.len() {
        return Err(AbridgeError::new_err(format!(
            "{} hypotheses but {} references",
            hyps.len(),
            refs.len()
        )));
    }
    if let Some(i) = refs.iter().position(Vec::is_empty) {
        return Err(AbridgeError::new_err(format!("refs[{i}] is an empty list")));
    }
    match flavor {
        "rouge-score" => {
            let names = types
                .unwrap_or_else(|| ["rouge1", "rouge2", "rougeLsum"].map(String::from).to_vec());
            let types = names
                .iter()
                .map(|t| {
                    RougeType::parse(t).ok_or_else(|| {
                        AbridgeError::new_err(format!(
                            "`types`: unknown ROUGE type {t:?} (rouge1 … rouge9, rougeL, rougeLsum)"
                        ))
                    })
                })
                .collect::<PyResult<Vec<_>>>()?;
            let scorer = RougeScorer::new(types, stem);
            Ok(py.detach(|| {
                hyps.iter()
                    .zip(&refs)
                    .map(|(h, r)| {
                        let r: Vec<&str> = r.iter().map(String::as_str).collect();
                        scorer
                            .score_multi(&r, h)
                            .into_iter()
                            .map(|(t, s)| (t.name(), s.precision, s.recall, s.fmeasure))
                            .collect()
                    })
                    .collect()
            }))
        }
        "rouge155" => {
            if types.is_some() {
                return Err(AbridgeError::new_err(
                    "`types`: the rouge155 flavour reports ROUGE-1, ROUGE-2 and ROUGE-L (See et \
                     al.'s -n 2 -a); leave `types` out",
                ));
            }
            let opts = Rouge155Options {
                stem,
                ..Rouge155Options::see_et_al()
            };
            Ok(py.detach(|| {
                hyps.iter()
                    .zip(&refs)
                    .map(|(h, r)| {
                        let r: Vec<&str> = r.iter().map(String::as_str).collect();
                        abridge_rouge::rouge155::score(h, &r, &opts)
                            .into_iter()
                            .map(|(n, p)| (n, p.P, p.R, p.F))
                            .collect()
                    })
                    .collect()
            }))
        }
        other => Err(AbridgeError::new_err(format!(
            "`flavor`: unknown value {other:?}; expected rouge-score or rouge155"
        ))),
    }
}

#[pymodule]
fn _abridge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Summarizer>()?;
    m.add_class::<Summary>()?;
    m.add_function(wrap_pyfunction!(rouge, m)?)?;
    m.add("AbridgeError", m.py().get_type::<AbridgeError>())?;
    m.add("HAS_BUNDLED_MODEL", abridge::HAS_BUNDLED_MODEL)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
