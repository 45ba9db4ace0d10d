//! The content selector: every parameter's gradient against central finite differences (f64,
//! LSTM and GRU, two layers, documents of different lengths), the f32 model against the f64 one,
//! and a few hundred steps of training that learn a copy rule.

use abridge_model::{
    clip_tensors, Optimizer, Selector, SelectorBatch, SelectorCache, SelectorConfig, SelectorError,
};
use abridge_nn::CellKind;
use abridge_tensor::Rng;
use abridge_testkit::check_gradient_with_floor;

fn cfg(cell: CellKind) -> SelectorConfig {
    SelectorConfig {
        cell,
        vocab: 7,
        emb: 3,
        hidden: 4,
        layers: 2,
        features: 0,
    }
}

/// `[S=5, B=3, F=2]` features for the feature-input selector.
fn features() -> Vec<f64> {
    abridge_testkit::randn(5 * 3 * 2, 11)
}

/// `[S=5, B=3]` ids, lengths 5, 2, 4 (and a repeated id, so embedding rows collect two
/// gradients), labels.
const IDS: [u32; 15] = [1, 2, 3, 4, 4, 5, 6, 0, 1, 3, 0, 2, 2, 0, 6];
const LENS: [usize; 3] = [5, 2, 4];
const LABELS: [f64; 15] = [1., 0., 1., 0., 1., 0., 1., 0., 0., 1., 1., 0., 0., 0., 1.];

fn batch(f: Option<&[f64]>) -> SelectorBatch<'_, f64> {
    SelectorBatch {
        ids: &IDS,
        features: f,
        steps: 5,
        batch: 3,
        lengths: &LENS,
    }
}

fn loss(sel: &Selector<f64>, f: Option<&[f64]>) -> f64 {
    let mut cache = SelectorCache::default();
    sel.forward(&batch(f), &mut cache).unwrap();
    Selector::loss(&cache, &LABELS).unwrap().0
}

fn check(cell: CellKind, feats: bool) {
    let mut c = cfg(cell);
    let fv = features();
    let f = if feats {
        c.features = 2;
        Some(&fv[..])
    } else {
        None
    };
    let mut sel = Selector::<f64>::init(c, &mut Rng::new(5));
    for (_, _, t) in sel.tensors_mut() {
        t.iter_mut().for_each(|x| *x *= 3.0);
    }
    let mut cache = SelectorCache::default();
    sel.forward(&batch(f), &mut cache).unwrap();
    let (_, dz) = Selector::loss(&cache, &LABELS).unwrap();
    let mut grads = Selector::zeros(sel.cfg);
    sel.backward(&mut cache, &dz, &mut grads).unwrap();
    assert_eq!(
        sel.backward(&mut cache, &dz, &mut grads.clone()),
        Err(SelectorError::NoForward),
        "backward consumes the pass"
    );
    let analytic: Vec<(String, Vec<f64>)> = grads
        .tensors_mut()
        .into_iter()
        .map(|(n, _, g)| (n, g.to_vec()))
        .collect();
    for (k, (name, g)) in analytic.iter().enumerate() {
        let mut probe = sel.clone();
        check_gradient_with_floor(&format!("{cell:?} {name}"), g, 1e-5, 1e-5, 1e-5, |i, d| {
            let keep = probe.tensors_mut()[k].2[i];
            probe.tensors_mut()[k].2[i] = keep + d;
            let l = loss(&probe, f);
            probe.tensors_mut()[k].2[i] = keep;
            l
        });
    }
    if feats {
        assert!(analytic.iter().all(|(n, _)| n != "embedding.weight"));
    } else {
        // Ids never inside a length (id 0 only at padded positions here) get no gradient.
        assert!(analytic[0].1[..3].iter().all(|&g| g == 0.0));
    }
}

#[test]
fn lstm_selector_gradients_match_finite_differences() {
    check(CellKind::Lstm, false);
    check(CellKind::Lstm, true);
}

#[test]
fn gru_selector_gradients_match_finite_differences() {
    check(CellKind::Gru, false);
    check(CellKind::Gru, true);
}

#[test]
fn f32_selector_matches_f64() {
    let s64 = Selector::<f64>::init(cfg(CellKind::Lstm), &mut Rng::new(9));
    let mut s32 = Selector::<f32>::zeros(s64.cfg);
    let mut s64m = s64.clone();
    for ((_, _, a), (_, _, b)) in s32.tensors_mut().into_iter().zip(s64m.tensors_mut()) {
        a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x = *y as f32);
    }
    let docs: [&[u32]; 2] = [&[1, 2, 3, 4], &[6, 5]];
    let p32 = s32.predict(&docs, None).unwrap();
    let p64 = s64.predict(&docs, None).unwrap();
    assert_eq!(p32.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 2]);
    for (a, b) in p32.iter().flatten().zip(p64.iter().flatten()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // A document decoded alone gets the same probabilities as in a batch.
    let alone = s64.predict(&docs[1..], None).unwrap();
    for (a, b) in alone[0].iter().zip(&p64[1]) {
        assert!((a - b).abs() < 1e-6);
    }
    assert!(matches!(
        s64.predict(&[&[7u32][..]], None),
        Err(SelectorError::Id { id: 7, limit: 7 })
    ));
}

/// The tagger learns "select a token iff its left neighbour is id 3" (only the recurrence can
/// see it), on random documents, with Adam and clipping through the tensor-list API.
#[test]
fn selector_learns_a_context_rule() {
    let cfg = SelectorConfig {
        cell: CellKind::Lstm,
        vocab: 8,
        emb: 8,
        hidden: 16,
        layers: 1,
        features: 0,
    };
    let mut rng = Rng::new(1);
    let mut sel = Selector::<f32>::init(cfg, &mut rng);
    let mut grads = Selector::zeros(cfg);
    let mut opt = Optimizer::adam(0.02);
    let mut cache = SelectorCache::default();
    let make = |rng: &mut Rng, n: usize, s: usize| {
        let ids: Vec<u32> = (0..s * n)
            .map(|_| (rng.uniform(0.0, 8.0) as u32).min(7))
            .collect();
        let mut labels = vec![0f32; s * n];
        for i in 1..s {
            for j in 0..n {
                labels[i * n + j] = (ids[(i - 1) * n + j] == 3) as u32 as f32;
            }
        }
        (ids, labels)
    };
    for _ in 0..300 {
        let (ids, labels) = make(&mut rng, 8, 12);
        let lens = [12usize; 8];
        let b = SelectorBatch {
            ids: &ids,
            features: None,
            steps: 12,
            batch: 8,
            lengths: &lens,
        };
        sel.forward(&b, &mut cache).unwrap();
        let (_, dz) = Selector::loss(&cache, &labels).unwrap();
        grads.fill_zero();
        sel.backward(&mut cache, &dz, &mut grads).unwrap();
        let gs: Vec<&mut [f32]> = grads.tensors_mut().into_iter().map(|t| t.2).collect();
        clip_tensors(gs, 5.0);
        let gs = grads.tensors_mut().into_iter().map(|t| &*t.2).collect();
        let ps = sel.tensors_mut().into_iter().map(|t| t.2).collect();
        opt.step_tensors(ps, gs, 1.0);
    }
    let (ids, labels) = make(&mut rng, 16, 12);
    let docs: Vec<Vec<u32>> = (0..16)
        .map(|j| (0..12).map(|i| ids[i * 16 + j]).collect())
        .collect();
    let refs: Vec<&[u32]> = docs.iter().map(|d| &d[..]).collect();
    let probs = sel.predict(&refs, None).unwrap();
    let mut right = 0;
    for (j, p) in probs.iter().enumerate() {
        for (i, &q) in p.iter().enumerate() {
            right += ((q >= 0.5) == (labels[i * 16 + j] == 1.0)) as usize;
        }
    }
    assert!(right >= 16 * 12 * 97 / 100, "{right} of {} right", 16 * 12);
}
