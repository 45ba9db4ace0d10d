//! [`Summarizer`]: a loaded model folder and everything needed to turn text into a summary.

use std::path::Path;

use abridge_decode::{beam_search_observed, BeamConfig, Hypothesis, Observer};
use abridge_model::{ModelConfig, Params, Selector, Stepper};
use abridge_tensor::HalfMatrix;
use abridge_text::tokenize::{detokenize, detokenize_lines, split_sentences, Tokenizer};
use abridge_text::vocab::{Extended, Vocab};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::folder::{self, FolderMeta, ModelFolder, TokenizerConfig};
use crate::options::{DecodeOptions, GenerationConfig, SelectorMode};
use crate::selector_file::SelectorFile;

/// A model ready to summarize. Cheap to share between threads (`&Summarizer` is `Sync`).
pub struct Summarizer {
    name: String,
    meta: FolderMeta,
    params: Params<f32>,
    /// The vocabulary projection in f16: decoding streams it once per token.
    half_vocab: HalfMatrix,
    selector: Option<(SelectorFile, Selector<f32>)>,
    /// How input text is split into words (the model's settings; see
    /// [`Summarizer::set_pretokenized`]).
    words: Tokenizer,
}

/// How to decode one request: the beam search, the source length, content selection.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoding {
    pub beam: BeamConfig,
    /// Source tokens kept.
    pub max_src_len: usize,
    /// Copy threshold of content selection (`None` = off).
    pub select: Option<f32>,
}

/// One summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Detokenized, one sentence per line.
    pub text: String,
    pub tokens: Vec<String>,
    /// Extended-vocabulary ids of `tokens` (ids past the vocabulary are copied source words).
    pub ids: Vec<u32>,
    /// Source words outside the vocabulary that the pointer copied.
    pub copied_oov: Vec<String>,
    /// The search's score (length-normalised log-probability plus penalties).
    pub score: f64,
    /// `p_gen` at each token (empty without the pointer).
    pub p_gen: Vec<f32>,
    /// Whether the document was cut to the source length before encoding.
    pub truncated: bool,
    /// Whether the summary was cut at the maximum length (the search did not end it).
    pub cut: bool,
}

impl Summary {
    /// The summary's sentences (the lines of `text`).
    pub fn sentences(&self) -> impl Iterator<Item = &str> {
        self.text.lines()
    }

    /// The summary on one line: its sentences joined by spaces.
    pub fn one_line(&self) -> String {
        self.sentences().collect::<Vec<_>>().join(" ")
    }

    /// The mean `p_gen` over the tokens (`None` without the pointer or tokens).
    pub fn mean_p_gen(&self) -> Option<f64> {
        (!self.p_gen.is_empty())
            .then(|| self.p_gen.iter().map(|&g| g as f64).sum::<f64>() / self.p_gen.len() as f64)
    }
}

impl Summarizer {
    /// Opens a model folder, or a training run folder (its `best`, else `latest`, checkpoint).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let dir = folder::model_dir(path)?;
        let f = ModelFolder::read(&dir)?;
        Ok(Self::from_folder(path.display().to_string(), f))
    }

    /// The default model carried by this build (CNN/DailyMail, see the README).
    pub fn bundled() -> Result<Self> {
        crate::bundled::folder().map(|f| Self::from_folder("bundled:cnndm-pg".into(), f))
    }

    /// A summarizer of a model folder already read; `name` is how it is reported.
    pub fn from_folder(name: String, f: ModelFolder) -> Self {
        Self {
            name,
            words: f.meta.tokenizer.tokenizer(),
            half_vocab: f.params.half_vocab(),
            meta: f.meta,
            params: f.params,
            selector: f.selector,
        }
    }

    /// Where the model came from (a path, or `bundled:...`).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn config(&self) -> &ModelConfig {
        &self.meta.config
    }
    pub fn params(&self) -> &Params<f32> {
        &self.params
    }
    pub fn vocab(&self) -> &Vocab {
        &self.meta.vocab
    }
    pub fn half_vocab(&self) -> &HalfMatrix {
        &self.half_vocab
    }
    pub fn tokenizer_config(&self) -> &TokenizerConfig {
        &self.meta.tokenizer
    }
    /// The model's decoding defaults (`generation_config.json`).
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.meta.generation
    }
    /// The folder's metadata (config, defaults, tokenizer, vocabulary).
    pub fn meta(&self) -> &FolderMeta {
        &self.meta
    }
    /// The content selector stored with the model, if any.
    pub fn selector(&self) -> Option<&(SelectorFile, Selector<f32>)> {
        self.selector.as_ref()
    }

    /// Tokens of raw text as the model reads it (not cut to the source length).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        self.meta.tokenizer.tokenize_with(&self.words, text)
    }

    /// Input text is already tokenized (tokens separated by spaces, as in See et al.'s
    /// CNN/DailyMail files): split on whitespace instead of tokenizing.
    pub fn set_pretokenized(&mut self, on: bool) {
        self.words.pretokenized = on;
    }

    /// The word tokenizer input goes through (before the model's bracket forms).
    pub fn word_tokenizer(&self) -> &Tokenizer {
        &self.words
    }

    /// `opts` merged with the model's defaults and checked (the one place decoding options are
    /// validated; the error names the option).
    pub fn decoding(&self, opts: &DecodeOptions) -> Result<Decoding> {
        let r = opts.resolve(&self.meta.generation)?;
        let select = match (r.selector, &self.selector) {
            (SelectorMode::Off, _) | (SelectorMode::Auto, None) => None,
            (SelectorMode::On, None) => {
                return Err(Error::option(
                    "selector",
                    "this model has no content selector (train one with `abridge selector \
                     train --model DIR`)",
                ))
            }
            (_, Some((file, _))) => Some(r.select_threshold.unwrap_or(file.threshold)),
        };
        Ok(Decoding {
            beam: r.beam,
            max_src_len: r
                .max_src_len
                .unwrap_or(self.meta.tokenizer.max_source_tokens),
            select,
        })
    }

    /// A warning when `opts` asks for summaries longer than the model was trained to produce: a
    /// `min_len` above its default `max_len` (which training sets at the 99th percentile of its
    /// summaries' lengths). Such a model pads to the minimum with invented words.
    pub fn length_warning(&self, opts: &DecodeOptions) -> Option<String> {
        let trained = self.meta.generation.max_len;
        opts.min_len.filter(|&m| m > trained).map(|m| {
            format!(
                "min_len {m} is above the longest summaries this model was made for ({trained} \
                 tokens, its generation_config.json max_len); expect padding with invented words"
            )
        })
    }

    /// A warning when most of a document's words (more than half of those with a letter or
    /// digit) are outside the model's vocabulary: text in another language or domain than the
    /// model was trained on, which it can only copy from blindly.
    pub fn vocabulary_warning(&self, text: &str) -> Option<String> {
        let toks = self.tokenize(text);
        let words: Vec<&String> = toks
            .iter()
            .filter(|t| t.chars().any(char::is_alphanumeric))
            .collect();
        let unknown = words
            .iter()
            .filter(|t| self.vocab().get(t).is_none())
            .count();
        (words.len() >= 4 && unknown * 2 > words.len()).then(|| {
            format!(
                "{}% of the document's words are outside this model's vocabulary of {} words \
                 (another language or domain?); expect a poor summary",
                (100 * unknown + words.len() / 2) / words.len(),
                self.vocab().len()
            )
        })
    }

    /// Summarizes one document. The kernels split their work over the rayon pool this runs in
    /// (else the global pool, one thread per core); see [`crate::with_threads`].
    pub fn summarize(&self, text: &str, opts: &DecodeOptions) -> Result<Summary> {
        let d = self.decoding(opts)?;
        self.summarize_with(text, &d)
    }

    /// Summarizes one document with resolved settings.
    pub fn summarize_with(&self, text: &str, d: &Decoding) -> Result<Summary> {
        let (toks, truncated) = self.source(text, d.max_src_len);
        let (mut s, _) = self.summarize_tokens(&toks, d, &mut ())?;
        s.truncated = truncated;
        self.recase(text, &mut s);
        Ok(s)
    }

    /// Rewrites `summary.text` in the document's own surface forms when the model reads
    /// lower-cased text: each word takes the casing it most often has in `text` away from the
    /// start of a sentence (a tie goes to the lower-case form). A word seen only
    /// sentence-initially keeps that form when it is not a plain capitalised word (`iPhone`,
    /// `NASA`, an address); else, or when not seen at all, the model's form. Each summary
    /// sentence starts with a capital unless its first word is written otherwise (`iPhone`, an
    /// address). `tokens` are unchanged.
    pub fn recase(&self, text: &str, summary: &mut Summary) {
        if !self.meta.tokenizer.lowercase || summary.tokens.is_empty() {
            return;
        }
        let cased = Tokenizer {
            lowercase: false,
            ..self.words
        }
        .tokenize(text);
        type Forms = std::collections::HashMap<String, Vec<(String, usize)>>;
        let (mut forms, mut initial) = (Forms::new(), Forms::new());
        let key_of = |w: &str| {
            let mut key = vec![w.to_lowercase()];
            if self.meta.tokenizer.ptb {
                abridge_text::tokenize::to_ptb(&mut key);
            }
            key.pop().expect("one token")
        };
        for sentence in split_sentences(&cased) {
            for (i, w) in sentence.iter().enumerate() {
                if !w.chars().any(char::is_uppercase) && !w.chars().any(char::is_lowercase) {
                    continue;
                }
                let table = if i == 0 { &mut initial } else { &mut forms };
                let list = table.entry(key_of(w)).or_default();
                match list.iter_mut().find(|(f, _)| f == w) {
                    Some((_, n)) => *n += 1,
                    None => list.push((w.clone(), 1)),
                }
            }
        }
        // The most frequent form; a tie goes to the lower-case one, else the first seen.
        let most_frequent = |list: &[(String, usize)], t: &str| {
            list.iter()
                .enumerate()
                .max_by_key(|(i, (f, n))| (*n, f == t, std::cmp::Reverse(*i)))
                .map(|(_, (f, _))| f.clone())
        };
        let mut words: Vec<String> = summary
            .tokens
            .iter()
            .map(|t| {
                forms
                    .get(t)
                    .and_then(|list| most_frequent(list, t))
                    .or_else(|| {
                        initial
                            .get(t)
                            .and_then(|list| most_frequent(list, t))
                            .filter(|f| !plain_capitalised(f))
                    })
                    .unwrap_or_else(|| t.clone())
            })
            .collect();
        // Capitalise each sentence's first word.
        let mut at = 0;
        for sentence in split_sentences(&summary.tokens) {
            if let Some(w) = words[at..at + sentence.len()]
                .iter_mut()
                .find(|w| w.chars().any(char::is_alphanumeric))
            {
                let keep = w.chars().any(char::is_uppercase) || w.contains(['@', '/', ':']);
                let mut c = w.chars();
                if let Some(first) = c.next().filter(|f| f.is_lowercase() && !keep) {
                    *w = first.to_uppercase().chain(c).collect();
                }
            }
            at += sentence.len();
        }
        summary.text = detokenize_lines(balanced(&words, summary.cut));
    }

    /// A document's tokens cut to `max_src_len`, and whether they were cut.
    pub fn source(&self, text: &str, max_src_len: usize) -> (Vec<String>, bool) {
        let mut toks = self.tokenize(text);
        let truncated = toks.len() > max_src_len.max(1);
        toks.truncate(max_src_len.max(1));
        (toks, truncated)
    }

    /// Summarizes tokens (already cut) with beam search watched by `obs`; the flag says whether
    /// `obs` stopped the search (the summary is then the best unfinished hypothesis).
    pub fn summarize_tokens<O: Observer + ?Sized>(
        &self,
        toks: &[String],
        d: &Decoding,
        obs: &mut O,
    ) -> Result<(Summary, bool)> {
        if toks.is_empty() {
            return Err(Error::EmptyDocument);
        }
        let ext = Extended::new(self.vocab(), toks);
        let src = self.vocab().encode(toks);
        let mut stepper = Stepper::new(&self.params, self.config(), &src, &ext.src)?
            .with_half_vocab(&self.half_vocab);
        if let Some(masks) = self.copy_masks(&stepper, &[&src], d.select)? {
            stepper.set_copy_mask(&masks);
        }
        let mut beam = d.beam.clone();
        (beam.min_len, beam.max_len) = capped_lengths(beam.min_len, beam.max_len, toks.len());
        let (hyps, stopped) = beam_search_observed(&mut stepper, &beam, obs);
        Ok((self.summary_of(&ext, hyps, beam.max_len)?, stopped))
    }

    /// Summarizes documents in one batched search (each document's search is the same as alone;
    /// the model steps over all of their hypotheses at once). Each document gets its own result.
    pub fn summarize_batch(&self, texts: &[&str], opts: &DecodeOptions) -> Vec<Result<Summary>> {
        match self.decoding(opts) {
            Ok(d) => self.summarize_batch_with(texts, &d),
            Err(e) => texts.iter().map(|_| Err(e.duplicate())).collect(),
        }
    }

    /// [`Summarizer::summarize_batch`] with resolved settings.
    pub fn summarize_batch_with(&self, texts: &[&str], d: &Decoding) -> Vec<Result<Summary>> {
        let docs: Vec<Option<(Extended, Vec<u32>, bool)>> = texts
            .iter()
            .map(|t| {
                let (toks, cut) = self.source(t, d.max_src_len);
                (!toks.is_empty()).then(|| {
                    (
                        Extended::new(self.vocab(), &toks),
                        self.vocab().encode(&toks),
                        cut,
                    )
                })
            })
            .collect();
        if docs.iter().flatten().any(|(_, src, _)| {
            capped_lengths(d.beam.min_len, d.beam.max_len, src.len())
                != (d.beam.min_len, d.beam.max_len)
        }) {
            // A short document has its own (capped) minimum length: decode each alone, exactly
            // as `summarize_tokens` does.
            return texts.iter().map(|t| self.summarize_with(t, d)).collect();
        }
        let live: Vec<&(Extended, Vec<u32>, bool)> = docs.iter().flatten().collect();
        let decoded: Result<Vec<Vec<Hypothesis>>> = if live.is_empty() {
            Ok(Vec::new())
        } else {
            let pairs: Vec<(&[u32], &[u32])> = live
                .iter()
                .map(|(ext, src, _)| (&src[..], &ext.src[..]))
                .collect();
            let lens: Vec<usize> = pairs.iter().map(|(s, _)| s.len()).collect();
            let srcs: Vec<&[u32]> = pairs.iter().map(|(s, _)| *s).collect();
            Stepper::new_batch(&self.params, self.config(), &pairs)
                .map_err(Error::from)
                .and_then(|st| {
                    let mut st = st.with_half_vocab(&self.half_vocab);
                    if let Some(masks) = self.copy_masks(&st, &srcs, d.select)? {
                        st.set_copy_mask(&masks);
                    }
                    Ok(abridge_decode::beam_search_batch(&mut st, &lens, &d.beam))
                })
        };
        let mut decoded = match decoded {
            Ok(v) => v.into_iter(),
            Err(e) => return texts.iter().map(|_| Err(e.duplicate())).collect(),
        };
        docs.iter()
            .zip(texts)
            .map(|(doc, text)| match doc {
                None => Err(Error::EmptyDocument),
                Some((ext, _, cut)) => {
                    let mut s = self.summary_of(
                        ext,
                        decoded.next().expect("one per live document"),
                        d.beam.max_len,
                    )?;
                    s.truncated = *cut;
                    self.recase(text, &mut s);
                    Ok(s)
                }
            })
            .collect()
    }

    /// Summarizes many documents on `threads` threads (0 = one per core): groups of
    /// `batch_docs` documents, each one batched search, groups in parallel. Results are in
    /// input order.
    pub fn summarize_all(
        &self,
        texts: &[&str],
        d: &Decoding,
        batch_docs: usize,
        threads: usize,
    ) -> Vec<Result<Summary>> {
        crate::with_threads(threads, || {
            texts
                .par_chunks(batch_docs.max(1))
                .flat_map_iter(|g| self.summarize_batch_with(g, d))
                .collect()
        })
    }

    /// The selector's probabilities for documents encoded together by `st` (`docs[d]` its
    /// vocabulary ids); `None` without a selector.
    pub fn selection(&self, st: &Stepper<'_>, docs: &[&[u32]]) -> Result<Option<Vec<Vec<f32>>>> {
        let Some((_, sel)) = &self.selector else {
            return Ok(None);
        };
        let feats = (sel.cfg.features > 0).then(|| st.encoder_output());
        Ok(Some(sel.predict(docs, feats)?))
    }

    /// Per document of `st`, which positions the pointer may copy from at threshold `t`;
    /// `None` without a selector or `t`.
    pub fn copy_masks(
        &self,
        st: &Stepper<'_>,
        docs: &[&[u32]],
        t: Option<f32>,
    ) -> Result<Option<Vec<Vec<bool>>>> {
        let (Some(t), Some((file, _))) = (t, &self.selector) else {
            return Ok(None);
        };
        let probs = self.selection(st, docs)?.expect("a selector");
        Ok(Some(
            probs
                .into_iter()
                .zip(docs)
                .map(|(p, d)| {
                    p.into_iter()
                        .zip(d.iter())
                        .map(|(q, &id)| q >= t || file.always_copy(id))
                        .collect()
                })
                .collect(),
        ))
    }

    /// What the model did for one document: the search tree, per output token the attention,
    /// coverage and `p_gen`, the recurrent layers' gates and memory, the selector's marks.
    pub fn explain(&self, text: &str, opts: &DecodeOptions) -> Result<crate::explain::Explanation> {
        crate::explain::explain(self, text, opts)
    }

    /// The first `k` sentences of a document, one per line, in the model's tokenization.
    pub fn lead(&self, text: &str, k: usize) -> String {
        lead(&self.words, text, k)
    }

    /// The selector's extractive summary of tokens `toks` (already cut to the source length):
    /// the `k` sentences with the highest mean selection probability, in document order.
    pub fn select_sentences(&self, toks: &[String], k: usize) -> Result<String> {
        if toks.is_empty() {
            return Ok(String::new());
        }
        let ids = self.vocab().encode(toks);
        let st = Stepper::new(&self.params, self.config(), &ids, &ids)?;
        let q = self
            .selection(&st, &[&ids])?
            .ok_or_else(|| {
                Error::option(
                    "selector",
                    "this model has no content selector (train one with `abridge selector train`)",
                )
            })?
            .remove(0);
        let sents = split_sentences(toks);
        let mut scored: Vec<(usize, f64)> = Vec::with_capacity(sents.len());
        let mut at = 0;
        for (i, s) in sents.iter().enumerate() {
            let mean = q[at..at + s.len()].iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64;
            scored.push((i, mean));
            at += s.len();
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut keep: Vec<usize> = scored.iter().take(k).map(|&(i, _)| i).collect();
        keep.sort_unstable();
        Ok(keep
            .iter()
            .map(|&i| detokenize(&sents[i]))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// The summary a search's hypotheses (best first) give.
    fn summary_of(&self, ext: &Extended, hyps: Vec<Hypothesis>, max_len: usize) -> Result<Summary> {
        let best = hyps
            .into_iter()
            .next()
            .ok_or_else(|| Error::Model("beam search returned nothing".into()))?;
        let vocab = self.vocab();
        let words: Vec<String> = best
            .tokens
            .iter()
            .map(|&id| ext.word(vocab, id).unwrap_or("<unk>").to_string())
            .collect();
        let copied_oov = best
            .tokens
            .iter()
            .filter(|&&id| id as usize >= vocab.len())
            .filter_map(|&id| ext.word(vocab, id))
            .map(str::to_string)
            .collect();
        Ok(Summary {
            text: detokenize_lines(balanced(&words, best.tokens.len() >= max_len)),
            cut: best.tokens.len() >= max_len,
            tokens: words,
            ids: best.tokens,
            copied_oov,
            score: best.score,
            p_gen: best.p_gen,
            truncated: false,
        })
    }
}

/// A word whose only capital is its first letter (`The`, `Paris`): at a sentence start, that
/// capital may be the sentence's rather than the word's.
fn plain_capitalised(w: &str) -> bool {
    let mut c = w.chars();
    c.next().is_some_and(char::is_uppercase)
        && c.all(|x| !x.is_uppercase())
        && w.chars()
            .all(|x| x.is_alphabetic() || x == '-' || x == '\'')
}

/// The (minimum, maximum) summary lengths for a document of `src_len` tokens: a summary is never
/// longer than its document, and its minimum is at most a quarter of the document (at least 1),
/// so that a short text is never padded into a longer invented one.
pub fn capped_lengths(min_len: usize, max_len: usize, src_len: usize) -> (usize, usize) {
    let max = max_len.min(src_len.max(1));
    (min_len.min((src_len / 4).max(1)).min(max), max)
}

/// Lead-k: the first `k` sentences of a document (tokenized by `tok`, sentence-split,
/// detokenized one per line).
pub fn lead(tok: &Tokenizer, text: &str, k: usize) -> String {
    let tokens = tok.tokenize(text);
    split_sentences(&tokens)
        .iter()
        .take(k)
        .map(|s| detokenize(s))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `words` of a summary `cut` at its maximum length without the bracket or quote the cut left
/// open (`profits rose ($`): everything from the first opening in the unfinished last sentence that
/// never closes is dropped, unless that would leave nothing. A summary the search ended itself is
/// left as it is.
fn balanced(words: &[String], cut: bool) -> &[String] {
    if !cut {
        return words;
    }
    // The unfinished last sentence starts after the last sentence-final token.
    let last_start = words
        .iter()
        .rposition(|w| abridge_text::tokenize::scan::ends_sentence(w))
        .map_or(0, |i| i + 1);
    let opening = |w: &str| {
        matches!(
            w,
            "(" | "[" | "{" | "-lrb-" | "-lsb-" | "-lcb-" | "``" | "`"
        )
    };
    let closes = |open: &str, w: &str| match open {
        "(" | "-lrb-" => matches!(w, ")" | "-rrb-"),
        "[" | "-lsb-" => matches!(w, "]" | "-rsb-"),
        "{" | "-lcb-" => matches!(w, "}" | "-rcb-"),
        "``" => w == "''",
        _ => w == "'",
    };
    let mut open: Vec<(usize, &str)> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if opening(w) {
            open.push((i, w));
        } else if let Some(&(_, o)) = open.last() {
            if closes(o, w) {
                open.pop();
            }
        }
    }
    match open.iter().find(|&&(i, _)| i >= last_start) {
        Some(&(i, _)) if i > 0 => &words[..i],
        _ => words,
    }
}

#[cfg(test)]
mod tests {
    use super::balanced;

    fn b(s: &str) -> String {
        let w: Vec<String> = s.split(' ').map(String::from).collect();
        assert_eq!(
            balanced(&w, false),
            &w[..],
            "a summary the search ended is kept"
        );
        balanced(&w, true).join(" ")
    }

    #[test]
    fn a_cut_never_leaves_an_open_bracket_or_quote() {
        assert_eq!(b("profits rose ( $"), "profits rose");
        assert_eq!(
            b("profits rose -lrb- $ 3m -rrb- ."),
            "profits rose -lrb- $ 3m -rrb- ."
        );
        assert_eq!(b("he said `` we will"), "he said");
        assert_eq!(b("he said `` no '' and ( later"), "he said `` no '' and");
        assert_eq!(b("the parents ' club"), "the parents ' club");
        assert_eq!(b("( only"), "( only");
        // An unclosed quote in a finished sentence is not the cut's doing.
        assert_eq!(
            b("he said `` no . the plan ( was"),
            "he said `` no . the plan"
        );
    }
}
