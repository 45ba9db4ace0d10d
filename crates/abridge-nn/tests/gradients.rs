//! Backward passes against finite differences (f64, tiny sizes), the fast path against the slow
//! reference on awkward shapes, and argument errors.

use abridge_nn::reference::forward_backward;
use abridge_nn::{
    Cell, CellKind, Rnn, RnnCache, RnnConfig, RnnError, RnnGradOut, RnnInput, RnnParams,
};
use abridge_tensor::Rng;
use abridge_testkit::{assert_close, check_gradient, randn};

/// A stack, its inputs and random loss weights: `L = Σ out·r_out + Σ h_n·r_h + Σ c_n·r_c`.
struct Problem {
    cfg: RnnConfig,
    params: RnnParams<f64>,
    steps: usize,
    batch: usize,
    x: Vec<f64>,
    lengths: Option<Vec<usize>>,
    h0: Vec<f64>,
    c0: Vec<f64>,
    r_out: Vec<f64>,
    r_h: Vec<f64>,
    r_c: Vec<f64>,
}

impl Problem {
    fn new(
        cfg: RnnConfig,
        steps: usize,
        batch: usize,
        lengths: Option<Vec<usize>>,
        seed: u64,
    ) -> Self {
        let ld = cfg.num_layers * cfg.directions();
        let sh = ld * batch * cfg.hidden_size;
        let lstm = cfg.cell == CellKind::Lstm;
        let mut params = RnnParams::init_uniform(cfg, &mut Rng::new(seed));
        // Larger weights than the default make the gates saturate differently per unit.
        params
            .tensors_mut()
            .into_iter()
            .for_each(|t| t.data.iter_mut().for_each(|v| *v *= 2.0));
        Self {
            cfg,
            params,
            steps,
            batch,
            x: randn(steps * batch * cfg.input_size, seed + 1),
            lengths,
            h0: randn(sh, seed + 2),
            c0: if lstm { randn(sh, seed + 3) } else { vec![] },
            r_out: randn(steps * batch * cfg.output_size(), seed + 4),
            r_h: randn(sh, seed + 5),
            r_c: if lstm { randn(sh, seed + 6) } else { vec![] },
        }
    }

    fn lstm(&self) -> bool {
        self.cfg.cell == CellKind::Lstm
    }

    fn input<'a>(&'a self, x: &'a [f64], h0: &'a [f64], c0: &'a [f64]) -> RnnInput<'a, f64> {
        RnnInput {
            x,
            steps: self.steps,
            batch: self.batch,
            lengths: self.lengths.as_deref(),
            h0: Some(h0),
            c0: self.lstm().then_some(c0),
        }
    }

    fn grad(&self) -> RnnGradOut<'_, f64> {
        RnnGradOut {
            d_output: Some(&self.r_out),
            d_h_n: Some(&self.r_h),
            d_c_n: self.lstm().then_some(&self.r_c[..]),
        }
    }

    fn loss(&self, params: &RnnParams<f64>, x: &[f64], h0: &[f64], c0: &[f64]) -> f64 {
        let mut cache = RnnCache::new();
        Rnn::new(params.clone())
            .forward(&self.input(x, h0, c0), &mut cache)
            .unwrap();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        dot(cache.output(), &self.r_out) + dot(cache.h_n(), &self.r_h) + dot(cache.c_n(), &self.r_c)
    }

    /// Fast forward+backward; returns the cache and the parameter gradients.
    fn fast(&self) -> (RnnCache<f64>, RnnParams<f64>) {
        let rnn = Rnn::new(self.params.clone());
        let mut cache = RnnCache::new();
        let mut grads = RnnParams::zeros(self.cfg);
        rnn.forward(&self.input(&self.x, &self.h0, &self.c0), &mut cache)
            .unwrap();
        rnn.backward(&mut cache, &self.grad(), &mut grads).unwrap();
        (cache, grads)
    }

    fn gradcheck(&self, label: &str) {
        let (cache, grads) = self.fast();
        let (eps, tol) = (1e-5, 1e-5);
        let names: Vec<String> = grads.tensors().into_iter().map(|t| t.name).collect();
        for (k, name) in names.iter().enumerate() {
            let analytic = grads.tensors()[k].data.to_vec();
            check_gradient(&format!("{label} {name}"), &analytic, eps, tol, |i, d| {
                let mut p = self.params.clone();
                p.tensors_mut()[k].data[i] += d;
                self.loss(&p, &self.x, &self.h0, &self.c0)
            });
        }
        check_gradient(&format!("{label} x"), cache.dx(), eps, tol, |i, d| {
            let mut x = self.x.clone();
            x[i] += d;
            self.loss(&self.params, &x, &self.h0, &self.c0)
        });
        check_gradient(&format!("{label} h0"), cache.dh0(), eps, tol, |i, d| {
            let mut h0 = self.h0.clone();
            h0[i] += d;
            self.loss(&self.params, &self.x, &h0, &self.c0)
        });
        if self.lstm() {
            check_gradient(&format!("{label} c0"), cache.dc0(), eps, tol, |i, d| {
                let mut c0 = self.c0.clone();
                c0[i] += d;
                self.loss(&self.params, &self.x, &self.h0, &c0)
            });
        }
    }

    fn compare_with_reference(&self, label: &str, threads: usize) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (cache, grads) = pool.install(|| self.fast());
        let r = forward_backward(
            &self.params,
            &self.input(&self.x, &self.h0, &self.c0),
            &self.grad(),
        );
        let tol = 1e-12;
        let l = |k: &str| format!("{label} ({threads} threads) {k}");
        assert_close(&l("output"), cache.output(), &r.output, tol);
        assert_close(&l("h_n"), cache.h_n(), &r.h_n, tol);
        assert_close(&l("c_n"), cache.c_n(), &r.c_n, tol);
        assert_close(&l("dx"), cache.dx(), &r.dx, tol);
        assert_close(&l("dh0"), cache.dh0(), &r.dh0, tol);
        assert_close(&l("dc0"), cache.dc0(), &r.dc0, tol);
        for (a, b) in grads.tensors().into_iter().zip(r.grads.tensors()) {
            assert_close(&l(&a.name), a.data, b.data, tol);
        }
    }
}

fn both_cells() -> [CellKind; 2] {
    [CellKind::Lstm, CellKind::Gru]
}

#[test]
fn finite_differences_agree_for_deep_bidirectional_variable_length_stacks() {
    for cell in both_cells() {
        let cfg = RnnConfig::new(cell, 3, 4)
            .with_layers(2)
            .with_bidirectional(true);
        // Lengths 4, 0, 1, 3: an empty sequence, a single step, and ragged ends in both directions.
        Problem::new(cfg, 4, 4, Some(vec![4, 0, 1, 3]), 11)
            .gradcheck(&format!("{cell:?} 2-layer bidir packed"));
    }
}

#[test]
fn finite_differences_agree_for_unidirectional_full_length() {
    for cell in both_cells() {
        let cfg = RnnConfig::new(cell, 2, 3);
        Problem::new(cfg, 5, 2, None, 21).gradcheck(&format!("{cell:?} single"));
    }
}

#[test]
fn finite_differences_agree_for_single_step_cells() {
    for kind in both_cells() {
        let cell = Cell::<f64>::new(kind, 3, 5, &mut Rng::new(3));
        let (x, h, c) = (randn(2 * 3, 1), randn(2 * 5, 2), randn(2 * 5, 3));
        let (rh, rc) = (randn(10, 4), randn(10, 5));
        let lstm = kind == CellKind::Lstm;
        let loss = |cell: &Cell<f64>, x: &[f64], h: &[f64], c: &[f64]| {
            let mut cache = RnnCache::new();
            cell.step(x, 2, Some(h), lstm.then_some(c), &mut cache)
                .unwrap();
            let mut l: f64 = cache.h_n().iter().zip(&rh).map(|(a, b)| a * b).sum();
            l += cache.c_n().iter().zip(&rc).map(|(a, b)| a * b).sum::<f64>();
            l
        };
        let mut cache = RnnCache::new();
        cell.step(&x, 2, Some(&h), lstm.then_some(&c[..]), &mut cache)
            .unwrap();
        let mut grads = cell.zero_grads();
        cell.step_backward(&mut cache, Some(&rh), lstm.then_some(&rc[..]), &mut grads)
            .unwrap();
        let g = &grads.dirs[0];
        for (name, analytic, which) in [
            ("w_ih", &g.w_ih, 0),
            ("w_hh", &g.w_hh, 1),
            ("b_ih", &g.b_ih, 2),
            ("b_hh", &g.b_hh, 3),
        ] {
            check_gradient(
                &format!("{kind:?} cell {name}"),
                analytic,
                1e-5,
                1e-5,
                |i, d| {
                    let mut c2 = cell.clone();
                    let p = c2.params_mut();
                    [&mut p.w_ih, &mut p.w_hh, &mut p.b_ih, &mut p.b_hh][which][i] += d;
                    loss(&c2, &x, &h, &c)
                },
            );
        }
        check_gradient(
            &format!("{kind:?} cell x"),
            cache.dx(),
            1e-5,
            1e-5,
            |i, d| {
                let mut x2 = x.clone();
                x2[i] += d;
                loss(&cell, &x2, &h, &c)
            },
        );
        check_gradient(
            &format!("{kind:?} cell h"),
            cache.dh0(),
            1e-5,
            1e-5,
            |i, d| {
                let mut h2 = h.clone();
                h2[i] += d;
                loss(&cell, &x, &h2, &c)
            },
        );
    }
}

#[test]
fn fast_path_matches_reference_on_awkward_shapes() {
    // (layers, bidir, input, hidden, steps, batch, lengths): hidden sizes off the SIMD width,
    // batch 1, length-1 sequences, zero-length rows, more threads than rows.
    type Shape = (usize, bool, usize, usize, usize, usize, Option<Vec<usize>>);
    let shapes: Vec<Shape> = vec![
        (1, false, 5, 17, 1, 1, None),
        (1, true, 3, 9, 6, 1, None),
        (2, true, 7, 13, 5, 5, Some(vec![5, 1, 0, 3, 2])),
        (3, false, 4, 33, 4, 3, Some(vec![1, 4, 1])),
        (1, true, 6, 8, 7, 7, Some(vec![0, 0, 7, 1, 6, 2, 3])),
        (2, false, 2, 3, 3, 2, Some(vec![0, 0])),
        // Fewer rows than threads, bidirectional: the directions run side by side (2 and 4
        // threads), one layer's interleaved outputs feeding the next; ragged lengths.
        (2, true, 5, 11, 6, 1, None),
        (2, true, 4, 6, 5, 2, Some(vec![5, 2])),
    ];
    for (seed, (layers, bidir, input, hidden, steps, batch, lengths)) in
        shapes.into_iter().enumerate()
    {
        for cell in both_cells() {
            let cfg = RnnConfig::new(cell, input, hidden)
                .with_layers(layers)
                .with_bidirectional(bidir);
            let p = Problem::new(cfg, steps, batch, lengths.clone(), seed as u64 * 7);
            for threads in [1, 2, 4] {
                p.compare_with_reference(&format!("{cell:?} L{layers} bidir{bidir} I{input} H{hidden} T{steps} B{batch} {lengths:?}"), threads);
            }
        }
    }
}

#[test]
fn f32_fast_path_tracks_f64_reference() {
    // Batch 6 takes the few-row (GEMV) path; batch 13 (7 and 6 rows per thread on two threads, 13
    // on one) the packed per-step kernel, with a hidden size that leaves a ragged panel.
    let problems = [
        (40, 6, vec![12, 3, 1, 12, 7, 9]),
        (37, 13, vec![12, 3, 1, 12, 7, 9, 0, 12, 5, 11, 2, 12, 8]),
    ];
    for (cell, (hidden, batch, lengths)) in both_cells()
        .into_iter()
        .flat_map(|c| problems.iter().cloned().map(move |p| (c, p)))
    {
        let cfg = RnnConfig::new(cell, 16, hidden)
            .with_layers(2)
            .with_bidirectional(true);
        let p = Problem::new(cfg, 12, batch, Some(lengths), 5);
        let r = forward_backward(&p.params, &p.input(&p.x, &p.h0, &p.c0), &p.grad());
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let mut params32 = RnnParams::<f32>::zeros(cfg);
        for (a, b) in params32.tensors_mut().into_iter().zip(p.params.tensors()) {
            a.data.copy_from_slice(&f(b.data));
        }
        let (x, h0, c0, ro, rh, rc) = (
            f(&p.x),
            f(&p.h0),
            f(&p.c0),
            f(&p.r_out),
            f(&p.r_h),
            f(&p.r_c),
        );
        let lstm = p.lstm();
        let input = RnnInput {
            x: &x,
            steps: p.steps,
            batch: p.batch,
            lengths: p.lengths.as_deref(),
            h0: Some(&h0),
            c0: lstm.then_some(&c0[..]),
        };
        let grad = RnnGradOut {
            d_output: Some(&ro),
            d_h_n: Some(&rh),
            d_c_n: lstm.then_some(&rc[..]),
        };
        let rnn = Rnn::new(params32);
        let mut cache = RnnCache::new();
        let mut grads = RnnParams::zeros(cfg);
        rnn.forward(&input, &mut cache).unwrap();
        rnn.backward(&mut cache, &grad, &mut grads).unwrap();
        let w = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        assert_close(
            &format!("{cell:?} f32 output"),
            &w(cache.output()),
            &r.output,
            1e-5,
        );
        assert_close(&format!("{cell:?} f32 dx"), &w(cache.dx()), &r.dx, 1e-5);
        for (a, b) in grads.tensors().into_iter().zip(r.grads.tensors()) {
            assert_close(
                &format!("{cell:?} f32 {}", a.name),
                &w(a.data),
                b.data,
                1e-5,
            );
        }
    }
}

#[test]
fn repeated_calls_reuse_the_cache_and_give_the_same_answer() {
    let cfg = RnnConfig::new(CellKind::Lstm, 4, 6).with_bidirectional(true);
    let big = Problem::new(cfg, 6, 5, None, 1);
    let small = Problem::new(cfg, 3, 2, Some(vec![3, 1]), 2);
    let rnn = Rnn::new(small.params.clone());
    let mut cache = RnnCache::new();
    let run = |cache: &mut RnnCache<f64>, p: &Problem| {
        let mut g = RnnParams::zeros(cfg);
        Rnn::new(p.params.clone())
            .forward(&p.input(&p.x, &p.h0, &p.c0), cache)
            .unwrap();
        Rnn::new(p.params.clone())
            .backward(cache, &p.grad(), &mut g)
            .unwrap();
        (cache.output().to_vec(), cache.dx().to_vec(), g)
    };
    let first = run(&mut cache, &small);
    run(&mut cache, &big);
    let again = run(&mut cache, &small);
    assert_eq!(first.0, again.0);
    assert_eq!(first.1, again.1);
    assert_eq!(first.2, again.2);
    let _ = rnn;
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let cfg = RnnConfig::new(CellKind::Gru, 3, 4).with_layers(2);
    let rnn = Rnn::new(RnnParams::<f32>::zeros(cfg));
    let mut cache = RnnCache::new();
    let x = vec![0.0f32; 2 * 3 * 3];
    let err = rnn
        .forward(&RnnInput::new(&x[..17], 2, 3), &mut cache)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RnnError::Shape {
                what: "x",
                expected: 18,
                got: 17,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("[T=2, B=3, I=3]"), "{err}");
    let lengths = [2, 3, 1];
    let err = rnn
        .forward(
            &RnnInput {
                lengths: Some(&lengths),
                ..RnnInput::new(&x, 2, 3)
            },
            &mut cache,
        )
        .unwrap_err();
    assert_eq!(
        err,
        RnnError::Length {
            index: 1,
            len: 3,
            steps: 2
        }
    );
    let c0 = vec![0.0f32; 2 * 3 * 4];
    let err = rnn
        .forward(
            &RnnInput {
                c0: Some(&c0),
                ..RnnInput::new(&x, 2, 3)
            },
            &mut cache,
        )
        .unwrap_err();
    assert_eq!(err, RnnError::NoCellState { what: "c0" });
    let mut g = RnnParams::zeros(cfg);
    assert_eq!(
        rnn.backward(&mut RnnCache::new(), &RnnGradOut::default(), &mut g)
            .unwrap_err(),
        RnnError::NoForward
    );
    rnn.forward(&RnnInput::new(&x, 2, 3), &mut cache).unwrap();
    let d = vec![0.0f32; 5];
    let err = rnn
        .backward(
            &mut cache,
            &RnnGradOut {
                d_output: Some(&d),
                ..Default::default()
            },
            &mut g,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        RnnError::Shape {
            what: "d_output",
            ..
        }
    ));
}

#[test]
fn empty_batch_and_zero_steps_are_handled() {
    let cfg = RnnConfig::new(CellKind::Lstm, 3, 4).with_bidirectional(true);
    let rnn = Rnn::new(RnnParams::<f32>::init_uniform(cfg, &mut Rng::new(0)));
    let mut cache = RnnCache::new();
    rnn.forward(&RnnInput::new(&[], 0, 2), &mut cache).unwrap();
    assert!(cache.output().is_empty());
    assert_eq!(cache.h_n(), &[0.0; 16]);
    rnn.forward(&RnnInput::new(&[], 3, 0), &mut cache).unwrap();
    assert!(cache.output().is_empty() && cache.h_n().is_empty());
}

/// `RnnCache::trace` (what `abridge explain` draws) agrees with the final states: the memory after
/// each row's last step in the forward direction, and after step 0 in the reverse one, is its
/// `c_n` (LSTM) or `h_n` (GRU); sigmoid gates lie in (0, 1).
#[test]
fn trace_memory_ends_at_the_final_states() {
    for cell in [CellKind::Lstm, CellKind::Gru] {
        let mut cfg = RnnConfig::new(cell, 3, 5);
        cfg.num_layers = 2;
        cfg.bidirectional = true;
        let p = Problem::new(cfg, 4, 3, Some(vec![4, 2, 1]), 11);
        let rnn = Rnn::new(p.params.clone());
        let mut cache = RnnCache::new();
        let input = RnnInput {
            x: &p.x,
            steps: 4,
            batch: 3,
            lengths: p.lengths.as_deref(),
            h0: Some(&p.h0),
            c0: if p.lstm() { Some(&p.c0) } else { None },
        };
        rnn.forward(&input, &mut cache).unwrap();
        let h = 5;
        for layer in 0..2 {
            for dir in 0..2 {
                for (b, &len) in [4usize, 2, 1].iter().enumerate() {
                    let tr = cache.trace(layer, dir, b).unwrap();
                    assert_eq!(tr.len(), len);
                    let last = if dir == 0 { &tr[len - 1].1 } else { &tr[0].1 };
                    let fin = if p.lstm() { cache.c_n() } else { cache.h_n() };
                    let idx = (layer * 2 + dir) * 3 + b;
                    assert_close("final memory", last, &fin[idx * h..][..h], 1e-12);
                    for (gates, _) in &tr {
                        // LSTM i, f (0..2H) and o (3H..4H); GRU r, z (0..2H) are sigmoids.
                        let sig = gates[..2 * h].iter().chain(if p.lstm() {
                            &gates[3 * h..]
                        } else {
                            &[][..]
                        });
                        assert!(sig.into_iter().all(|v| *v > 0.0 && *v < 1.0));
                    }
                }
            }
        }
        assert!(cache.trace(2, 0, 0).is_none() && cache.trace(0, 2, 0).is_none());
        assert!(cache.trace(0, 0, 3).is_none());
    }
}

/// A decoder's pattern: many one-step calls in sequence, with `W_hh` packed once by the caller and
/// the gradient scratch lent from step to step, must give what fresh per-step caches give.
#[test]
fn shared_packed_weights_and_lent_scratch_match_fresh_caches() {
    for cell in both_cells() {
        let (i, h, b, steps) = (16, 37, 13, 4);
        let cfg = RnnConfig::new(cell, i, h);
        let rnn = Rnn::new(RnnParams::<f32>::init_uniform(cfg, &mut Rng::new(3)));
        let lstm = cell == CellKind::Lstm;
        let f32s = |n: usize, seed: u64| -> Vec<f32> {
            randn(n, seed).into_iter().map(|x| x as f32).collect()
        };
        let xs: Vec<Vec<f32>> = (0..steps).map(|t| f32s(b * i, 10 + t as u64)).collect();
        let dhs: Vec<Vec<f32>> = (0..steps).map(|t| f32s(b * h, 20 + t as u64)).collect();
        // Runs the steps forward (state carried), then backward with `dh` added at every step.
        let run = |shared: bool| {
            let packed = if shared { rnn.pack_recurrent() } else { None };
            let mut caches: Vec<RnnCache<f32>> = (0..steps).map(|_| RnnCache::new()).collect();
            let (mut hs, mut cs) = (vec![0f32; b * h], vec![0f32; b * h]);
            let mut outs = Vec::new();
            for (t, cache) in caches.iter_mut().enumerate() {
                cache.set_packed(packed.clone());
                let input = RnnInput {
                    x: &xs[t],
                    steps: 1,
                    batch: b,
                    lengths: None,
                    h0: Some(&hs),
                    c0: lstm.then_some(&cs[..]),
                };
                rnn.forward(&input, cache).unwrap();
                hs = cache.h_n().to_vec();
                if lstm {
                    cs = cache.c_n().to_vec();
                }
                outs.extend(hs.iter().map(|&v| v as f64));
            }
            let mut grads = RnnParams::zeros(cfg);
            let (mut dh, mut dc) = (vec![0f32; b * h], vec![0f32; b * h]);
            for t in (0..steps).rev() {
                dh.iter_mut().zip(&dhs[t]).for_each(|(a, x)| *a += *x);
                let grad = RnnGradOut {
                    d_output: None,
                    d_h_n: Some(&dh),
                    d_c_n: lstm.then_some(&dc[..]),
                };
                rnn.backward(&mut caches[t], &grad, &mut grads).unwrap();
                dh = caches[t].dh0().to_vec();
                if lstm {
                    dc = caches[t].dc0().to_vec();
                }
                if shared && t > 0 {
                    let (before, rest) = caches.split_at_mut(t);
                    rest[0].lend_grad_scratch(&mut before[t - 1]);
                }
            }
            let g: Vec<f64> = grads
                .tensors()
                .iter()
                .flat_map(|t| t.data.iter().map(|&v| v as f64))
                .collect();
            (outs, g)
        };
        let (out_a, g_a) = run(false);
        let (out_b, g_b) = run(true);
        assert_close(&format!("{cell:?} outputs"), &out_b, &out_a, 1e-5);
        assert_close(&format!("{cell:?} gradients"), &g_b, &g_a, 1e-5);
    }
}

#[test]
fn backward_consumes_the_forward_pass() {
    for cell in both_cells() {
        let cfg = RnnConfig::new(cell, 3, 4);
        let rnn = Rnn::new(RnnParams::<f32>::init_uniform(cfg, &mut Rng::new(1)));
        let x = vec![0.5f32; 2 * 3 * 3];
        let mut cache = RnnCache::new();
        rnn.forward(&RnnInput::new(&x, 2, 3), &mut cache).unwrap();
        assert!(cache.trace(0, 0, 0).is_some());
        let mut g = RnnParams::zeros(cfg);
        rnn.backward(&mut cache, &RnnGradOut::default(), &mut g)
            .unwrap();
        assert!(
            cache.trace(0, 0, 0).is_none(),
            "{cell:?}: trace after backward"
        );
        assert_eq!(
            rnn.backward(&mut cache, &RnnGradOut::default(), &mut g),
            Err(RnnError::NoForward),
            "{cell:?}: a second backward must be refused, not run on overwritten gates"
        );
        rnn.forward(&RnnInput::new(&x, 2, 3), &mut cache).unwrap();
        rnn.backward(&mut cache, &RnnGradOut::default(), &mut g)
            .unwrap();
    }
}
