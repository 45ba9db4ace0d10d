//! Checkpoints: bit-identical resume, atomicity against a crash mid-save, corrupt files, and
//! non-finite batches being skipped.

use abridge_model::{ModelConfig, Optimizer, Params};
use abridge_nn::CellKind;
use abridge_tensor::Rng;
use abridge_text::batch::{BatchConfig, Encoded};
use abridge_text::vocab::{Vocab, VocabConfig};
use abridge_train::checkpoint::{Checkpoint, TrainState};
use abridge_train::trainer::{train, DevSet, TrainConfig};

fn setup() -> (Checkpoint, Vec<Encoded>, TrainConfig) {
    let words: Vec<String> = (0..12).map(|i| format!("w{i}")).collect();
    let counts = words.iter().take(8).map(|w| (w.clone(), 1u64)).collect();
    let vocab = Vocab::from_counts(&counts, VocabConfig::default());
    let tcfg = TrainConfig {
        batch_size: 4,
        max_src_len: 10,
        max_tgt_len: 10,
        max_steps: 8,
        clip: 2.0,
        seed: 5,
        eval_every: 4,
        patience: 0,
        keep: 3,
        schedule: Default::default(),
        freeze_embeddings: false,
        time_limit_s: None,
        select: Default::default(),
    };
    let bcfg = BatchConfig {
        max_src_len: 10,
        max_tgt_len: 10,
        ..Default::default()
    };
    let mut rng = Rng::new(1);
    let data: Vec<Encoded> = (0..40)
        .map(|_| {
            let n = 2 + rng.below(5);
            let src: Vec<&str> = (0..n).map(|_| words[rng.below(12)].as_str()).collect();
            Encoded::new(&vocab, &src, &src, &bcfg)
        })
        .collect();
    let config = ModelConfig {
        cell: CellKind::Lstm,
        vocab: vocab.len(),
        emb: 8,
        hidden: 8,
        attn: 8,
        enc_layers: 1,
        pointer: true,
        coverage: true,
        cov_weight: 1.0,
        tie_output: false,
        dropout: 0.2,
        attention: Default::default(),
        input_feeding: true,
        separate_embeddings: false,
    };
    let params = Params::init(&config, &mut Rng::new(2));
    let ck = Checkpoint {
        tokenizer: abridge::folder::TokenizerConfig {
            lowercase: true,
            ptb: false,
            max_source_tokens: 30,
        },
        generation: abridge::GenerationConfig::default(),
        config,
        params,
        vocab,
        optimizer: Optimizer::adagrad(0.15, 0.1),
        state: TrainState::default(),
    };
    (ck, data, tcfg)
}

fn dev(data: &[Encoded]) -> DevSet {
    DevSet {
        data: data[..8].to_vec(),
        references: vec![],
        max_decode: 10,
    }
}

/// The same run trained without interruption to `tcfg.max_steps` in `dir/straight`: what every
/// interrupted run must end as.
fn unbroken_run(dir: &std::path::Path) -> (Checkpoint, Vec<Encoded>, TrainConfig) {
    let (mut ck, data, tcfg) = setup();
    train(
        &dir.join("straight"),
        &mut ck,
        &tcfg,
        &data,
        &dev(&data),
        |_| {},
    )
    .unwrap();
    (ck, data, tcfg)
}

fn weights(ck: &mut Checkpoint) -> Vec<u32> {
    ck.params
        .tensors_mut()
        .into_iter()
        .flat_map(|(_, _, t)| t.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn resumed_training_is_bit_identical() {
    let (mut straight, data, tcfg) = setup();
    let dir = tempfile::tempdir().unwrap();
    let s = train(
        &dir.path().join("a"),
        &mut straight,
        &tcfg,
        &data,
        &dev(&data),
        |_| {},
    )
    .unwrap();
    assert_eq!(s.steps, 8);

    let (mut first, _, _) = setup();
    let run = dir.path().join("b");
    train(
        &run,
        &mut first,
        &TrainConfig {
            max_steps: 4,
            ..tcfg.clone()
        },
        &data,
        &dev(&data),
        |_| {},
    )
    .unwrap();
    let mut resumed = Checkpoint::load(&run).unwrap();
    assert_eq!(resumed.state.step, 4);
    assert_eq!(
        weights(&mut resumed),
        weights(&mut first),
        "weights survive the save/load exactly"
    );
    train(&run, &mut resumed, &tcfg, &data, &dev(&data), |_| {}).unwrap();
    assert_eq!(resumed.state.step, 8);
    assert_eq!(
        weights(&mut resumed),
        weights(&mut straight),
        "resumed run must match the uninterrupted one bit for bit"
    );
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 8);
    assert!(log.lines().nth(3).unwrap().contains("\"dev_loss\""));
}

/// A run killed after its last checkpoint has logged steps it will train again, and perhaps half
/// a line: resuming keeps the log to one line per step, in order, as an unbroken run writes it.
#[test]
fn killing_and_resuming_preserves_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (_, data, tcfg) = unbroken_run(dir.path());
    let expected = std::fs::read_to_string(dir.path().join("straight/metrics.jsonl")).unwrap();

    let (mut first, _, _) = setup();
    let run = dir.path().join("b");
    let short = TrainConfig {
        max_steps: 4,
        ..tcfg.clone()
    };
    train(&run, &mut first, &short, &data, &dev(&data), |_| {}).unwrap();
    // What a kill at step 6 leaves: lines for steps 5 and 6 past the checkpoint, a torn line.
    let lines: Vec<String> = expected.lines().map(str::to_string).collect();
    let mut log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    log.push_str(&format!("{}\n{}\n{}", lines[4], lines[5], &lines[6][..20]));
    std::fs::write(run.join("metrics.jsonl"), log).unwrap();
    let mut resumed = Checkpoint::load(&run).unwrap();
    assert_eq!(resumed.state.step, 4);
    train(&run, &mut resumed, &tcfg, &data, &dev(&data), |_| {}).unwrap();
    let got = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = got
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, (1..=8).collect::<Vec<u64>>());
    // The same losses as the unbroken run (times differ).
    let losses = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].to_string())
            .collect()
    };
    assert_eq!(losses(&got), losses(&expected));
}

#[test]
fn a_crash_mid_save_leaves_the_previous_checkpoint_usable() {
    let (mut ck, data, tcfg) = setup();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(
        &run,
        &mut ck,
        &TrainConfig {
            max_steps: 4,
            ..tcfg
        },
        &data,
        &DevSet::default(),
        |_| {},
    )
    .unwrap();
    // A save killed half-way: its temporary folder exists with a partial file.
    std::fs::create_dir_all(run.join("step-00000008.tmp")).unwrap();
    std::fs::write(run.join("step-00000008.tmp/model.safetensors"), b"partial").unwrap();
    std::fs::write(run.join("latest.tmp"), b"step-0000").unwrap();
    let back = Checkpoint::load(&run).unwrap();
    assert_eq!(back.state.step, 4);
    // The next save cleans the leftover up.
    let mut back = back;
    back.save(&run, "step-00000008", false).unwrap();
    assert!(!run.join("step-00000008.tmp").exists());
}

#[test]
fn corrupt_checkpoints_are_errors_naming_the_file() {
    let (mut ck, data, tcfg) = setup();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(
        &run,
        &mut ck,
        &TrainConfig {
            max_steps: 4,
            ..tcfg
        },
        &data,
        &DevSet::default(),
        |_| {},
    )
    .unwrap();
    // Flipped bytes in the optimizer's state fail its checksum, named by tensor.
    let opt = run.join("step-00000004/optimizer.safetensors");
    let good = std::fs::read(&opt).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 9] ^= 0x40;
    std::fs::write(&opt, &bad).unwrap();
    let e = Checkpoint::load(&run).unwrap_err().to_string();
    assert!(
        e.contains("optimizer.safetensors") && e.contains("fails its checksum"),
        "{e}"
    );
    std::fs::write(&opt, &good).unwrap();
    let model = run.join("step-00000004/model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let e = Checkpoint::load(&run).unwrap_err().to_string();
    assert!(e.contains("model.safetensors"), "{e}");
    std::fs::write(&model, b"not safetensors at all").unwrap();
    assert!(Checkpoint::load(&run)
        .unwrap_err()
        .to_string()
        .contains("model.safetensors"));
    std::fs::write(run.join("step-00000004/config.json"), b"{\"version\": 7}").unwrap();
    assert!(Checkpoint::load(&run)
        .unwrap_err()
        .to_string()
        .contains("config.json"));
    let e = Checkpoint::load(&dir.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nowhere"), "{e}");
}

#[test]
fn non_finite_batches_are_skipped_without_touching_the_weights() {
    let (mut ck, data, tcfg) = setup();
    ck.params.out_vocab.b[0] = f32::NAN;
    let before = weights(&mut ck);
    let dir = tempfile::tempdir().unwrap();
    let s = train(
        &dir.path().join("r"),
        &mut ck,
        &TrainConfig {
            max_steps: 2,
            eval_every: 0,
            ..tcfg
        },
        &data,
        &DevSet::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(s.skipped_batches, 2);
    assert_eq!(weights(&mut ck), before);
}

#[test]
fn old_checkpoints_are_pruned_but_best_and_latest_kept() {
    let (mut ck, data, tcfg) = setup();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(
        &run,
        &mut ck,
        &TrainConfig {
            max_steps: 12,
            eval_every: 1,
            keep: 2,
            ..tcfg
        },
        &data,
        &dev(&data),
        |_| {},
    )
    .unwrap();
    let mut dirs: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    dirs.sort();
    let best = std::fs::read_to_string(run.join("best")).unwrap();
    assert!(dirs.contains(&best), "best {best} pruned: {dirs:?}");
    assert!(dirs.contains(&"step-00000012".to_string()));
    assert!(dirs.len() <= 3, "{dirs:?}");
    let svg = std::fs::read_to_string(run.join("loss.svg")).unwrap();
    assert!(
        svg.contains("<polyline") && svg.matches(r##"fill="#c0392b"/>"##).count() == 12,
        "one dev point per evaluation"
    );
}

#[test]
fn frozen_embeddings_do_not_move() {
    let (mut ck, data, tcfg) = setup();
    let before = ck.params.embedding.clone();
    let dir = tempfile::tempdir().unwrap();
    train(
        &dir.path().join("r"),
        &mut ck,
        &TrainConfig {
            max_steps: 3,
            eval_every: 0,
            freeze_embeddings: true,
            ..tcfg.clone()
        },
        &data,
        &DevSet::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(ck.params.embedding, before);
    let (mut free, _, _) = setup();
    train(
        &dir.path().join("s"),
        &mut free,
        &TrainConfig {
            max_steps: 3,
            eval_every: 0,
            ..tcfg
        },
        &data,
        &DevSet::default(),
        |_| {},
    )
    .unwrap();
    assert_ne!(free.params.embedding, before);
}

#[test]
fn a_spent_time_budget_stops_with_a_checkpoint() {
    let (mut ck, data, tcfg) = setup();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    let s = train(
        &run,
        &mut ck,
        &TrainConfig {
            time_limit_s: Some(0.0),
            ..tcfg
        },
        &data,
        &DevSet::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(s.steps, 0);
    assert!(
        run.join("latest").exists(),
        "the stop leaves a checkpoint to resume from"
    );
}

/// `select = rouge`: `best` names the checkpoint with the best mean dev ROUGE, whatever its loss.
#[test]
fn the_best_checkpoint_can_be_chosen_by_dev_rouge() {
    let (mut ck, data, tcfg) = setup();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let refs: Vec<String> = (0..8)
        .map(|i| {
            let ids = &data[i].tgt;
            ids.iter()
                .map(|&id| ck.vocab.token(id).unwrap_or("<unk>").to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let dev = DevSet {
        data: data[..8].to_vec(),
        references: refs,
        max_decode: 10,
    };
    let (mut seen, mut losses) = (Vec::new(), Vec::new());
    train(
        &run,
        &mut ck,
        &TrainConfig {
            max_steps: 12,
            eval_every: 2,
            keep: 0,
            select: abridge_train::trainer::Select::Rouge,
            ..tcfg
        },
        &data,
        &dev,
        |m| {
            if let Some(r) = m.dev_rouge {
                seen.push((m.step, (r[0] + r[1] + r[2]) / 3.0));
                losses.push((m.step, m.dev_loss.unwrap()));
            }
        },
    )
    .unwrap();
    assert_eq!(seen.len(), 6);
    // The first evaluation with the highest mean is the best (a tie keeps the earlier one) ...
    let top = seen.iter().map(|s| s.1).fold(f64::MIN, f64::max);
    let step = seen.iter().find(|s| s.1 == top).unwrap().0;
    let best = std::fs::read_to_string(run.join("best")).unwrap();
    assert_eq!(best.trim(), format!("step-{step:08}"), "{seen:?}");
    // ... which is not the one the dev loss would pick.
    let by_loss = losses.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
    assert_ne!(by_loss, step, "{losses:?}");
}

/// A kill at each file-system step of a checkpoint save — replacing the checkpoint the pointers
/// name, or adding a new one — leaves a run that loads, serves its model and resumes to the end
/// with the same weights as an unbroken run.
#[test]
fn a_kill_at_any_step_of_a_save_loses_nothing() {
    use abridge_train::checkpoint::fail_next_save_after;
    let dir = tempfile::tempdir().unwrap();
    let (mut straight, data, tcfg) = unbroken_run(dir.path());
    let short = TrainConfig {
        max_steps: 4,
        ..tcfg.clone()
    };
    for k in 0..=4 {
        for (case, name) in [("replace", "step-00000004"), ("new", "step-00000099")] {
            let run = dir.path().join(format!("{case}-{k}"));
            let (mut ck, _, _) = setup();
            train(&run, &mut ck, &short, &data, &dev(&data), |_| {}).unwrap();
            assert_eq!(
                std::fs::read_to_string(run.join("latest")).unwrap(),
                "step-00000004"
            );
            fail_next_save_after(Some(k));
            let mut again = Checkpoint::load(&run).unwrap();
            let r = again.save(&run, name, true);
            fail_next_save_after(None);
            if case == "replace" || k != 1 {
                assert!(r.is_err(), "{case} {k}: the failure was injected");
            }
            // Readers find a complete model meanwhile, without repairing anything.
            abridge::Summarizer::open(&run)
                .unwrap_or_else(|e| panic!("{case} {k}: the model cannot be opened: {e}"));
            // Resuming repairs the folder and ends where an unbroken run ends.
            let mut resumed =
                Checkpoint::load(&run).unwrap_or_else(|e| panic!("{case} {k}: cannot resume: {e}"));
            assert_eq!(resumed.state.step, 4, "{case} {k}");
            train(&run, &mut resumed, &tcfg, &data, &dev(&data), |_| {}).unwrap();
            assert_eq!(resumed.state.step, 8);
            assert_eq!(weights(&mut resumed), weights(&mut straight), "{case} {k}");
            let leftovers: Vec<String> = std::fs::read_dir(&run)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp") || n.ends_with(".old"))
                .collect();
            assert!(leftovers.is_empty(), "{case} {k}: {leftovers:?}");
        }
    }
}

/// An update that makes the weights non-finite (a learning rate far too high) stops the run with
/// an error, and nothing from it is saved.
#[test]
fn a_diverging_run_stops_and_saves_nothing() {
    let (mut ck, data, tcfg) = setup();
    ck.optimizer = Optimizer::adagrad(1e38, 0.1);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let cfg = TrainConfig {
        max_steps: 60,
        eval_every: 100,
        ..tcfg
    };
    let e = train(&run, &mut ck, &cfg, &data, &dev(&data), |_| {}).unwrap_err();
    assert!(
        matches!(e, abridge_train::trainer::TrainError::Diverged { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("stopped without saving"), "{e}");
    assert!(!run.join("latest").exists(), "a non-finite model was saved");
}
