//! The model must learn a tiny task to near-perfect accuracy in seconds: copying a random sequence,
//! including words outside the vocabulary (which only the pointer can produce).

use abridge_decode::{beam_search, BeamConfig, LengthPenalty};
use abridge_model::{
    clip_global_norm, Forward, Inputs, ModelConfig, Optimizer, Params, Sources, Stepper,
};
use abridge_nn::CellKind;
use abridge_tensor::Rng;

const V: usize = 10; // 4 specials + 6 in-vocabulary words (ids 4..10)
const WORDS: u64 = 9; // words 0..9 map to ids 4..13: 10, 11, 12 are out of the vocabulary

struct Example {
    src: Vec<u32>,     // vocabulary ids (OOV -> <unk> = 1)
    src_ext: Vec<u32>, // extended ids
    tgt_ext: Vec<u32>, // == src_ext (copy task)
}

fn example(rng: &mut Rng) -> Example {
    let len = 3 + rng.below(4);
    let words: Vec<u32> = (0..len)
        .map(|_| 4 + rng.below(WORDS as usize) as u32)
        .collect();
    let mut oovs: Vec<u32> = Vec::new();
    let src_ext: Vec<u32> = words
        .iter()
        .map(|&w| {
            if (w as usize) < V {
                w
            } else {
                let k = oovs.iter().position(|&o| o == w).unwrap_or_else(|| {
                    oovs.push(w);
                    oovs.len() - 1
                });
                (V + k) as u32
            }
        })
        .collect();
    let src = src_ext
        .iter()
        .map(|&x| if (x as usize) < V { x } else { 1 })
        .collect();
    Example {
        src,
        tgt_ext: src_ext.clone(),
        src_ext,
    }
}

/// Time-major batch tensors.
struct Batch {
    b: usize,
    s: usize,
    t: usize,
    src: Vec<u32>,
    src_ext: Vec<u32>,
    src_lengths: Vec<usize>,
    dec_in: Vec<u32>,
    targets: Vec<u32>,
    tgt_lengths: Vec<usize>,
}

fn batch(exs: &[Example]) -> Batch {
    let b = exs.len();
    let s = exs.iter().map(|e| e.src.len()).max().unwrap();
    let t = s + 1;
    let mut x = Batch {
        b,
        s,
        t,
        src: vec![0; s * b],
        src_ext: vec![0; s * b],
        src_lengths: vec![],
        dec_in: vec![0; t * b],
        targets: vec![0; t * b],
        tgt_lengths: vec![],
    };
    for (col, e) in exs.iter().enumerate() {
        for i in 0..e.src.len() {
            x.src[i * b + col] = e.src[i];
            x.src_ext[i * b + col] = e.src_ext[i];
        }
        x.src_lengths.push(e.src.len());
        x.dec_in[col] = 2;
        for (k, &y) in e.tgt_ext.iter().enumerate() {
            x.dec_in[(k + 1) * b + col] = if (y as usize) < V { y } else { 1 };
            x.targets[k * b + col] = y;
        }
        x.targets[e.tgt_ext.len() * b + col] = 3;
        x.tgt_lengths.push(e.tgt_ext.len() + 1);
    }
    x
}

#[test]
fn learns_to_copy_including_out_of_vocabulary_words() {
    let cfg = ModelConfig {
        cell: CellKind::Lstm,
        vocab: V,
        emb: 16,
        hidden: 32,
        attn: 32,
        enc_layers: 1,
        pointer: true,
        coverage: false,
        cov_weight: 1.0,
        tie_output: false,
        dropout: 0.0,
        attention: Default::default(),
        input_feeding: true,
        separate_embeddings: false,
    };
    let mut rng = Rng::new(42);
    let mut params = Params::<f32>::init(&cfg, &mut rng);
    let mut opt = Optimizer::adam(0.01);
    let mut fw = Forward::new();
    let mut last = f64::INFINITY;
    for _ in 0..400 {
        let exs: Vec<Example> = (0..16).map(|_| example(&mut rng)).collect();
        let x = batch(&exs);
        let inp = Inputs {
            batch: x.b,
            src_len: x.s,
            tgt_len: x.t,
            src: &x.src,
            src_ext: &x.src_ext,
            src_lengths: &x.src_lengths,
            dec_in: &x.dec_in,
            targets: &x.targets,
            tgt_lengths: &x.tgt_lengths,
        };
        last = params.forward(&cfg, &inp, &mut fw).unwrap().total;
        let mut grads = params.zeros_like();
        params.backward(&cfg, &inp, &mut fw, &mut grads).unwrap();
        clip_global_norm(&mut grads, 2.0);
        opt.step(&mut params, &mut grads);
    }
    assert!(last < 0.1, "training loss still {last}");
    let mut test_rng = Rng::new(7);
    let exs: Vec<Example> = (0..100).map(|_| example(&mut test_rng)).collect();
    let x = batch(&exs);
    let out = params
        .greedy(
            &cfg,
            &Sources {
                batch: x.b,
                src_len: x.s,
                src: &x.src,
                src_ext: &x.src_ext,
                src_lengths: &x.src_lengths,
            },
            x.s + 3,
        )
        .unwrap();
    let exact = exs
        .iter()
        .zip(&out)
        .filter(|(e, o)| &e.tgt_ext == *o)
        .count();
    let with_oov = exs
        .iter()
        .filter(|e| e.src_ext.iter().any(|&w| w as usize >= V))
        .count();
    assert!(
        with_oov > 50,
        "the test should exercise OOV copying ({with_oov} examples have OOVs)"
    );
    assert!(exact >= 95, "only {exact}/100 copied exactly");

    // Beam search over the same model copies as well.
    let beam = BeamConfig {
        beam: 4,
        bos: 2,
        eos: 3,
        min_len: 0,
        max_len: 10,
        length_penalty: LengthPenalty::Average,
        ..Default::default()
    };
    let mut exact_beam = 0;
    for e in exs.iter().take(30) {
        let mut m = Stepper::new(&params, &cfg, &e.src, &e.src_ext).unwrap();
        let hyps = beam_search(&mut m, &beam);
        if hyps[0].tokens == e.tgt_ext {
            exact_beam += 1;
        }
    }
    assert!(
        exact_beam >= 28,
        "beam search copied only {exact_beam}/30 exactly"
    );

    // A beam of one through the stepper is the batched greedy decoder.
    let one = BeamConfig {
        beam: 1,
        max_len: x.s + 3,
        ..beam
    };
    for (e, g) in exs.iter().zip(&out).take(30) {
        let mut m = Stepper::new(&params, &cfg, &e.src, &e.src_ext).unwrap();
        assert_eq!(&beam_search(&mut m, &one)[0].tokens, g);
    }
}
