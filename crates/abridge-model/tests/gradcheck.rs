//! Whole-model gradient check (f64, tiny sizes): every parameter of every tensor against central
//! finite differences of the loss, for LSTM and GRU, with and without pointer and coverage.

use abridge_model::{Forward, Inputs, ModelConfig, Params};
use abridge_nn::CellKind;
use abridge_tensor::Rng;
use abridge_testkit::check_gradient_with_floor;

struct Case {
    cfg: ModelConfig,
    src: Vec<u32>,
    src_ext: Vec<u32>,
    src_lengths: Vec<usize>,
    dec_in: Vec<u32>,
    targets: Vec<u32>,
    tgt_lengths: Vec<usize>,
}

impl Case {
    /// B = 2, S = 5, T = 4; source 0 has OOV words (extended ids 9, 10), target 0 copies one.
    fn new(cfg: ModelConfig) -> Self {
        let unk = 1;
        // [S, B] time-major
        let src_ext = vec![4, 5, 9, 6, 7, 8, 10, 0, 9, 0];
        let src = src_ext
            .iter()
            .map(|&x| if x >= 9 { unk } else { x })
            .collect();
        let mut targets = vec![5, 7, 9, 6, 4, 0, 3, 0]; // [T, B]; 9 is an OOV copied from source 0
        if !cfg.pointer {
            targets.iter_mut().for_each(|t| {
                if *t >= 9 {
                    *t = unk
                }
            });
        }
        Self {
            cfg,
            src,
            src_ext,
            src_lengths: vec![5, 3],
            dec_in: vec![2, 2, 5, 7, 7, 0, 1, 0],
            targets,
            tgt_lengths: vec![4, 2],
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            batch: 2,
            src_len: 5,
            tgt_len: 4,
            src: &self.src,
            src_ext: &self.src_ext,
            src_lengths: &self.src_lengths,
            dec_in: &self.dec_in,
            targets: &self.targets,
            tgt_lengths: &self.tgt_lengths,
        }
    }

    fn loss(&self, p: &Params<f64>, dropout: Option<u64>) -> f64 {
        let mut fw = Forward::new();
        fw.set_dropout(dropout);
        p.forward(&self.cfg, &self.inputs(), &mut fw).unwrap().total
    }

    fn params(&self) -> Params<f64> {
        let mut params = Params::<f64>::init(&self.cfg, &mut Rng::new(3));
        // Larger weights than the initialisation, so every nonlinearity is exercised.
        params.for_each_mut(|_, v| v.iter_mut().for_each(|x| *x *= 3.0));
        params
    }

    fn loss_with_dropout(&self, seed: Option<u64>) -> f64 {
        self.loss(&self.params(), seed)
    }

    fn check(&self, label: &str) {
        self.check_with_dropout(label, None)
    }

    /// Gradients by `forward_backward` (the vocabulary head in blocks of `block_rows` rows), or by
    /// `forward` then `backward` (one block) when `None`.
    fn grads(&self, dropout: Option<u64>, block_rows: Option<usize>) -> (f64, Params<f64>) {
        let params = self.params();
        let mut fw = Forward::new();
        fw.set_dropout(dropout);
        let mut grads = params.zeros_like();
        let (cfg, inp) = (&self.cfg, self.inputs());
        let loss = match block_rows {
            Some(r) => {
                fw.set_head_block_bytes(r * cfg.vocab * std::mem::size_of::<f64>());
                params.forward_backward(cfg, &inp, &mut fw, &mut grads)
            }
            None => params.forward(cfg, &inp, &mut fw).and_then(|loss| {
                params.backward(cfg, &inp, &mut fw, &mut grads)?;
                Ok(loss)
            }),
        };
        (loss.unwrap().total, grads)
    }

    fn check_with_dropout(&self, label: &str, dropout: Option<u64>) {
        let params = self.params();
        // 8 rows (T·B) in blocks of 3: the head's blocking, partial last block included.
        let (loss, mut grads) = self.grads(dropout, Some(3));
        assert!(loss.is_finite() && loss > 0.0);
        let mut analytic: Vec<(String, Vec<f64>)> = Vec::new();
        grads.for_each_mut(|n, v| analytic.push((n.to_string(), v.to_vec())));
        let mut checked = 0;
        for (k, (name, g)) in analytic.iter().enumerate() {
            check_gradient_with_floor(&format!("{label} {name}"), g, 1e-6, 2e-5, 1e-4, |i, d| {
                let mut p = params.clone();
                let mut idx = 0;
                p.for_each_mut(|_, v| {
                    if idx == k {
                        v[i] += d;
                    }
                    idx += 1;
                });
                self.loss(&p, dropout)
            });
            checked += g.len();
        }
        assert!(checked > 300, "{label}: only {checked} parameters checked");
    }
}

fn cfg(cell: CellKind, pointer: bool, coverage: bool) -> ModelConfig {
    ModelConfig {
        cell,
        vocab: 9,
        emb: 3,
        hidden: 3,
        attn: 4,
        enc_layers: 1,
        pointer,
        coverage,
        cov_weight: 0.7,
        tie_output: false,
        dropout: 0.0,
        attention: Default::default(),
        input_feeding: true,
        separate_embeddings: false,
    }
}

#[test]
fn forward_backward_matches_forward_then_backward() {
    for (cell, tie) in [(CellKind::Lstm, false), (CellKind::Gru, true)] {
        let case = Case::new(ModelConfig {
            tie_output: tie,
            dropout: 0.3,
            ..cfg(cell, true, true)
        });
        let (l1, g1) = case.grads(Some(5), None);
        for rows in [1, 3, 8, 100] {
            let (l2, mut g2) = case.grads(Some(5), Some(rows));
            assert_eq!(l1, l2, "{cell:?} rows {rows}: loss");
            let mut worst = 0.0f64;
            let mut reference = Vec::new();
            g1.clone().for_each_mut(|_, v| reference.push(v.to_vec()));
            let mut k = 0;
            g2.for_each_mut(|name, v| {
                for (a, b) in v.iter().zip(&reference[k]) {
                    let d = (a - b).abs() / b.abs().max(1e-3);
                    assert!(d < 1e-10, "{cell:?} rows {rows} {name}: {a} vs {b}");
                    worst = worst.max(d);
                }
                k += 1;
            });
            assert!(k > 10 && worst.is_finite());
        }
    }
}

#[test]
fn lstm_pointer_generator_with_coverage() {
    Case::new(cfg(CellKind::Lstm, true, true)).check("lstm ptr+cov");
}

#[test]
fn gru_pointer_generator_with_coverage() {
    Case::new(cfg(CellKind::Gru, true, true)).check("gru ptr+cov");
}

#[test]
fn plain_attention_without_pointer_or_coverage() {
    Case::new(cfg(CellKind::Lstm, false, false)).check("lstm attn");
}

#[test]
fn two_layer_encoder() {
    let mut c = cfg(CellKind::Gru, true, false);
    c.enc_layers = 2;
    Case::new(c).check("gru 2-layer");
}

#[test]
fn tied_output_projection() {
    let mut c = cfg(CellKind::Lstm, true, true);
    c.emb = 2;
    c.tie_output = true;
    Case::new(c).check("lstm tied output");
}

/// With fixed masks dropout is a fixed linear map: the gradient check holds, and the loss moves
/// when the masks do.
#[test]
fn dropout_with_fixed_masks() {
    let mut c = cfg(CellKind::Gru, true, false);
    c.dropout = 0.4;
    let case = Case::new(c);
    case.check_with_dropout("gru dropout", Some(7));
    let (a, b) = (
        case.loss_with_dropout(Some(7)),
        case.loss_with_dropout(Some(8)),
    );
    assert!((a - b).abs() > 1e-6, "different masks, different losses");
    assert!((case.loss_with_dropout(None) - case.loss_with_dropout(None)).abs() == 0.0);
}

#[test]
fn luong_attention_with_and_without_input_feeding() {
    for feed in [true, false] {
        let mut c = cfg(CellKind::Lstm, true, false);
        c.attention = abridge_model::AttentionKind::Luong;
        c.input_feeding = feed;
        Case::new(c).check(&format!("lstm luong feed={feed}"));
    }
    let mut c = cfg(CellKind::Gru, true, true);
    c.input_feeding = false;
    Case::new(c).check("gru bahdanau no feeding");
}

#[test]
fn separate_embeddings_with_and_without_a_tied_output() {
    for tie in [false, true] {
        let mut c = cfg(CellKind::Lstm, true, false);
        c.separate_embeddings = true;
        c.tie_output = tie;
        Case::new(c).check(&format!("lstm separate embeddings tie={tie}"));
    }
}

/// The f32 fast paths (AVX-512 attention, packed decoder steps, few-row products) against the
/// same model in f64: loss and every gradient, at sizes off the SIMD widths and a batch large
/// enough for the multi-row kernels.
#[test]
fn f32_model_matches_f64_model() {
    for (cell, pointer, coverage) in [(CellKind::Lstm, true, true), (CellKind::Gru, false, false)] {
        let mut c = cfg(cell, pointer, coverage);
        (c.vocab, c.emb, c.hidden, c.attn) = (50, 12, 20, 37);
        let (b, s, t) = (13, 21, 6);
        let mut rng = Rng::new(11);
        let mut ids = |n: usize, hi: usize| -> Vec<u32> {
            (0..n).map(|_| 4 + rng.below(hi - 4) as u32).collect()
        };
        let src = ids(s * b, 50);
        let dec_in = ids(t * b, 50);
        let targets = ids(t * b, 50);
        let src_lengths: Vec<usize> = (0..b).map(|i| s - (i * 3) % 15).collect();
        let tgt_lengths: Vec<usize> = (0..b).map(|i| t - i % 4).collect();
        let inp = Inputs {
            batch: b,
            src_len: s,
            tgt_len: t,
            src: &src,
            src_ext: &src,
            src_lengths: &src_lengths,
            dec_in: &dec_in,
            targets: &targets,
            tgt_lengths: &tgt_lengths,
        };
        let p64 = Params::<f64>::init(&c, &mut Rng::new(5));
        let mut p32 = Params::<f32>::init(&c, &mut Rng::new(6));
        let mut src64 = p64.clone();
        let mut vals: Vec<Vec<f64>> = Vec::new();
        src64.for_each_mut(|_, v| vals.push(v.to_vec()));
        let mut k = 0;
        p32.for_each_mut(|_, v| {
            v.iter_mut().zip(&vals[k]).for_each(|(a, b)| *a = *b as f32);
            k += 1;
        });
        let (mut fw64, mut fw32) = (Forward::new(), Forward::new());
        let l64 = p64.forward(&c, &inp, &mut fw64).unwrap().total;
        let l32 = p32.forward(&c, &inp, &mut fw32).unwrap().total;
        assert!(
            (l64 - l32).abs() <= 1e-5 * l64.abs(),
            "{cell:?} loss {l32} vs {l64}"
        );
        let (mut g64, mut g32) = (p64.zeros_like(), p32.zeros_like());
        p64.backward(&c, &inp, &mut fw64, &mut g64).unwrap();
        p32.backward(&c, &inp, &mut fw32, &mut g32).unwrap();
        let mut want: Vec<(String, Vec<f64>)> = Vec::new();
        g64.for_each_mut(|n, v| want.push((n.to_string(), v.to_vec())));
        let mut k = 0;
        g32.for_each_mut(|n, v| {
            let got: Vec<f64> = v.iter().map(|&x| x as f64).collect();
            // Sums over many rows with cancellation (bias gradients) lose a few digits in f32.
            abridge_testkit::assert_close(&format!("{cell:?} {n}"), &got, &want[k].1, 1e-3);
            k += 1;
        });
    }
}

/// Backward consumes its forward pass: a second call, one without a forward, and one with other
/// inputs are errors that leave the gradients untouched (the last without consuming the pass).
#[test]
fn backward_needs_its_own_forward_pass() {
    let case = Case::new(cfg(CellKind::Lstm, true, true));
    let (c, inp) = (&case.cfg, case.inputs());
    let params = case.params();
    let zero = params.zeros_like();
    let untouched = |g: &mut Params<f64>| {
        let mut z = zero.clone();
        let mut a = Vec::new();
        g.for_each_mut(|_, v| a.push(v.to_vec()));
        let mut b = Vec::new();
        z.for_each_mut(|_, v| b.push(v.to_vec()));
        a == b
    };
    let mut fw = Forward::new();
    let mut g = params.zeros_like();
    assert!(params.backward(c, &inp, &mut fw, &mut g).is_err());
    assert!(untouched(&mut g));
    params.forward_backward(c, &inp, &mut fw, &mut g).unwrap();
    let mut g2 = params.zeros_like();
    assert!(params.backward(c, &inp, &mut fw, &mut g2).is_err());
    assert!(untouched(&mut g2));
    params.forward(c, &inp, &mut fw).unwrap();
    let shorter = Inputs {
        tgt_len: 3,
        dec_in: &case.dec_in[..6],
        targets: &case.targets[..6],
        tgt_lengths: &[3, 2],
        ..inp
    };
    assert!(params.backward(c, &shorter, &mut fw, &mut g2).is_err());
    assert!(untouched(&mut g2));
    // The refused call did not consume the pass: the right inputs still get their gradients.
    params.backward(c, &inp, &mut fw, &mut g2).unwrap();
    assert!(!untouched(&mut g2));
}
