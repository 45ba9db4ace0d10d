//! Command-line definitions.

use abridge::{CoveragePenaltyKind, DecodeOptions, LengthPenaltyKind, SelectorMode};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "abridge",
    version,
    about = "Neural summarization with recurrent networks, CPU-first"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Benchmarks that print numbers (not tests).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Score summaries with ROUGE, exactly as rouge-score 0.1.2 or ROUGE-1.5.5.pl would.
    Rouge(RougeArgs),
    /// Inspect a corpus.
    #[command(subcommand)]
    Data(DataCommand),
    /// Build vocabularies.
    #[command(subcommand)]
    Vocab(VocabCommand),
    /// Inspect pretrained word vectors (GloVe, word2vec, fastText).
    #[command(subcommand)]
    Embeddings(EmbeddingsCommand),
    /// Train a summarizer (pointer-generator with attention, optionally coverage).
    Train(Box<TrainArgs>),
    /// The content selector (Gehrmann et al. 2018) that restricts what the pointer copies.
    #[command(subcommand)]
    Selector(SelectorCommand),
    /// Summarize documents with a trained model (beam search).
    Summarize(Box<SummarizeArgs>),
    /// Decode a test set, score it with ROUGE (both flavours) beside Lead-3, and time it.
    Eval(Box<EvalArgs>),
    /// Extractive baselines.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Show what the model did for one document: attention, p_gen, coverage, the gates and memory
    /// of the encoder and decoder, and the beam search tree (HTML report or JSON).
    Explain(Box<ExplainArgs>),
    /// Write a run's best checkpoint as a compact model folder (f16 weights) for inference.
    Export(ExportArgs),
    /// Bring a model or checkpoint folder written by an older Abridge to the current format
    /// (adds tokenizer_config.json and generation_config.json, rewrites config.json; the weights
    /// are untouched). A run folder migrates each of its checkpoints.
    Migrate(MigrateArgs),
    /// Serve summaries over HTTP (POST /v1/summarize, GET /health, /metrics, /openapi.json).
    Serve(Box<ServeArgs>),
}

/// What the server does with a document longer than --max-src-len tokens.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LongDocs {
    /// Summarize the first --max-src-len tokens and say so in the response (`notice`).
    Truncate,
    /// Answer 413 naming the document.
    Reject,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Model folder (default: the bundled model).
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Decoding threads shared by all requests (0 = one per core).
    #[arg(long, default_value_t = 0, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
    /// Largest request body accepted.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Most documents in one request.
    #[arg(long, default_value_t = 32)]
    pub max_docs: usize,
    /// Most documents admitted at once (queued or decoding); more get 503.
    #[arg(long, default_value_t = 256)]
    pub max_queue: usize,
    /// A request not answered within this many milliseconds gets 504.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// A client that takes longer than this to send its request body gets 408 (slow uploads must
    /// not hold a connection and its buffers forever).
    #[arg(long, default_value_t = 10_000)]
    pub read_timeout_ms: u64,
    /// A connection that takes longer than this to send a request's headers (a new connection, or
    /// an idle kept-alive one waiting for its next request) is closed.
    #[arg(long, default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// After SIGTERM/SIGINT, requests in flight get this long to finish; then the server exits.
    #[arg(long, default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,
    #[arg(long, value_enum, default_value = "truncate")]
    pub long_docs: LongDocs,
    /// Default decoding knobs (a request may override them).
    #[command(flatten)]
    pub decode: DecodeArgs,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model folder (a checkpoint folder, or a run folder: its `best` checkpoint); default: the
    /// bundled model.
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// Test pairs (any corpus format; documents and reference summaries).
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Decode at most this many pairs.
    #[arg(long)]
    pub max_examples: Option<usize>,
    /// Write the decodes here (JSON Lines: index, id, summary, reference; `abridge rouge --pairs`
    /// scores such files, several shards' at once). `{shard}` in the path becomes the shard index.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Evaluate only the pairs whose number (after --max-examples) is I modulo N (`I/N`; `auto`
    /// and `auto/N` as in `summarize --shard`). The shards' --out files together score exactly
    /// as one process: `abridge rouge --pairs part-*.jsonl`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Documents decoded together as one batch, one batch per thread (each document decodes
    /// exactly as alone). Measured on 2 cores, 200 dev articles: 1 → 24.0, 2 → 25.5, 4 → 25.0–26.1,
    /// 8 → 21.7 articles/s (past a few, regathering the encoder side as documents finish costs
    /// more than the shared weight reads save).
    #[arg(long, default_value_t = 4)]
    pub batch_docs: usize,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// The baseline scored beside the model on the same pairs: `lead-K` (the first K sentences),
    /// `words-N` (the first N words) or `none`.
    #[arg(long, default_value = "lead-3", value_parser = parse_baseline)]
    pub baseline: Baseline,
    /// text (a report), json (one object) or line (one line: pairs, R1, R2, RLsum).
    #[arg(long, value_enum, default_value = "text")]
    pub format: EvalFormat,
    /// Record the model's ROUGE on these pairs in its model card (`README.md` of --model: the
    /// `model-index` of its front matter; the card's text is kept).
    #[arg(long, requires = "model")]
    pub card: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SelectArg {
    Loss,
    Rouge,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum EvalFormat {
    Text,
    Json,
    Line,
}

/// An extractive baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    None,
    /// The first K sentences.
    Lead(usize),
    /// The first N words.
    Words(usize),
}

impl Baseline {
    pub fn name(self) -> String {
        match self {
            Baseline::None => "none".into(),
            Baseline::Lead(k) => format!("lead-{k}"),
            Baseline::Words(n) => format!("words-{n}"),
        }
    }
}

fn parse_baseline(s: &str) -> Result<Baseline, String> {
    let num = |rest: &str| {
        rest.parse::<usize>()
            .ok()
            .filter(|&n| (1..=10_000).contains(&n))
    };
    match s {
        "none" => Ok(Baseline::None),
        _ => match (
            s.strip_prefix("lead-").and_then(num),
            s.strip_prefix("words-").and_then(num),
        ) {
            (Some(k), _) => Ok(Baseline::Lead(k)),
            (_, Some(n)) => Ok(Baseline::Words(n)),
            _ => Err(format!(
                "unknown baseline {s:?}; expected lead-K, words-N (K, N from 1 to 10000) or none"
            )),
        },
    }
}

#[derive(Subcommand, Debug)]
pub enum SelectorCommand {
    /// Train a selector for a model folder on pairs (labels: the source runs each reference
    /// copies) and write `selector.json` + `selector.safetensors` into it (or --out).
    Train(Box<SelectorTrainArgs>),
}

#[derive(Args, Debug)]
pub struct SelectorTrainArgs {
    /// Training pairs (documents and reference summaries).
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// The model folder the selector is for (its vocabulary, tokenizer and source length).
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Where to write the selector's two files (default: the model folder).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Dev pairs: the selector with the best dev loss is kept.
    #[arg(long)]
    pub dev: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 1000)]
    pub dev_examples: usize,
    #[arg(long)]
    pub max_examples: Option<usize>,
    /// Source tokens per document (default: the model's training length).
    #[arg(long)]
    pub max_src_len: Option<usize>,
    /// lstm or gru.
    #[arg(long, default_value = "lstm")]
    pub cell: String,
    /// What the tagger reads: `encoder` = the summarizer's own (frozen) encoder states, `words` =
    /// word embeddings of its own (initialised from the summarizer's).
    #[arg(long, default_value = "encoder")]
    pub input: String,
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 5.0)]
    pub clip: f64,
    #[arg(long)]
    pub max_steps: Option<usize>,
    #[arg(long)]
    pub max_minutes: Option<f64>,
    #[arg(long, default_value_t = 500)]
    pub eval_every: usize,
    #[arg(long, default_value_t = 100)]
    pub log_every: usize,
    /// The decoding threshold ε stored with the selector (copying keeps tokens with q ≥ ε).
    #[arg(long, default_value_t = 0.15)]
    pub threshold: f32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The vocabulary's N most frequent words (function words, punctuation) stay copyable at
    /// decoding whatever the selector says, and a lone one is never a training label.
    #[arg(long, default_value_t = 50)]
    pub always_copy_top: u32,
    /// Store the weights in f16 (half the size; what a bundled model carries).
    #[arg(long)]
    pub f16: bool,
}

#[derive(Subcommand, Debug)]
pub enum BaselineCommand {
    /// Lead-k: the first k sentences of each document, scored with ROUGE against the summaries.
    Lead {
        #[command(flatten)]
        corpus: CorpusArgs,
        #[arg(long, default_value_t = 3)]
        k: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// The content selector as an extractive summarizer: the k sentences (within the model's
    /// source length) with the highest mean selection probability, in document order; scored
    /// beside Lead-k on the same pairs.
    Select {
        #[command(flatten)]
        corpus: CorpusArgs,
        /// Model folder with a selector (default: the bundled model).
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 3)]
        k: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// Decoding options shared by `summarize`, `eval`, `explain`, `serve` and `bench`: each one unset
/// takes the model's default (its `generation_config.json`); all are checked by the library, as
/// the HTTP server's request fields are.
#[derive(Args, Debug, Clone, Default)]
pub struct DecodeArgs {
    /// Beam size (1 = greedy).
    #[arg(long)]
    pub beam: Option<usize>,
    /// Fewest tokens before `</s>` (at most a quarter of the document's length).
    #[arg(long)]
    pub min_len: Option<usize>,
    /// Most tokens (at most the document's length); alone it also lowers the default minimum to it.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// none, gnmt ((5+|Y|)/6)^alpha, avg (per-token log-probability) or power (|Y|^alpha).
    #[arg(long)]
    pub length_penalty: Option<LengthPenaltyKind>,
    /// alpha of the GNMT and power length penalties.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// none, gnmt (-beta Σ log min(cov, 1)) or summary (beta (Σ max(cov, 1) − |X|)).
    #[arg(long)]
    pub coverage_penalty: Option<CoveragePenaltyKind>,
    #[arg(long)]
    pub beta: Option<f64>,
    /// Block repeated n-grams of this size (0 = off).
    #[arg(long)]
    pub block_ngram: Option<usize>,
    /// Source tokens kept (default: as many as the model was trained on).
    #[arg(long)]
    pub max_src_len: Option<usize>,
    /// Content selection (bottom-up copy attention): the pointer copies only source tokens the
    /// model's selector marks. auto = on when the model folder has a selector; on; off.
    #[arg(long)]
    pub selector: Option<SelectorMode>,
    /// ε: copy only tokens whose selection probability is at least this (default: the value
    /// stored with the selector, tuned on dev).
    #[arg(long)]
    pub select_threshold: Option<f32>,
}

impl DecodeArgs {
    /// The flags as the library's options.
    pub fn options(&self) -> DecodeOptions {
        DecodeOptions {
            beam: self.beam,
            min_len: self.min_len,
            max_len: self.max_len,
            length_penalty: self.length_penalty,
            alpha: self.alpha,
            coverage_penalty: self.coverage_penalty,
            beta: self.beta,
            block_ngram: self.block_ngram,
            max_src_len: self.max_src_len,
            selector: self.selector,
            select_threshold: self.select_threshold,
        }
    }
}

#[derive(Args, Debug)]
pub struct SummarizeArgs {
    /// Model folder (a checkpoint folder, or a run folder: its `best` checkpoint); default: the
    /// bundled model.
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// A text file, `-` for standard input, a directory of text files, or a .jsonl file.
    #[arg(default_value = "-")]
    pub input: String,
    /// With .jsonl input: the field holding the document.
    #[arg(long, default_value = "text")]
    pub field: String,
    #[command(flatten)]
    pub decode: DecodeArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: SummaryFormat,
    #[arg(long, default_value_t = 0, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
    /// Batch mode: write JSON Lines (`index`, `id`, the summary or an `error`) to this file, a
    /// chunk at a time, each chunk flushed to the disk; progress on standard error. `{shard}` in
    /// the path becomes the worker's shard index.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<std::path::PathBuf>,
    /// Batch mode: summarize only documents whose number is I modulo N (`I/N`); `auto` reads the
    /// index and count from an MPI launcher, `auto/N` the index from Kubernetes'
    /// JOB_COMPLETION_INDEX (or an MPI launcher).
    #[arg(long, value_name = "I/N", requires = "out")]
    pub shard: Option<String>,
    /// Batch mode: continue an existing --out (a torn last line is dropped; documents already
    /// there are skipped). Without it an existing --out is refused.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Batch mode: seconds between progress lines.
    #[arg(long, default_value_t = 10, requires = "out")]
    pub progress_secs: u64,
}

/// How `summarize` prints its summaries.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormat {
    /// Each summary one sentence per line (`== NAME` before each when there are several).
    Text,
    /// One line per document: its sentences joined by spaces.
    Line,
    /// One JSON object per line: id, summary (one line), sentences, tokens, copied_oov, score,
    /// truncated.
    #[value(alias = "json")]
    Jsonl,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum AttentionArg {
    /// Additive: v·tanh(W_h h + W_s s + w_c c + b) (Bahdanau et al. 2015; See et al. 2017).
    Bahdanau,
    /// Multiplicative: (W_s s)·(W_h h + b), Luong et al. (2015) "general" (no coverage).
    Luong,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DecayArg {
    None,
    /// sqrt(warmup / step).
    InverseSqrt,
    /// Linear to zero at --max-steps.
    Linear,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OptimArg {
    /// See et al.: lr 0.15, initial accumulator 0.1.
    Adagrad,
    Adam,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Development corpus (same format) for evaluation and early stopping.
    #[arg(long)]
    pub dev: Option<std::path::PathBuf>,
    /// Run folder: checkpoints, metrics.jsonl, manifest.json.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Continue the run in --out from its latest checkpoint (same data and seed: bit-identical).
    /// A changed seed, data file, tokenizer, model, optimizer or batch shape is refused.
    #[arg(long, conflicts_with = "init_from")]
    pub resume: bool,
    /// With --resume: continue even though the run's defining settings changed (the changes are
    /// recorded in manifest.json under `resumes`).
    #[arg(long, requires = "resume")]
    pub allow_changed_run: bool,
    /// Start a new run from a trained model's weights and vocabulary (e.g. See et al.'s coverage
    /// phase: `--init-from runs/pg --coverage`); the optimizer starts afresh.
    #[arg(long)]
    pub init_from: Option<std::path::PathBuf>,
    /// Vocabulary to use (default: built from the training data with --vocab-size).
    #[arg(long)]
    pub vocab: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 50_000)]
    pub vocab_size: usize,
    /// Keep only words seen at least this often when building the vocabulary (small corpora:
    /// 2–5 keeps one-off names and typos out and lets the pointer copy them).
    #[arg(long, default_value_t = 1)]
    pub min_count: u64,
    /// What makes a checkpoint the best (and what --patience waits for): `loss` (dev loss) or
    /// `rouge` (mean ROUGE-1/2/Lsum F1 of greedy decodes of the dev pairs).
    #[arg(long, value_enum, default_value = "loss")]
    pub select: SelectArg,
    /// Use at most this many training pairs.
    #[arg(long)]
    pub max_examples: Option<usize>,
    /// Use at most this many development pairs.
    #[arg(long, default_value_t = 500)]
    pub dev_examples: usize,
    /// Evaluate the dev loss only, without ROUGE of greedy decodes.
    #[arg(long)]
    pub no_dev_rouge: bool,
    #[arg(long, value_enum, default_value = "lstm")]
    pub cell: CellArg,
    #[arg(long, default_value_t = 128)]
    pub emb: usize,
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    #[arg(long, default_value_t = 256)]
    pub attn: usize,
    #[arg(long, default_value_t = 1)]
    pub enc_layers: usize,
    /// Initialise the word embeddings from pretrained vectors (GloVe/word2vec/fastText; their
    /// dimension must equal --emb).
    #[arg(long, value_name = "FILE")]
    pub embeddings: Option<std::path::PathBuf>,
    /// Keep the word embeddings fixed during training.
    #[arg(long)]
    pub freeze_embeddings: bool,
    /// Turn the pointer-generator off (plain attention).
    #[arg(long)]
    pub no_pointer: bool,
    /// Tie the vocabulary projection to the word embedding (W_v = E; the output layer gets E
    /// units): about V·H fewer parameters.
    #[arg(long)]
    pub tie_output: bool,
    /// Attention score: additive (See et al.) or multiplicative (Luong et al. "general").
    #[arg(long, value_enum, default_value = "bahdanau")]
    pub attention: AttentionArg,
    /// Separate source and target embedding tables (default: one shared table).
    #[arg(long)]
    pub separate_embeddings: bool,
    /// Do not feed the previous context vector into the decoder input.
    #[arg(long)]
    pub no_input_feeding: bool,
    /// Dropout probability on the encoder input embeddings and the output layer (training only).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Coverage in the attention and the coverage loss.
    #[arg(long)]
    pub coverage: bool,
    #[arg(long, default_value_t = 1.0)]
    pub cov_weight: f64,
    #[arg(long, value_enum, default_value = "adagrad")]
    pub optimizer: OptimArg,
    /// Learning rate (default 0.15 for Adagrad, 0.001 for Adam).
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = 0.1)]
    pub adagrad_init: f64,
    #[arg(long, default_value_t = 2.0)]
    pub clip: f64,
    /// Linear learning-rate warm-up over this many steps.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,
    /// Learning-rate decay after warm-up.
    #[arg(long, value_enum, default_value = "none")]
    pub lr_decay: DecayArg,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 400)]
    pub max_src_len: usize,
    #[arg(long, default_value_t = 100)]
    pub max_tgt_len: usize,
    #[arg(long, default_value_t = 10_000)]
    pub max_steps: u64,
    /// Stop (with a checkpoint) after this many minutes of training, whatever the step count.
    #[arg(long)]
    pub max_minutes: Option<f64>,
    #[arg(long, default_value_t = 500)]
    pub eval_every: u64,
    /// Evaluations without improvement before stopping (0 = never stop early).
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Checkpoint folders kept besides the best (0 = all).
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Under `mpirun` (a build with the `mpi` feature): the longest wait on another rank, at the
    /// start, at each step and in each sum, before the job ends naming the rank that did not
    /// answer. It must cover the ranks' differences in work (data loading, rank 0's checkpoint
    /// writes).
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub rank_timeout_s: f64,
}

/// Where a corpus is and how to read it.
#[derive(Args, Debug, Clone)]
pub struct CorpusArgs {
    /// Corpus: .jsonl, .csv, .tsv (with a header) or X.source beside X.target; plain, .gz or .zst.
    pub file: std::path::PathBuf,
    /// JSON field / CSV column of the document.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// JSON field / CSV column of the summary.
    #[arg(long, default_value = "summary")]
    pub summary_field: String,
    /// Stop at the first bad record instead of skipping and counting them.
    #[arg(long)]
    pub strict: bool,
    /// Lower-case the text.
    #[arg(long)]
    pub lowercase: bool,
    /// The corpus is already tokenized (e.g. CNN/DailyMail as See et al. prepared it): split on spaces.
    #[arg(long)]
    pub pretokenized: bool,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
}

impl CorpusArgs {
    /// The corpus at `path` (this command's `--file` or another, e.g. `--dev`) read with these
    /// field names.
    pub fn open(&self, path: &std::path::Path) -> anyhow::Result<abridge_text::corpus::Corpus> {
        Ok(abridge_text::corpus::Corpus::guess(
            path,
            abridge_text::corpus::Fields {
                text: self.text_field.clone(),
                summary: self.summary_field.clone(),
            },
        )?)
    }
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Pairs, bad records, and token-length percentiles of documents and summaries.
    Stats {
        #[command(flatten)]
        corpus: CorpusArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum VocabCommand {
    /// Count tokens over a corpus and write a vocabulary (versioned JSON).
    Build {
        #[command(flatten)]
        corpus: CorpusArgs,
        /// Output file; with --separate, `<stem>.source.json` and `<stem>.target.json` beside it.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Most entries, the 4 special tokens included.
        #[arg(long, default_value_t = 50_000)]
        max_size: usize,
        /// Fewest occurrences a token needs.
        #[arg(long, default_value_t = 1)]
        min_count: u64,
        /// Separate source and target vocabularies (default: one shared).
        #[arg(long)]
        separate: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum EmbFormatArg {
    /// From the name: `.bin` is word2vec binary, anything else text (a `count dim` header is detected).
    Auto,
    Glove,
    /// word2vec text or fastText .vec (with a header).
    Text,
    /// word2vec binary.
    Bin,
}

#[derive(Args, Debug)]
pub struct EmbFileArgs {
    /// Vectors file (plain, .gz or .zst).
    #[arg(long)]
    pub file: std::path::PathBuf,
    #[arg(long = "emb-format", value_enum, default_value = "auto")]
    pub emb_format: EmbFormatArg,
}

#[derive(Subcommand, Debug)]
pub enum EmbeddingsCommand {
    /// The words nearest to a word by cosine similarity.
    Neighbors {
        #[command(flatten)]
        emb: EmbFileArgs,
        #[arg(long)]
        word: String,
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// How much of a vocabulary the vectors cover.
    Coverage {
        #[command(flatten)]
        emb: EmbFileArgs,
        #[arg(long)]
        vocab: std::path::PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Flavor {
    /// Google's rouge-score 0.1.2 (what Hugging Face `evaluate` reports).
    #[value(name = "rouge-score")]
    RougeScore,
    /// The original ROUGE-1.5.5.pl, as papers run it.
    #[value(name = "rouge155")]
    Rouge155,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OutFormat {
    /// A readable corpus summary.
    Text,
    /// The corpus summary as one JSON object.
    Json,
    /// One JSON line of scores per pair.
    Jsonl,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum MultiArg {
    /// `-f A`: pool counts over references.
    #[value(name = "A")]
    A,
    /// `-f B`: the reference with the best recall.
    #[value(name = "B")]
    B,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["pairs", "hyp"])))]
pub struct RougeArgs {
    /// JSON Lines with `id`, `hyp`, and `ref` (string) or `refs` (list); `\n` separates sentences.
    /// `abridge eval --out`'s files are read as they are (`summary`, `reference`, `references`);
    /// several files are scored as one set (e.g. the parts of a sharded eval).
    #[arg(long, value_name = "FILE.jsonl", num_args = 1..)]
    pub pairs: Vec<std::path::PathBuf>,
    /// Hypotheses: a file with one summary per line, or a directory with one file per summary.
    #[arg(long, value_name = "FILE|DIR", requires = "reference")]
    pub hyp: Option<std::path::PathBuf>,
    /// References, aligned with --hyp (same line numbers, or same file names).
    #[arg(long = "ref", value_name = "FILE|DIR", requires = "hyp")]
    pub reference: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value = "rouge-score")]
    pub flavor: Flavor,
    /// Stem: NLTK's Porter (rouge-score) or `-m`, WordNet exceptions then Porter (rouge155).
    #[arg(long)]
    pub stem: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutFormat,
    /// rouge-score types, comma-separated (rouge1..rougeN, rougeL, rougeLsum).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rouge1,rouge2,rougeL,rougeLsum"
    )]
    pub types: Vec<String>,
    /// Bootstrap seed (rouge-score: `np.random.seed(SEED)` before `aggregate()`).
    #[arg(long, default_value_t = 42)]
    pub seed: u32,
    /// Bootstrap resamples (rouge-score `n_samples`; rouge155 `-r`).
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Confidence level of the interval (rouge155 `-c` is this × 100).
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// rouge155 `-n`: ROUGE-1 … ROUGE-N.
    #[arg(long, default_value_t = 4)]
    pub max_n: usize,
    /// rouge155 `-w`: ROUGE-W weight.
    #[arg(long, default_value_t = 1.2)]
    pub weight: f64,
    /// rouge155: leave out ROUGE-W.
    #[arg(long)]
    pub no_w: bool,
    /// rouge155: leave out ROUGE-S* and ROUGE-SU* (no `-2 -1 -U`).
    #[arg(long)]
    pub no_skip_bigrams: bool,
    /// rouge155 `-p`: α of the F-measure.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// rouge155 `-s`: remove SMART stopwords.
    #[arg(long)]
    pub stopwords: bool,
    /// rouge155 `-l N`: keep the first N words of every text (references too).
    #[arg(long, value_name = "N", conflicts_with = "limit_bytes")]
    pub limit_words: Option<usize>,
    /// rouge155 `-b N`: keep the first N bytes of every text (references too).
    #[arg(long, value_name = "N")]
    pub limit_bytes: Option<usize>,
    /// rouge155 `-f`: how several references combine.
    #[arg(long, value_enum, default_value = "A")]
    pub multi: MultiArg,
    /// With `--format jsonl`: nest each pair's scores under this dotted path (e.g.
    /// `rouge_score.stem`), the layout `../shared/rouge/check.py` compares against.
    #[arg(long, value_name = "PATH")]
    pub nest: Option<String>,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// One recurrent layer, forward+backward and forward-only, with PyTorch's anchor shapes.
    Rnn(RnnBenchArgs),
    /// f32 GEMM throughput (the machine's peak that the RNN figures are compared with).
    Gemm(GemmBenchArgs),
    /// ROUGE throughput: rouge1, rouge2, rougeL, rougeLsum with stemming over many pairs.
    Rouge(RougeBenchArgs),
    /// One training step of the summarizer with PyTorch's anchor shapes (random data): ms/step,
    /// tokens/s, peak memory.
    Train(TrainBenchArgs),
    /// Decoding with PyTorch's anchor shapes (random weights, 30 tokens): greedy batch 32 and 1,
    /// beam 4 batch 1.
    Decode(TrainBenchArgs),
    /// Latency of summarizing one document with a model (loaded once; median of --reps).
    Summarize(SummarizeBenchArgs),
    /// Load test of a running `abridge serve`: sustained requests/s, latency percentiles, errors
    /// and the server's memory, at each concurrency for a fixed time.
    Serve(ServeBenchArgs),
    /// Mutation fuzzing of the tokenizer, the corpus readers, the model folder loader and the
    /// HTTP request parser for a time budget; findings (panics, broken invariants, hangs) are
    /// saved and make the command fail.
    Fuzz(FuzzArgs),
    /// Tokenize a corpus and build its vocabulary: throughput and peak memory.
    Data {
        #[command(flatten)]
        corpus: CorpusArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum FuzzTarget {
    Tokenizer,
    Corpus,
    Folder,
    Request,
    /// Checks the harness: panics on inputs holding `PANIC`, hangs on ones holding `HANG`.
    #[value(hide = true)]
    PanicCheck,
}

#[derive(Args, Debug)]
pub struct FuzzArgs {
    /// Time spent on mutants after the kept corpus has been replayed (0: replay only).
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Targets to fuzz, in turn (default: all four).
    #[arg(long, value_enum)]
    pub target: Vec<FuzzTarget>,
    /// The kept corpus: one folder per target, one input per file.
    #[arg(long, default_value = "fuzz/corpus")]
    pub corpus: std::path::PathBuf,
    /// Where findings' inputs are written.
    #[arg(long, default_value = "fuzz/crashes")]
    pub crashes: std::path::PathBuf,
    /// Also write mutants that show a new feature into the corpus folder.
    #[arg(long)]
    pub grow: bool,
    /// First shrink the corpus folder to the inputs that each show a feature no shorter one
    /// shows (the others' files are deleted).
    #[arg(long)]
    pub minimize: bool,
    /// The mutator's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest input, in bytes.
    #[arg(long, default_value_t = 1 << 16)]
    pub max_len: usize,
    /// An input running longer than this is a finding (a hang) and ends the run.
    #[arg(long, default_value_t = 10_000)]
    pub hang_ms: u64,
}

#[derive(Args, Debug)]
pub struct RougeBenchArgs {
    /// Score these pairs (JSON Lines as for `abridge rouge`) instead of generated ones.
    #[arg(long, value_name = "FILE.jsonl")]
    pub pairs: Option<std::path::PathBuf>,
    /// Generated pairs: how many.
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// Generated pairs: words per hypothesis and per reference.
    #[arg(long, default_value_t = 60)]
    pub words: usize,
    /// Also write the generated pairs here (to time another scorer on the same input).
    #[arg(long, value_name = "FILE.jsonl")]
    pub write: Option<std::path::PathBuf>,
    /// rouge-score flavour (default) or rouge155.
    #[arg(long, value_enum, default_value = "rouge-score")]
    pub flavor: Flavor,
    /// Warm repetitions after the first (cold) run; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    #[arg(long, default_value_t = 2, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CellArg {
    Lstm,
    Gru,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct RnnBenchArgs {
    #[arg(long, value_enum, default_value = "lstm")]
    pub cell: CellArg,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 2, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
    /// Time steps `T`.
    #[arg(long, default_value_t = 200)]
    pub seq: usize,
    /// Batch `B`.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Input features `I`.
    #[arg(long, default_value_t = 128)]
    pub input: usize,
    /// Hidden units `H`.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Layers.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    #[arg(long)]
    pub bidirectional: bool,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Iterations per repetition.
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Which measurements: forward+backward, forward only, or both.
    #[arg(long, value_enum, default_value = "all")]
    pub phase: Phase,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Phase {
    All,
    Train,
    Infer,
}

#[derive(Args, Debug)]
pub struct TrainBenchArgs {
    #[arg(long, value_enum, default_value = "lstm")]
    pub cell: CellArg,
    #[arg(long, default_value_t = 2, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
    #[arg(long, default_value_t = 20_000)]
    pub vocab: usize,
    #[arg(long, default_value_t = 128)]
    pub emb: usize,
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 200)]
    pub src_len: usize,
    #[arg(long, default_value_t = 30)]
    pub tgt_len: usize,
    /// Turn the pointer on (the PyTorch anchor has none).
    #[arg(long)]
    pub pointer: bool,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct GemmBenchArgs {
    #[arg(long, default_value_t = 2, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
    /// Square size n of the n×n·n×n product.
    #[arg(long, default_value_t = 2048)]
    pub size: usize,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct ServeBenchArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// A text file: the document every request summarizes.
    #[arg(long)]
    pub text: std::path::PathBuf,
    /// Concurrent connections, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub concurrency: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Stop a run after this many requests even if time is left.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Extra request fields as a JSON object, e.g. '{"beam": 4}'.
    #[arg(long, default_value = "{}")]
    pub knobs: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// One self-contained HTML file (inline SVG; no script, no network).
    Html,
    Json,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Model folder (default: the bundled model).
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// A text file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub input: String,
    /// Write the report here (default: standard output).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value = "html")]
    pub format: ReportFormat,
    #[command(flatten)]
    pub decode: DecodeArgs,
    #[arg(long, default_value_t = 0, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DtypeArg {
    F16,
    F32,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A run folder (its `best`, else `latest` checkpoint) or a checkpoint folder.
    pub src: std::path::PathBuf,
    /// The model folder to write.
    pub out: std::path::PathBuf,
    #[arg(long, value_enum, default_value = "f16")]
    pub dtype: DtypeArg,
    /// Replace a model already in OUT.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SummarizeBenchArgs {
    /// Model folder (default: the bundled model).
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// The document (a text file).
    pub input: std::path::PathBuf,
    #[arg(long, default_value_t = 10)]
    pub reps: usize,
    #[command(flatten)]
    pub decode: DecodeArgs,
    #[arg(long, default_value_t = 2, env = "ABRIDGE_THREADS", value_parser = parse_threads)]
    pub threads: usize,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// A model folder, a checkpoint folder, or a run folder (each checkpoint in it).
    pub dir: std::path::PathBuf,
}

/// The most worker threads any command accepts: more only adds OS threads, not speed.
pub const MAX_THREADS: usize = 1024;

/// `--threads N`: 0 (one per core) to [`MAX_THREADS`].
fn parse_threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if n > MAX_THREADS {
        return Err(format!("at most {MAX_THREADS} (0 = one per core), got {n}"));
    }
    Ok(n)
}
