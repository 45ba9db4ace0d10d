//! The slow, obviously-correct implementation: one sequence at a time, scalar loops, no GEMM, no
//! caching tricks. It exists to test [`crate::Rnn`] against, on inputs too large for finite
//! differences. The equations are those of [`crate::lstm`] and [`crate::gru`].

use abridge_tensor::Float;

use crate::{CellKind, DirParams, RnnGradOut, RnnInput, RnnParams};

/// Everything a forward and backward pass produce.
#[derive(Clone, Debug)]
pub struct Reference<T> {
    pub output: Vec<T>,
    pub h_n: Vec<T>,
    pub c_n: Vec<T>,
    pub grads: RnnParams<T>,
    pub dx: Vec<T>,
    pub dh0: Vec<T>,
    pub dc0: Vec<T>,
}

/// `W v` for a row-major `[rows, v.len()]` matrix.
fn matvec<T: Float>(w: &[T], v: &[T]) -> Vec<T> {
    w.chunks_exact(v.len())
        .map(|row| row.iter().zip(v).fold(T::ZERO, |s, (a, b)| s + *a * *b))
        .collect()
}

/// `out += Wᵀ u` for a row-major `[u.len(), out.len()]` matrix.
fn matvec_t_acc<T: Float>(out: &mut [T], w: &[T], u: &[T]) {
    for (row, &ui) in w.chunks_exact(out.len()).zip(u) {
        out.iter_mut().zip(row).for_each(|(o, wv)| *o += *wv * ui);
    }
}

/// `W += u vᵀ`.
fn outer_acc<T: Float>(w: &mut [T], u: &[T], v: &[T]) {
    for (row, &ui) in w.chunks_exact_mut(v.len()).zip(u) {
        row.iter_mut().zip(v).for_each(|(wv, vj)| *wv += ui * *vj);
    }
}

fn add<T: Float>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().zip(b).map(|(x, y)| *x + *y).collect()
}

/// What one step saves: input, previous state, activations, new state.
struct Step<T> {
    x: Vec<T>,
    h: Vec<T>,
    c: Vec<T>,
    acts: Vec<T>,
    q: Vec<T>,
    c_new: Vec<T>,
}

fn step_forward<T: Float>(
    cell: CellKind,
    p: &DirParams<T>,
    x: &[T],
    h: &[T],
    c: &[T],
) -> (Step<T>, Vec<T>) {
    let n = h.len();
    let gx = add(&matvec(&p.w_ih, x), &p.b_ih);
    let gh = add(&matvec(&p.w_hh, h), &p.b_hh);
    match cell {
        CellKind::Lstm => {
            let a = add(&gx, &gh);
            let mut acts = vec![T::ZERO; 4 * n];
            let (mut c_new, mut h_new) = (vec![T::ZERO; n], vec![T::ZERO; n]);
            for j in 0..n {
                let (i, f, g, o) = (
                    a[j].sigmoid(),
                    a[n + j].sigmoid(),
                    a[2 * n + j].tanh(),
                    a[3 * n + j].sigmoid(),
                );
                acts[j] = i;
                acts[n + j] = f;
                acts[2 * n + j] = g;
                acts[3 * n + j] = o;
                c_new[j] = f * c[j] + i * g;
                h_new[j] = o * c_new[j].tanh();
            }
            (
                Step {
                    x: x.to_vec(),
                    h: h.to_vec(),
                    c: c.to_vec(),
                    acts,
                    q: vec![],
                    c_new,
                },
                h_new,
            )
        }
        CellKind::Gru => {
            let mut acts = vec![T::ZERO; 3 * n];
            let mut h_new = vec![T::ZERO; n];
            for j in 0..n {
                let r = (gx[j] + gh[j]).sigmoid();
                let z = (gx[n + j] + gh[n + j]).sigmoid();
                let nn = (gx[2 * n + j] + r * gh[2 * n + j]).tanh();
                acts[j] = r;
                acts[n + j] = z;
                acts[2 * n + j] = nn;
                h_new[j] = (T::ONE - z) * nn + z * h[j];
            }
            let q = gh[2 * n..].to_vec();
            (
                Step {
                    x: x.to_vec(),
                    h: h.to_vec(),
                    c: vec![],
                    acts,
                    q,
                    c_new: vec![],
                },
                h_new,
            )
        }
    }
}

/// Backward of one step: returns `(δx, δh_prev, δc_prev)` and adds parameter gradients to `g`.
fn step_backward<T: Float>(
    cell: CellKind,
    p: &DirParams<T>,
    s: &Step<T>,
    dh: &[T],
    dc: &[T],
    g: &mut DirParams<T>,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let n = dh.len();
    let (da_x, da_h, mut dh_prev, dc_prev) = match cell {
        CellKind::Lstm => {
            let mut da = vec![T::ZERO; 4 * n];
            let mut dc_prev = vec![T::ZERO; n];
            for j in 0..n {
                let (i, f, gg, o) = (
                    s.acts[j],
                    s.acts[n + j],
                    s.acts[2 * n + j],
                    s.acts[3 * n + j],
                );
                let tc = s.c_new[j].tanh();
                let dct = dc[j] + dh[j] * o * (T::ONE - tc * tc);
                da[j] = dct * gg * i * (T::ONE - i);
                da[n + j] = dct * s.c[j] * f * (T::ONE - f);
                da[2 * n + j] = dct * i * (T::ONE - gg * gg);
                da[3 * n + j] = dh[j] * tc * o * (T::ONE - o);
                dc_prev[j] = dct * f;
            }
            (da.clone(), da, vec![T::ZERO; n], dc_prev)
        }
        CellKind::Gru => {
            let (mut dax, mut dah, mut dhp) =
                (vec![T::ZERO; 3 * n], vec![T::ZERO; 3 * n], vec![T::ZERO; n]);
            for j in 0..n {
                let (r, z, nn) = (s.acts[j], s.acts[n + j], s.acts[2 * n + j]);
                let dan = dh[j] * (T::ONE - z) * (T::ONE - nn * nn);
                let daz = dh[j] * (s.h[j] - nn) * z * (T::ONE - z);
                let dar = dan * s.q[j] * r * (T::ONE - r);
                dax[j] = dar;
                dax[n + j] = daz;
                dax[2 * n + j] = dan;
                dah[j] = dar;
                dah[n + j] = daz;
                dah[2 * n + j] = dan * r;
                dhp[j] = dh[j] * z;
            }
            (dax, dah, dhp, vec![])
        }
    };
    outer_acc(&mut g.w_ih, &da_x, &s.x);
    outer_acc(&mut g.w_hh, &da_h, &s.h);
    g.b_ih.iter_mut().zip(&da_x).for_each(|(a, b)| *a += *b);
    g.b_hh.iter_mut().zip(&da_h).for_each(|(a, b)| *a += *b);
    let mut dx = vec![T::ZERO; s.x.len()];
    matvec_t_acc(&mut dx, &p.w_ih, &da_x);
    matvec_t_acc(&mut dh_prev, &p.w_hh, &da_h);
    (dx, dh_prev, dc_prev)
}

/// Forward and backward of the whole stack, one sequence at a time.
pub fn forward_backward<T: Float>(
    params: &RnnParams<T>,
    input: &RnnInput<'_, T>,
    grad: &RnnGradOut<'_, T>,
) -> Reference<T> {
    let cfg = params.config;
    let (steps, batch, h, nd) = (input.steps, input.batch, cfg.hidden_size, cfg.directions());
    let (ld, dh, lstm) = (
        cfg.num_layers * nd,
        cfg.output_size(),
        cfg.cell == CellKind::Lstm,
    );
    let i0 = cfg.input_size;
    let state = |buf: Option<&[T]>, k: usize, b: usize| -> Vec<T> {
        buf.map(|v| v[(k * batch + b) * h..][..h].to_vec())
            .unwrap_or_else(|| vec![T::ZERO; h])
    };
    let mut r = Reference {
        output: vec![T::ZERO; steps * batch * dh],
        h_n: vec![T::ZERO; ld * batch * h],
        c_n: vec![T::ZERO; if lstm { ld * batch * h } else { 0 }],
        grads: RnnParams::zeros(cfg),
        dx: vec![T::ZERO; steps * batch * i0],
        dh0: vec![T::ZERO; ld * batch * h],
        dc0: vec![T::ZERO; if lstm { ld * batch * h } else { 0 }],
    };
    for b in 0..batch {
        let len = input.lengths.map_or(steps, |l| l[b]);
        // layer_in[l][t]: input of layer l at step t (t < len).
        let mut layer_in: Vec<Vec<Vec<T>>> = vec![(0..len)
            .map(|t| input.x[(t * batch + b) * i0..][..i0].to_vec())
            .collect()];
        let mut saved: Vec<Vec<Step<T>>> = Vec::new(); // [l·D + d][processing index]
        for l in 0..cfg.num_layers {
            let mut out = vec![vec![T::ZERO; dh]; len];
            for d in 0..nd {
                let k = l * nd + d;
                let (mut hh, mut cc) = (state(input.h0, k, b), state(input.c0, k, b));
                let mut steps_saved = Vec::new();
                let order: Vec<usize> = if d == 0 {
                    (0..len).collect()
                } else {
                    (0..len).rev().collect()
                };
                for &t in &order {
                    let (s, h_new) =
                        step_forward(cfg.cell, &params.dirs[k], &layer_in[l][t], &hh, &cc);
                    out[t][d * h..(d + 1) * h].copy_from_slice(&h_new);
                    if lstm {
                        cc = s.c_new.clone();
                    }
                    hh = h_new;
                    steps_saved.push(s);
                }
                r.h_n[(k * batch + b) * h..][..h].copy_from_slice(&hh);
                if lstm {
                    r.c_n[(k * batch + b) * h..][..h].copy_from_slice(&cc);
                }
                saved.push(steps_saved);
            }
            if l + 1 == cfg.num_layers {
                for (t, o) in out.iter().enumerate() {
                    r.output[(t * batch + b) * dh..][..dh].copy_from_slice(o);
                }
            }
            layer_in.push(out);
        }
        // Backward, top layer first.
        let mut d_out: Vec<Vec<T>> = (0..len)
            .map(|t| {
                grad.d_output.map_or(vec![T::ZERO; dh], |g| {
                    g[(t * batch + b) * dh..][..dh].to_vec()
                })
            })
            .collect();
        for l in (0..cfg.num_layers).rev() {
            let in_size = cfg.layer_input_size(l);
            let mut d_in = vec![vec![T::ZERO; in_size]; len];
            for d in 0..nd {
                let k = l * nd + d;
                let (mut dhh, mut dcc) = (state(grad.d_h_n, k, b), state(grad.d_c_n, k, b));
                let order: Vec<usize> = if d == 0 {
                    (0..len).collect()
                } else {
                    (0..len).rev().collect()
                };
                for (pi, &t) in order.iter().enumerate().rev() {
                    let dh_t: Vec<T> = dhh
                        .iter()
                        .zip(&d_out[t][d * h..(d + 1) * h])
                        .map(|(a, c)| *a + *c)
                        .collect();
                    let (dx, dhp, dcp) = step_backward(
                        cfg.cell,
                        &params.dirs[k],
                        &saved[k][pi],
                        &dh_t,
                        &dcc,
                        &mut r.grads.dirs[k],
                    );
                    d_in[t].iter_mut().zip(&dx).for_each(|(a, v)| *a += *v);
                    dhh = dhp;
                    dcc = dcp;
                }
                r.dh0[(k * batch + b) * h..][..h].copy_from_slice(&dhh);
                if lstm {
                    r.dc0[(k * batch + b) * h..][..h].copy_from_slice(&dcc);
                }
            }
            d_out = d_in;
        }
        for (t, dx) in d_out.iter().enumerate() {
            r.dx[(t * batch + b) * i0..][..i0].copy_from_slice(dx);
        }
    }
    r
}
