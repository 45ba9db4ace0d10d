//! The model folder through the library: written, opened, summarized with; every required file
//! missing, corrupt, older or newer gives an error naming it; a format-1 folder migrates and then
//! summarizes exactly as before.

use std::path::Path;

use abridge::folder::{self, FolderMeta, ModelFolder, TokenizerConfig};
use abridge::tensors::WeightType;
use abridge::{DecodeOptions, GenerationConfig, Summarizer};
use abridge_model::{ModelConfig, Params};
use abridge_tensor::Rng;
use abridge_text::vocab::{Vocab, VocabConfig};

const DOC: &str = "The cat sat on the mat. It was a sunny day, and the dog slept.";

fn tiny_meta() -> FolderMeta {
    let words = "the cat sat on mat . it was a sunny day , and dog slept";
    let counts = words
        .split(' ')
        .enumerate()
        .map(|(i, w)| (w.to_string(), 100 - i as u64))
        .collect();
    let vocab = Vocab::from_counts(&counts, VocabConfig::default());
    FolderMeta {
        config: ModelConfig {
            vocab: vocab.len(),
            emb: 8,
            hidden: 8,
            attn: 8,
            coverage: true,
            ..Default::default()
        },
        generation: GenerationConfig {
            min_len: 2,
            max_len: 6,
            ..Default::default()
        },
        tokenizer: TokenizerConfig {
            lowercase: true,
            ptb: false,
            max_source_tokens: 50,
        },
        vocab,
    }
}

fn write_tiny(dir: &Path) {
    let meta = tiny_meta();
    let mut params = Params::<f32>::init(&meta.config, &mut Rng::new(7));
    folder::write_model(dir, &meta, &mut params, WeightType::F32).unwrap();
}

fn err_of(dir: &Path) -> String {
    match Summarizer::open(dir) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_written_folder_opens_and_summarizes_with_its_own_defaults() {
    let d = tempfile::tempdir().unwrap();
    write_tiny(d.path());
    let m = Summarizer::open(d.path()).unwrap();
    assert_eq!(m.generation_config().max_len, 6);
    let s = m.summarize(DOC, &DecodeOptions::new()).unwrap();
    assert!((2..=6).contains(&s.tokens.len()), "{s:?}");
    assert!(!s.truncated);
    // Options override the defaults; the batch gives each document what it gets alone.
    let o = DecodeOptions::new().beam(2).max_len(3);
    let one = m.summarize(DOC, &o).unwrap();
    assert!(one.tokens.len() <= 3);
    let batch = m.summarize_batch(&[DOC, "  ", DOC], &o);
    assert_eq!(batch[0].as_ref().unwrap(), &one);
    assert!(matches!(batch[1], Err(abridge::Error::EmptyDocument)));
    assert_eq!(batch[2].as_ref().unwrap(), &one);
    let d2 = m.decoding(&o).unwrap();
    let all = m.summarize_all(&[DOC, DOC, DOC], &d2, 2, 2);
    assert!(all.iter().all(|r| r.as_ref().unwrap() == &one));
    // A source cut to its first tokens says so.
    let cut = m.summarize(DOC, &o.clone().max_src_len(4)).unwrap();
    assert!(cut.truncated);
    // Asking for more than the model was made for is worth a warning (its max_len is 6).
    assert!(m.length_warning(&DecodeOptions::new().min_len(6)).is_none());
    let w = m.length_warning(&DecodeOptions::new().min_len(7)).unwrap();
    assert!(
        w.starts_with("min_len 7 is above the longest summaries"),
        "{w}"
    );
    // A bad option is refused by name.
    let e = m.summarize(DOC, &DecodeOptions::new().beam(0)).unwrap_err();
    assert_eq!(e.to_string(), "`beam`: must be between 1 and 16, got 0");
    assert!(m
        .summarize(
            DOC,
            &DecodeOptions::new().selector(abridge::SelectorMode::On)
        )
        .unwrap_err()
        .to_string()
        .contains("no content selector"));
}

#[test]
fn each_required_file_missing_or_corrupt_is_named() {
    for name in [
        folder::CONFIG,
        folder::GENERATION,
        folder::TOKENIZER,
        folder::VOCAB,
        folder::WEIGHTS,
    ] {
        let d = tempfile::tempdir().unwrap();
        write_tiny(d.path());
        let p = d.path().join(name);
        std::fs::write(&p, b"{ not json").unwrap();
        let e = err_of(d.path());
        assert!(e.contains(name), "{name} corrupt: {e}");
        if name != folder::WEIGHTS {
            std::fs::remove_file(&p).unwrap();
            let e = err_of(d.path());
            assert!(
                e.contains(name) && e.contains("missing"),
                "{name} gone: {e}"
            );
        }
    }
}

#[test]
fn other_format_versions_and_bad_values_are_refused_by_name() {
    for (name, from, to, needle) in [
        (
            folder::CONFIG,
            "\"abridge_format\": 2",
            "\"abridge_format\": 3",
            "newer",
        ),
        (
            folder::GENERATION,
            "\"abridge_format\": 2",
            "\"abridge_format\": 1",
            "abridge migrate",
        ),
        (
            folder::TOKENIZER,
            "\"abridge_format\": 2,",
            "",
            "abridge migrate",
        ),
        (folder::GENERATION, "\"beam\": 4", "\"beam\": 0", "`beam`"),
        (
            folder::GENERATION,
            "\"beam\": 4",
            "\"beam\": 4, \"beams\": 2",
            "beams",
        ),
        (
            folder::TOKENIZER,
            "\"ptb\": false",
            "\"ptb\": \"no\"",
            "ptb",
        ),
        (folder::CONFIG, "\"hidden\": 8", "\"hidden\": 0", "size"),
    ] {
        let d = tempfile::tempdir().unwrap();
        write_tiny(d.path());
        let p = d.path().join(name);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{name}: {text}");
        std::fs::write(&p, text.replace(from, to)).unwrap();
        let e = err_of(d.path());
        assert!(e.contains(name) && e.contains(needle), "{name} {to}: {e}");
    }
}

#[test]
fn a_format_1_folder_migrates_and_summarizes_as_before() {
    let d = tempfile::tempdir().unwrap();
    write_tiny(d.path());
    let before = Summarizer::open(d.path())
        .unwrap()
        .summarize(DOC, &DecodeOptions::new().max_len(5))
        .unwrap();
    // The format-1 layout: config.json with a version, the tokenizer in the run's manifest.
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join(folder::CONFIG)).unwrap()).unwrap();
    let mut old = cfg.as_object().unwrap().clone();
    old.remove("abridge_format");
    old.remove("model_type");
    old.insert("version".into(), 1.into());
    std::fs::write(
        d.path().join(folder::CONFIG),
        serde_json::to_vec(&old).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(d.path().join(folder::GENERATION)).unwrap();
    std::fs::remove_file(d.path().join(folder::TOKENIZER)).unwrap();
    std::fs::write(
        d.path().join("manifest.json"),
        br#"{"run": {"train": {"max_src_len": 50}}, "data": {"tokenizer": {"lowercase": true}}}"#,
    )
    .unwrap();
    let e = err_of(d.path());
    assert!(e.contains("abridge migrate"), "{e}");
    let m = folder::migrate(d.path()).unwrap();
    assert_eq!(m.written.len(), 3);
    let mf = ModelFolder::read(d.path()).unwrap();
    assert_eq!(mf.meta.tokenizer, tiny_meta().tokenizer);
    assert_eq!(mf.meta.generation, GenerationConfig::default());
    let after = Summarizer::open(d.path())
        .unwrap()
        .summarize(DOC, &DecodeOptions::new().max_len(5))
        .unwrap();
    assert_eq!(before, after);
    // Migrating again changes nothing.
    assert!(folder::migrate(d.path()).unwrap().written.is_empty());
}

#[test]
fn the_model_card_has_the_hub_front_matter() {
    let card = folder::ModelCard {
        name: "m".into(),
        datasets: vec!["cnn_dailymail".into()],
        eval_dataset: Some(("cnn_dailymail".into(), "validation".into())),
        results: vec![("rouge1".into(), "ROUGE-1".into(), 41.4)],
        body: "# m\n".into(),
    };
    let t = card.render();
    assert!(t.starts_with("---\nlibrary_name: abridge\npipeline_tag: summarization\n"));
    for needle in [
        "datasets:\n- \"cnn_dailymail\"",
        "model-index:\n- name: \"m\"",
        "value: 41.40",
        "---\n\n# m\n",
    ] {
        assert!(t.contains(needle), "{needle}: {t}");
    }
}

/// The bundled model (when this build carries it) reads the same through the library as the
/// folder on disk, and its defaults are the tuned CNN/DailyMail settings.
#[test]
fn the_bundled_model_is_the_folder_in_the_repository() {
    if !abridge::HAS_BUNDLED_MODEL {
        assert!(matches!(
            Summarizer::bundled(),
            Err(abridge::Error::NoBundledModel)
        ));
        return;
    }
    let b = Summarizer::bundled().unwrap();
    assert_eq!(b.generation_config(), &GenerationConfig::default());
    assert!(b.selector().is_some());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/default");
    let f = Summarizer::open(dir).unwrap();
    let o = DecodeOptions::new().beam(2).max_len(12);
    assert_eq!(b.summarize(DOC, &o).unwrap(), f.summarize(DOC, &o).unwrap());
}

/// A lower-casing model's summary is shown in the document's own casing: each word as the
/// document mostly writes it away from a sentence start, sentences capitalised.
#[test]
fn summaries_take_the_document_s_casing() {
    let d = tempfile::tempdir().unwrap();
    write_tiny(d.path());
    let m = Summarizer::open(d.path()).unwrap();
    let doc = "The Cat sat on the mat. It was a sunny day in Oslo, and the cat slept. Dog ran.";
    let mut s = m.summarize(doc, &DecodeOptions::new().max_len(3)).unwrap();
    s.tokens = ["the", "cat", "slept", "in", "oslo", ".", "dog", "ran", "."]
        .map(String::from)
        .to_vec();
    m.recase(doc, &mut s);
    // "cat" is "Cat" once and "cat" once mid-sentence (a tie goes to the lower-case form);
    // "Oslo" as written; "dog" only starts a sentence: the model's form, capitalised as a start.
    assert_eq!(s.text, "The cat slept in Oslo.\nDog ran.");
    let doc2 = "Reports from NASA came in. NASA said the Cat and the Cat Hotel were fine.";
    s.tokens = ["nasa", "liked", "the", "cat", "."]
        .map(String::from)
        .to_vec();
    m.recase(doc2, &mut s);
    assert_eq!(s.text, "NASA liked the Cat.");
}

/// A model whose weights hold a NaN (a diverged run) loads as an error naming the tensor, so
/// that no command and no server ever runs it.
#[test]
fn non_finite_weights_are_refused_by_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let meta = tiny_meta();
    let mut params = Params::<f32>::init(&meta.config, &mut Rng::new(7));
    params.att_v[3] = f32::NAN;
    folder::write_model(dir.path(), &meta, &mut params, WeightType::F32).unwrap();
    let e = err_of(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("non-finite"),
        "{e}"
    );
}

/// A config.json whose sizes do not fit the weights (absurdly large ones included) is an error
/// naming both files, found before anything is allocated for those sizes.
#[test]
fn absurd_config_sizes_are_refused_before_allocating() {
    for (key, value) in [
        ("hidden", 1_000_000_000u64),
        ("emb", 4_000_000_000),
        ("attn", 1 << 40),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_tiny(dir.path());
        let p = dir.path().join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        cfg[key] = serde_json::json!(value);
        std::fs::write(&p, cfg.to_string()).unwrap();
        let e = err_of(dir.path());
        assert!(
            e.contains("model.safetensors") && e.contains("does not belong to these weights"),
            "{key}: {e}"
        );
    }
}

/// The byte offset where a safetensors file's tensor data starts.
fn data_start(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// Flipped bytes anywhere in the weights (f32 or f16), or in the selector's, are an error naming
/// the file and a tensor that fails its checksum: never a model that loads and writes garbage.
#[test]
fn damaged_weights_are_refused_by_checksum() {
    for dtype in [WeightType::F32, WeightType::F16] {
        let dir = tempfile::tempdir().unwrap();
        let meta = tiny_meta();
        let mut params = Params::<f32>::init(&meta.config, &mut Rng::new(7));
        folder::write_model(dir.path(), &meta, &mut params, dtype).unwrap();
        let p = dir.path().join(folder::WEIGHTS);
        let good = std::fs::read(&p).unwrap();
        let start = data_start(&good);
        // 200 bytes flipped at spread-out places, and a single bit.
        let mut many = good.clone();
        let span = many.len() - start;
        for k in 0..200 {
            many[start + k * span / 200] ^= 0xff;
        }
        let mut one = good.clone();
        one[start + span / 3] ^= 0x01;
        for bad in [many, one] {
            std::fs::write(&p, &bad).unwrap();
            let e = err_of(dir.path());
            assert!(
                e.contains("model.safetensors") && e.contains("fails its checksum"),
                "{dtype:?}: {e}"
            );
        }
        std::fs::write(&p, &good).unwrap();
        Summarizer::open(dir.path()).unwrap();
    }
    // The bundled model's selector, damaged in a copy of the folder.
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/default"));
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let p = dir.path().join(abridge::selector_file::WEIGHTS);
    let mut b = std::fs::read(&p).unwrap();
    let at = data_start(&b) + 1000;
    b[at] ^= 0x10;
    std::fs::write(&p, &b).unwrap();
    let e = err_of(dir.path());
    assert!(
        e.contains("selector.safetensors") && e.contains("fails its checksum"),
        "{e}"
    );
}

/// Weights beside a vocabulary other than the one they were trained with (same size, other
/// words or order) are refused: the ids would mean other words.
#[test]
fn weights_with_another_vocabulary_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path());
    let meta = tiny_meta();
    let mut counts: Vec<(String, u64)> = meta
        .vocab
        .tokens()
        .iter()
        .skip(4)
        .enumerate()
        .map(|(i, w)| (w.clone(), 100 - i as u64))
        .collect();
    // Two words trade places: same size, same words, other ids.
    counts.swap(0, 1);
    counts[0].1 = 200;
    let other = Vocab::from_counts(&counts.into_iter().collect(), VocabConfig::default());
    assert_eq!(other.len(), meta.vocab.len());
    assert_ne!(other.fingerprint(), meta.vocab.fingerprint());
    other.save(&dir.path().join(folder::VOCAB)).unwrap();
    let e = err_of(dir.path());
    assert!(
        e.contains("model.safetensors") && e.contains("another vocabulary"),
        "{e}"
    );
}

/// A weights file from before checksums existed still opens (unverified); `migrate` adds the
/// checksums and the vocabulary's fingerprint without changing a value, after which damage is
/// found.
#[test]
fn migrate_adds_checksums_to_older_weights() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path());
    let p = dir.path().join(folder::WEIGHTS);
    let bytes = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    meta.retain(|k, _| k == "format" || k == "version");
    let views: Vec<_> = st.tensors();
    let old = safetensors::serialize(views, Some(meta)).unwrap();
    std::fs::write(&p, &old).unwrap();
    let before = Summarizer::open(dir.path())
        .unwrap()
        .summarize(DOC, &DecodeOptions::new().max_len(5))
        .unwrap();
    let m = folder::migrate(dir.path()).unwrap();
    assert_eq!(m.written, vec![folder::WEIGHTS.to_string()]);
    assert!(folder::migrate(dir.path()).unwrap().written.is_empty());
    let after = Summarizer::open(dir.path())
        .unwrap()
        .summarize(DOC, &DecodeOptions::new().max_len(5))
        .unwrap();
    assert_eq!(before, after);
    let mut b = std::fs::read(&p).unwrap();
    let at = data_start(&b) + 5;
    b[at] ^= 0x02;
    std::fs::write(&p, &b).unwrap();
    assert!(err_of(dir.path()).contains("fails its checksum"));
}
