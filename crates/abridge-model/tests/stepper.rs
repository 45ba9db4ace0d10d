//! The summarizer as a search model: distributions over the extended vocabulary, `<unk>` banned
//! with the pointer, and states reordered by parents.

use abridge_decode::StepModel;
use abridge_model::{ModelConfig, Params, Stepper};
use abridge_nn::CellKind;
use abridge_tensor::Rng;

fn cfg(pointer: bool) -> ModelConfig {
    ModelConfig {
        cell: CellKind::Gru,
        vocab: 12,
        emb: 6,
        hidden: 5,
        attn: 4,
        enc_layers: 1,
        pointer,
        coverage: true,
        cov_weight: 1.0,
        tie_output: false,
        dropout: 0.0,
        attention: Default::default(),
        input_feeding: true,
        separate_embeddings: false,
    }
}

#[test]
fn rows_are_distributions_over_the_extended_vocabulary_without_unk() {
    let c = cfg(true);
    let p = Params::<f32>::init(&c, &mut Rng::new(1));
    // Source: two in-vocabulary words and two OOVs (extended ids 12 and 13; vocabulary id <unk> = 1).
    let mut m = Stepper::new(&p, &c, &[4, 1, 5, 1], &[4, 12, 5, 13]).unwrap();
    assert_eq!(m.vocab(), 14);
    let out = m.step(&[0], &[2]);
    assert_eq!(out.log_probs.len(), 14);
    assert_eq!(
        out.log_probs[1],
        f32::NEG_INFINITY,
        "<unk> is never proposed with the pointer"
    );
    let mass: f32 = out
        .log_probs
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| x.exp())
        .sum();
    assert!(mass > 0.0 && mass <= 1.0 + 1e-5, "{mass}");
    assert!(
        out.log_probs[12].is_finite() && out.log_probs[13].is_finite(),
        "OOV source words can be copied"
    );
    assert_eq!(out.attention.len(), 4);
    assert!((out.attention.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    // Three hypotheses from the single first one, then reordered.
    let out3 = m.step(&[0, 0, 0], &[4, 12, 5]);
    assert_eq!(out3.log_probs.len(), 3 * 14);
    let swapped = {
        let mut again = Stepper::new(&p, &c, &[4, 1, 5, 1], &[4, 12, 5, 13]).unwrap();
        again.step(&[0], &[2]);
        again.step(&[0, 0, 0], &[5, 12, 4])
    };
    // (Equal up to rounding: a row's position in a GEMM may change the order of its sums.)
    for (a, b) in out3.log_probs[..14].iter().zip(&swapped.log_probs[28..42]) {
        assert!(
            a == b || (a - b).abs() < 1e-5,
            "hypothesis state follows its tokens, not its slot: {a} vs {b}"
        );
    }
}

#[test]
fn without_the_pointer_unk_is_allowed() {
    let c = cfg(false);
    let p = Params::<f32>::init(&c, &mut Rng::new(2));
    let mut m = Stepper::new(&p, &c, &[4, 1, 5], &[4, 1, 5]).unwrap();
    assert_eq!(m.vocab(), 12);
    assert!(m.step(&[0], &[2]).log_probs[1].is_finite());
    assert!(
        Stepper::new(&p, &c, &[], &[]).is_err(),
        "an empty source is an error, not a panic"
    );
}

/// The f16 vocabulary projection gives the f32 results when the weights are f16-exact (as an
/// exported model's are), for one hypothesis and for several.
#[test]
fn half_vocabulary_matches_f32_on_f16_exact_weights() {
    let c = cfg(true);
    let mut p = Params::<f32>::init(&c, &mut Rng::new(5));
    p.for_each_mut(|_, v| {
        v.iter_mut()
            .for_each(|x| *x = half::f16::from_f32(*x).to_f32())
    });
    let h = p.half_vocab();
    let (src, ext) = ([4u32, 1, 5, 1], [4u32, 12, 5, 13]);
    let mut a = Stepper::new(&p, &c, &src, &ext).unwrap();
    let mut b = Stepper::new(&p, &c, &src, &ext)
        .unwrap()
        .with_half_vocab(&h);
    for (parents, tokens) in [
        (vec![0], vec![2]),
        (vec![0, 0, 0], vec![4, 12, 5]),
        (vec![2, 0, 1], vec![6, 7, 13]),
    ] {
        let (x, y) = (a.step(&parents, &tokens), b.step(&parents, &tokens));
        assert_eq!(x.log_probs.len(), y.log_probs.len());
        for (u, v) in x.log_probs.iter().zip(&y.log_probs) {
            assert!(u == v || (u - v).abs() < 1e-5, "{u} vs {v}");
        }
    }
}

/// Several documents decoded in one batch (`beam_search_batch`) give each document exactly what
/// its own beam search gives: same tokens, same scores (to rounding: batched products may sum in
/// another order). Documents of different lengths, with OOV words, coverage penalty and trigram
/// blocking; enough rows that the batched step takes the multi-row kernels.
#[test]
fn batched_documents_decode_as_they_do_alone() {
    use abridge_decode::{
        beam_search, beam_search_batch, BeamConfig, CoveragePenalty, LengthPenalty,
    };
    for cell in [CellKind::Lstm, CellKind::Gru] {
        let mut c = cfg(true);
        (c.cell, c.vocab, c.emb, c.hidden, c.attn) = (cell, 30, 8, 19, 21);
        let mut p = Params::<f32>::init(&c, &mut Rng::new(9));
        // Sharper distributions than the initialisation: no near-ties for rounding to flip.
        p.for_each_mut(|_, v| v.iter_mut().for_each(|x| *x *= 4.0));
        let mut rng = Rng::new(4);
        let docs: Vec<(Vec<u32>, Vec<u32>)> = [7usize, 3, 12, 1, 9, 5]
            .iter()
            .enumerate()
            .map(|(d, &len)| {
                let ext: Vec<u32> = (0..len)
                    .map(|i| {
                        if (i + d) % 4 == 0 {
                            30 + (i % 2) as u32 // OOV: extended ids 30, 31
                        } else {
                            4 + rng.below(26) as u32
                        }
                    })
                    .collect();
                let src = ext.iter().map(|&x| if x >= 30 { 1 } else { x }).collect();
                (src, ext)
            })
            .collect();
        let beam = BeamConfig {
            beam: 3,
            min_len: 2,
            max_len: 9,
            length_penalty: LengthPenalty::Gnmt(0.9),
            coverage_penalty: CoveragePenalty::Summary(2.0),
            block_ngram: 3,
            ..Default::default()
        };
        let alone: Vec<_> = docs
            .iter()
            .map(|(s, e)| beam_search(&mut Stepper::new(&p, &c, s, e).unwrap(), &beam))
            .collect();
        let refs: Vec<(&[u32], &[u32])> = docs.iter().map(|(s, e)| (&s[..], &e[..])).collect();
        let lens: Vec<usize> = docs.iter().map(|(s, _)| s.len()).collect();
        let mut m = Stepper::new_batch(&p, &c, &refs).unwrap();
        let batched = beam_search_batch(&mut m, &lens, &beam);
        assert_eq!(batched.len(), docs.len());
        for (d, (a, b)) in alone.iter().zip(&batched).enumerate() {
            assert_eq!(a.len(), b.len(), "{cell:?} doc {d}: number of hypotheses");
            for (x, y) in a.iter().zip(b) {
                assert_eq!(x.tokens, y.tokens, "{cell:?} doc {d}");
                assert!(
                    (x.score - y.score).abs() < 1e-4,
                    "{cell:?} doc {d}: {} vs {}",
                    x.score,
                    y.score
                );
            }
        }
    }
}

/// `Params::greedy` (a batch, vocabulary logits; packed `W_v` beyond 8 rows) against beam search
/// of width 1 through the stepper, document by document, with the pointer and coverage.
#[test]
fn greedy_batch_decoding_is_beam_search_of_width_one() {
    use abridge_decode::{beam_search, BeamConfig};
    use abridge_model::Sources;
    for (cell, n_docs) in [(CellKind::Lstm, 12), (CellKind::Gru, 5)] {
        let mut c = cfg(true);
        (c.cell, c.vocab, c.emb, c.hidden, c.attn) = (cell, 40, 8, 19, 21);
        let mut p = Params::<f32>::init(&c, &mut Rng::new(11));
        p.for_each_mut(|_, v| v.iter_mut().for_each(|x| *x *= 4.0));
        // `<unk>` (1) never wins: the stepper bans it under the pointer, greedy does not.
        p.out_vocab.b[1] = -50.0;
        let mut rng = Rng::new(5);
        let lens: Vec<usize> = (0..n_docs).map(|d| 1 + (d * 7) % 13).collect();
        let s = *lens.iter().max().unwrap();
        let (mut src, mut ext) = (vec![0u32; s * n_docs], vec![0u32; s * n_docs]);
        for (d, &len) in lens.iter().enumerate() {
            for i in 0..len {
                let e = if (i + d) % 5 == 0 {
                    40 + (i % 2) as u32
                } else {
                    4 + rng.below(36) as u32
                };
                ext[i * n_docs + d] = e;
                src[i * n_docs + d] = if e >= 40 { 1 } else { e };
            }
        }
        let max_len = 8;
        let sources = Sources {
            batch: n_docs,
            src_len: s,
            src: &src,
            src_ext: &ext,
            src_lengths: &lens,
        };
        let greedy = p.greedy(&c, &sources, max_len).unwrap();
        // Buffers kept from another call (another batch shape; dropout set) change nothing.
        let mut fw = abridge_model::Forward::new();
        fw.set_dropout(Some(3));
        let other = Sources {
            batch: 2,
            src_len: 3,
            src: &[5, 6, 7, 8, 9, 0],
            src_ext: &[5, 6, 7, 8, 9, 0],
            src_lengths: &[3, 2],
        };
        p.greedy_with(&c, &other, 4, &mut fw).unwrap();
        assert_eq!(
            p.greedy_with(&c, &sources, max_len, &mut fw).unwrap(),
            greedy
        );
        let beam = BeamConfig {
            beam: 1,
            max_len,
            ..Default::default()
        };
        for (d, got) in greedy.iter().enumerate() {
            let col = |m: &[u32]| (0..lens[d]).map(|i| m[i * n_docs + d]).collect::<Vec<_>>();
            let mut m = Stepper::new(&p, &c, &col(&src), &col(&ext)).unwrap();
            let best = beam_search(&mut m, &beam);
            assert_eq!(got, &best[0].tokens, "{cell:?} doc {d}");
        }
    }
}

/// Bottom-up copy attention: with a mask, copying comes only from kept positions (renormalised),
/// while the attention, context and `p_gen` are unchanged; an all-true mask changes nothing; a
/// row whose attention falls only on masked positions copies unmasked.
#[test]
fn copy_mask_restricts_what_the_pointer_copies() {
    let c = cfg(true);
    let p = Params::<f32>::init(&c, &mut Rng::new(1));
    let (src, ext) = ([4u32, 1, 5, 1, 6], [4u32, 12, 5, 13, 6]);
    let plain = Stepper::new(&p, &c, &src, &ext).unwrap().step(&[0], &[2]);
    let all = Stepper::new(&p, &c, &src, &ext)
        .unwrap()
        .with_copy_mask(&[vec![true; 5]])
        .step(&[0], &[2]);
    assert_eq!(plain, all, "a mask that keeps everything changes nothing");
    // Keep only position 1 (OOV 12): 13 can no longer be produced; 12 gets all the copy mass.
    let keep = vec![false, true, false, false, false];
    let mut m = Stepper::new(&p, &c, &src, &ext)
        .unwrap()
        .with_copy_mask(std::slice::from_ref(&keep));
    let out = m.step(&[0], &[2]);
    assert_eq!(
        out.attention, plain.attention,
        "attention itself is not masked"
    );
    assert_eq!(out.p_gen, plain.p_gen);
    let g = out.p_gen[0];
    assert!(g > 0.0 && g < 1.0);
    assert_eq!(
        out.log_probs[13],
        f32::NEG_INFINITY,
        "masked OOV cannot be copied"
    );
    assert!((out.log_probs[12] - (1.0 - g).ln()).abs() < 1e-5);
    // In-vocabulary source words at masked positions keep only their generation probability.
    let gen4 = plain.log_probs[4].exp() - (1.0 - g) * plain.attention[0];
    assert!((out.log_probs[4].exp() - gen4).abs() < 1e-6);
    // Batched: the mask of document 1 does not leak into document 0.
    let d0 = (&src[..], &ext[..]);
    let d1 = (&src[..3], &ext[..3]);
    let mut b = Stepper::new_batch(&p, &c, &[d0, d1])
        .unwrap()
        .with_copy_mask(&[vec![true; 5], keep[..3].to_vec()]);
    let ob = b.step(&[0, 1], &[2, 2]);
    let v = 14;
    assert_eq!(&ob.log_probs[..v], &plain.log_probs[..]);
    let alone = Stepper::new(&p, &c, &src[..3], &ext[..3])
        .unwrap()
        .with_copy_mask(&[keep[..3].to_vec()])
        .step(&[0], &[2]);
    for (x, y) in ob.log_probs[v..v + 13].iter().zip(&alone.log_probs) {
        assert!((x - y).abs() < 1e-5 || (x == y), "{x} vs {y}");
    }
    // Nothing kept: the row copies with its whole attention.
    let none = Stepper::new(&p, &c, &src, &ext)
        .unwrap()
        .with_copy_mask(&[vec![false; 5]])
        .step(&[0], &[2]);
    assert_eq!(none, plain);
}
