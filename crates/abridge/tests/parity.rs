//! Whole-model parity with PyTorch: `scripts/torch_parity.py` implements the summarizer's forward
//! pass in PyTorch (float64), reads each model folder's `model.safetensors`, and records the
//! per-token log-likelihood of a teacher-forced batch in `tests/parity/golden.json`. Here the
//! same folders, opened by the library, give the same numbers (f32, relative 1e-4): the bundled
//! model, and a two-layer GRU model whose weights PyTorch drew and wrote.

use abridge::Summarizer;
use abridge_model::{Forward, Inputs};
use serde_json::Value;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn lens(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn per_token_log_likelihood_matches_pytorch() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/parity/golden.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let m = Summarizer::open(format!("{root}/{}", case["folder"].as_str().unwrap()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = &case["batch"];
        let (src, src_ext, dec_in, targets) = (
            ids(&b["src"]),
            ids(&b["src_ext"]),
            ids(&b["dec_in"]),
            ids(&b["targets"]),
        );
        let (src_lengths, tgt_lengths) = (lens(&b["src_lengths"]), lens(&b["tgt_lengths"]));
        let batch = src_lengths.len();
        let inp = Inputs {
            batch,
            src_len: src.len() / batch,
            tgt_len: dec_in.len() / batch,
            src: &src,
            src_ext: &src_ext,
            src_lengths: &src_lengths,
            dec_in: &dec_in,
            targets: &targets,
            tgt_lengths: &tgt_lengths,
        };
        let mut fw = Forward::new();
        m.params()
            .forward(m.config(), &inp, &mut fw)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (mut worst, mut n) = (0f64, 0);
        for (t, row) in case["log_prob"].as_array().unwrap().iter().enumerate() {
            for (bi, want) in row.as_array().unwrap().iter().enumerate() {
                let Some(want) = want.as_f64() else {
                    assert!(t >= tgt_lengths[bi]);
                    continue;
                };
                let got = (fw.target_prob(t)[bi] as f64).max(1e-12).ln();
                let rel = (got - want).abs() / want.abs().max(1e-3);
                worst = worst.max(rel);
                n += 1;
                assert!(
                    rel <= 1e-4,
                    "{name}: step {t}, example {bi}: log P = {got} here, {want} in PyTorch (a \
                     changed model needs `scripts/torch_parity.py` run again)"
                );
            }
        }
        assert!(n >= 20, "{name}: {n} tokens compared");
        eprintln!("{name}: {n} tokens, largest relative difference {worst:.1e}");
    }
}
