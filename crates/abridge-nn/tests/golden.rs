//! Parity with PyTorch: every case of `../shared/golden` (outputs, final states, every gradient),
//! through the fast path and through the slow reference. Skipped when `../shared` is absent.

use std::collections::HashMap;
use std::path::Path;

use abridge_nn::reference::forward_backward;
use abridge_nn::{
    Cell, CellKind, DirParams, Rnn, RnnCache, RnnConfig, RnnGradOut, RnnInput, RnnParams,
};
use abridge_tensor::Float;
use abridge_testkit::{assert_close, read_safetensors, shared_or_skip, Tensor};

fn conv<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}
fn wide<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

struct Case {
    name: String,
    t: HashMap<String, Tensor>,
}

impl Case {
    fn get(&self, k: &str) -> &Tensor {
        self.t
            .get(k)
            .unwrap_or_else(|| panic!("{}: tensor {k} missing", self.name))
    }
    fn opt<T: Float>(&self, k: &str) -> Option<Vec<T>> {
        self.t.get(k).map(|t| conv(&t.data))
    }
    fn tol<T: Float>(&self) -> f64 {
        if T::NAME == "f64" {
            1e-10
        } else {
            1e-5
        }
    }
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| Case {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            t: read_safetensors(&p),
        })
        .collect()
}

fn stack_config(case: &Case) -> RnnConfig {
    let cell = CellKind::parse(case.name.split('_').next().unwrap()).unwrap();
    let layers = (0..)
        .take_while(|k| case.t.contains_key(&format!("weight_ih_l{k}")))
        .count();
    let w = case.get("weight_hh_l0");
    let input = case.get("weight_ih_l0").shape[1];
    RnnConfig::new(cell, input, w.shape[1])
        .with_layers(layers)
        .with_bidirectional(case.t.contains_key("weight_ih_l0_reverse"))
}

fn check_stack<T: Float>(case: &Case, threads: usize) {
    let cfg = stack_config(case);
    let mut params = RnnParams::<T>::zeros(cfg);
    for p in params.tensors_mut() {
        let src = case.get(&p.name);
        assert_eq!(src.shape, p.shape, "{}: shape of {}", case.name, p.name);
        p.data.copy_from_slice(&conv::<T>(&src.data));
    }
    let x_t = case.get("x");
    let (steps, batch) = (x_t.shape[0], x_t.shape[1]);
    let x: Vec<T> = conv(&x_t.data);
    let lengths: Option<Vec<usize>> = case
        .t
        .get("lengths")
        .map(|l| l.data.iter().map(|&v| v as usize).collect());
    let (h0, c0) = (case.opt::<T>("h0"), case.opt::<T>("c0"));
    let input = RnnInput {
        x: &x,
        steps,
        batch,
        lengths: lengths.as_deref(),
        h0: h0.as_deref(),
        c0: c0.as_deref(),
    };
    let (r_out, r_h, r_c) = (
        case.opt::<T>("r_output"),
        case.opt::<T>("r_h_n"),
        case.opt::<T>("r_c_n"),
    );
    let grad = RnnGradOut {
        d_output: r_out.as_deref(),
        d_h_n: r_h.as_deref(),
        d_c_n: r_c.as_deref(),
    };
    let tol = case.tol::<T>();
    let what = |k: &str| format!("{} ({threads} threads) {k}", case.name);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let rnn = Rnn::new(params.clone());
    let mut cache = RnnCache::new();
    let mut grads = RnnParams::zeros(cfg);
    pool.install(|| {
        rnn.forward(&input, &mut cache).unwrap();
        rnn.backward(&mut cache, &grad, &mut grads).unwrap();
    });
    assert_close(
        &what("output"),
        &wide(cache.output()),
        &case.get("output").data,
        tol,
    );
    assert_close(&what("h_n"), &wide(cache.h_n()), &case.get("h_n").data, tol);
    if cfg.cell == CellKind::Lstm {
        assert_close(&what("c_n"), &wide(cache.c_n()), &case.get("c_n").data, tol);
        assert_close(
            &what("grad.c0"),
            &wide(cache.dc0()),
            &case.get("grad.c0").data,
            tol,
        );
    }
    assert_close(
        &what("grad.x"),
        &wide(cache.dx()),
        &case.get("grad.x").data,
        tol,
    );
    assert_close(
        &what("grad.h0"),
        &wide(cache.dh0()),
        &case.get("grad.h0").data,
        tol,
    );
    for g in grads.tensors() {
        assert_close(
            &what(&format!("grad.{}", g.name)),
            &wide(g.data),
            &case.get(&format!("grad.{}", g.name)).data,
            tol,
        );
    }
    // The loss itself, as PyTorch computed it.
    let dot = |a: &[T], b: &Option<Vec<T>>| {
        b.as_ref().map_or(0.0, |b| {
            a.iter().zip(b).map(|(x, y)| x.to_f64() * y.to_f64()).sum()
        })
    };
    let loss = dot(cache.output(), &r_out) + dot(cache.h_n(), &r_h) + dot(cache.c_n(), &r_c);
    assert_close(&what("loss"), &[loss], &case.get("loss").data, tol);

    // The slow reference agrees with PyTorch too.
    let reference = forward_backward(&params, &input, &grad);
    assert_close(
        &what("reference output"),
        &wide(&reference.output),
        &case.get("output").data,
        tol,
    );
    assert_close(
        &what("reference grad.x"),
        &wide(&reference.dx),
        &case.get("grad.x").data,
        tol,
    );
    for g in reference.grads.tensors() {
        assert_close(
            &what(&format!("reference grad.{}", g.name)),
            &wide(g.data),
            &case.get(&format!("grad.{}", g.name)).data,
            tol,
        );
    }
}

fn check_cell<T: Float>(case: &Case) {
    let kind = CellKind::parse(case.name.split('_').next().unwrap()).unwrap();
    let w_ih = case.get("weight_ih");
    let (gh, input) = (w_ih.shape[0], w_ih.shape[1]);
    let hidden = gh / kind.gates();
    let p = DirParams {
        w_ih: conv(&w_ih.data),
        w_hh: conv(&case.get("weight_hh").data),
        b_ih: conv(&case.get("bias_ih").data),
        b_hh: conv(&case.get("bias_hh").data),
    };
    let cell = Cell::from_params(kind, input, hidden, p);
    let x: Vec<T> = conv(&case.get("x").data);
    let batch = case.get("x").shape[0];
    let (h0, c0) = (case.opt::<T>("h0"), case.opt::<T>("c0"));
    let mut cache = RnnCache::new();
    cell.step(&x, batch, h0.as_deref(), c0.as_deref(), &mut cache)
        .unwrap();
    let tol = case.tol::<T>();
    assert_close(
        &format!("{} h'", case.name),
        &wide(cache.h_n()),
        &case.get("h_n").data,
        tol,
    );
    let (r_h, r_c) = (case.opt::<T>("r_h_n"), case.opt::<T>("r_c_n"));
    let mut grads = cell.zero_grads();
    cell.step_backward(&mut cache, r_h.as_deref(), r_c.as_deref(), &mut grads)
        .unwrap();
    if kind == CellKind::Lstm {
        assert_close(
            &format!("{} c'", case.name),
            &wide(cache.c_n()),
            &case.get("c_n").data,
            tol,
        );
        assert_close(
            &format!("{} grad.c0", case.name),
            &wide(cache.dc0()),
            &case.get("grad.c0").data,
            tol,
        );
    }
    assert_close(
        &format!("{} grad.x", case.name),
        &wide(cache.dx()),
        &case.get("grad.x").data,
        tol,
    );
    assert_close(
        &format!("{} grad.h0", case.name),
        &wide(cache.dh0()),
        &case.get("grad.h0").data,
        tol,
    );
    for g in grads.tensors() {
        let name = Cell::<T>::cell_name(&g.name);
        assert_close(
            &format!("{} grad.{name}", case.name),
            &wide(g.data),
            &case.get(&format!("grad.{name}")).data,
            tol,
        );
    }
}

#[test]
fn every_golden_case_matches_pytorch() {
    let Some(dir) = shared_or_skip("golden", "every_golden_case_matches_pytorch") else {
        return;
    };
    let cases = load_cases(&dir);
    assert_eq!(
        cases.len(),
        20,
        "expected the 20 cases listed in golden/cases.json"
    );
    for case in &cases {
        let f64_case = case.name.ends_with("_f64");
        match (case.name.contains("_cell_"), f64_case) {
            (true, true) => check_cell::<f64>(case),
            (true, false) => check_cell::<f32>(case),
            (false, true) => {
                for threads in [1, 2, 3] {
                    check_stack::<f64>(case, threads)
                }
            }
            (false, false) => {
                for threads in [1, 2] {
                    check_stack::<f32>(case, threads)
                }
            }
        }
    }
}
