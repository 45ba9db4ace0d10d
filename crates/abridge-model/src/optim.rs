//! Optimisers and gradient clipping over [`Params`]. State is kept in f32 (as PyTorch does);
//! each update is computed in f64.
//!
//! * Adam (Kingma & Ba 2015): `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`,
//!   `θ ← θ − lr · m̂ / (√v̂ + ε)` with bias-corrected `m̂ = m / (1−β1^t)`, `v̂ = v / (1−β2^t)`.
//! * Adagrad (Duchi et al. 2011), as See et al. train: `acc ← acc + g²`, `θ ← θ − lr · g / √acc`,
//!   the accumulator starting at 0.1.
//! * Clipping by global norm: if `‖g‖₂ > max`, every gradient is scaled by `max / ‖g‖₂`.

use abridge_tensor::Float;
use rayon::prelude::*;

use crate::Params;

/// The optimiser and its state (one buffer per tensor, in [`Params::tensors_mut`] order).
#[derive(Clone, Debug)]
pub enum Optimizer {
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        t: u64,
        m: Vec<Vec<f32>>,
        v: Vec<Vec<f32>>,
    },
    Adagrad {
        lr: f64,
        acc: Vec<Vec<f32>>,
        initial: f64,
    },
}

/// Adam's per-step constants, in f32 (the moments are f32; PyTorch's CPU Adam computes in f32 too).
#[derive(Clone, Copy)]
struct AdamConsts {
    b1: f32,
    b2: f32,
    /// `lr / (1 − β1ᵗ)` and `1 / (1 − β2ᵗ)`.
    lr_c1: f32,
    inv_c2: f32,
    eps: f32,
}

abridge_tensor::simd_fn_wide! {
    /// `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`, `p ← p − lr m̂ / (√v̂ + ε)` over one chunk
    /// (vectorised: f32 lanes, one division and one square root per element).
    fn adam_update<T>(p: &mut [T], g: &[T], m: &mut [f32], v: &mut [f32], k: AdamConsts) {
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let gi = g[i].to_f64() as f32;
            let mi = k.b1 * m[i] + (1.0 - k.b1) * gi;
            let vi = k.b2 * v[i] + (1.0 - k.b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] -= T::from_f64((k.lr_c1 * mi / ((vi * k.inv_c2).sqrt() + k.eps)) as f64);
        }
    }
}

impl Optimizer {
    pub fn adam(lr: f64) -> Self {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![],
            v: vec![],
        }
    }

    /// See et al.: lr 0.15, initial accumulator 0.1.
    pub fn adagrad(lr: f64, initial: f64) -> Self {
        Optimizer::Adagrad {
            lr,
            acc: vec![],
            initial,
        }
    }

    /// One update of `params` from `grads`.
    pub fn step<T: Float>(&mut self, params: &mut Params<T>, grads: &mut Params<T>) {
        self.step_scaled(params, grads, 1.0)
    }

    /// One update with the learning rate multiplied by `scale` (a schedule's factor).
    pub fn step_scaled<T: Float>(
        &mut self,
        params: &mut Params<T>,
        grads: &mut Params<T>,
        scale: f64,
    ) {
        let ps = params
            .tensors_mut()
            .into_iter()
            .map(|(_, _, p)| p)
            .collect();
        let gs = grads
            .tensors_mut()
            .into_iter()
            .map(|(_, _, g)| &*g)
            .collect();
        self.step_tensors(ps, gs, scale)
    }

    /// One update of any list of tensors (`params[k]` from `grads[k]`, the same list and order at
    /// every call), with the learning rate multiplied by `scale`.
    pub fn step_tensors<T: Float>(&mut self, ps: Vec<&mut [T]>, gs: Vec<&[T]>, scale: f64) {
        assert_eq!(ps.len(), gs.len(), "one gradient per parameter tensor");
        match self {
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
                t,
                m,
                v,
            } => {
                if m.is_empty() {
                    *m = ps.iter().map(|p| vec![0.0f32; p.len()]).collect();
                    *v = m.clone();
                }
                *t += 1;
                let (c1, c2) = (1.0 - beta1.powi(*t as i32), 1.0 - beta2.powi(*t as i32));
                let (lr, b1, b2, eps) = (*lr * scale, *beta1, *beta2, *eps);
                for (k, (p, g)) in ps.into_iter().zip(gs).enumerate() {
                    // Element-wise, so splitting into chunks changes nothing in the result.
                    let k_ = AdamConsts {
                        b1: b1 as f32,
                        b2: b2 as f32,
                        lr_c1: (lr / c1) as f32,
                        inv_c2: (1.0 / c2) as f32,
                        eps: eps as f32,
                    };
                    p.par_chunks_mut(4096)
                        .zip(g.par_chunks(4096))
                        .zip(m[k].par_chunks_mut(4096))
                        .zip(v[k].par_chunks_mut(4096))
                        .for_each(|(((p, g), m), v)| adam_update(p, g, m, v, k_));
                }
            }
            Optimizer::Adagrad { lr, acc, initial } => {
                if acc.is_empty() {
                    *acc = ps.iter().map(|p| vec![*initial as f32; p.len()]).collect();
                }
                let lr = *lr * scale;
                for (k, (p, g)) in ps.into_iter().zip(gs).enumerate() {
                    p.par_chunks_mut(4096)
                        .zip(g.par_chunks(4096))
                        .zip(acc[k].par_chunks_mut(4096))
                        .for_each(|((p, g), acc)| {
                            for i in 0..p.len() {
                                let g = g[i].to_f64();
                                let a = acc[i] as f64 + g * g;
                                acc[i] = a as f32;
                                p[i] -= T::from_f64(lr * g / a.sqrt());
                            }
                        });
                }
            }
        }
    }
}

/// Global L2 norm of all gradients: f64 sums of squares over fixed blocks (eight running sums
/// each, so the adds do not wait on one another), blocks in parallel, their sums added in order —
/// the same result for any number of threads.
pub fn global_norm<T: Float>(grads: &mut Params<T>) -> f64 {
    global_norm_of(
        &grads
            .tensors_mut()
            .into_iter()
            .map(|(_, _, g)| &*g)
            .collect::<Vec<_>>(),
    )
}

/// [`global_norm`] of any list of tensors.
pub fn global_norm_of<T: Float>(grads: &[&[T]]) -> f64 {
    const BLOCK: usize = 1 << 14;
    fn sum_sq<T: Float>(x: &[T]) -> f64 {
        let mut acc = [0.0f64; 8];
        let mut chunks = x.chunks_exact(8);
        for c in &mut chunks {
            for (a, v) in acc.iter_mut().zip(c) {
                *a += v.to_f64() * v.to_f64();
            }
        }
        let tail: f64 = chunks
            .remainder()
            .iter()
            .map(|v| v.to_f64() * v.to_f64())
            .sum();
        acc.iter().sum::<f64>() + tail
    }
    let mut total = 0.0f64;
    for g in grads {
        let sums: Vec<f64> = g.par_chunks(BLOCK).map(sum_sq).collect();
        total += sums.iter().sum::<f64>();
    }
    total.sqrt()
}

/// Scales gradients so their global norm is at most `max`; returns the norm before clipping.
/// A non-finite norm is returned as is and nothing is scaled (the caller skips the batch).
pub fn clip_global_norm<T: Float>(grads: &mut Params<T>, max: f64) -> f64 {
    clip_tensors(
        grads.tensors_mut().into_iter().map(|(_, _, g)| g).collect(),
        max,
    )
}

/// [`clip_global_norm`] of any list of tensors.
pub fn clip_tensors<T: Float>(mut grads: Vec<&mut [T]>, max: f64) -> f64 {
    let norm = global_norm_of(&grads.iter().map(|g| &**g).collect::<Vec<_>>());
    if norm.is_finite() && norm > max {
        let s = T::from_f64(max / norm);
        for g in grads.iter_mut() {
            g.par_chunks_mut(1 << 14)
                .for_each(|c| c.iter_mut().for_each(|x| *x *= s));
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelConfig;
    use abridge_tensor::Rng;

    /// The blocked, parallel norm against a plain sum, the same to the bit on 1, 2 and 3 threads,
    /// and clipping to the maximum.
    #[test]
    fn global_norm_is_the_plain_norm_for_any_thread_count() {
        let cfg = ModelConfig {
            vocab: 3000, // the vocabulary tables span several blocks, with ragged ends
            emb: 11,
            hidden: 7,
            attn: 5,
            ..Default::default()
        };
        let mut rng = Rng::new(2);
        let mut g = Params::<f32>::init(&cfg, &mut rng);
        let plain: f64 = g
            .tensors_mut()
            .iter()
            .flat_map(|(_, _, v)| v.iter())
            .map(|&x| x as f64 * x as f64)
            .sum::<f64>()
            .sqrt();
        let norms: Vec<f64> = [1, 2, 3]
            .iter()
            .map(|&n| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap();
                pool.install(|| global_norm(&mut g))
            })
            .collect();
        assert!(
            (norms[0] - plain).abs() <= 1e-12 * plain,
            "{} vs {plain}",
            norms[0]
        );
        assert!(norms.iter().all(|&x| x == norms[0]), "{norms:?}");
        let before = clip_global_norm(&mut g, plain / 4.0);
        assert_eq!(before, norms[0]);
        let after = global_norm(&mut g);
        assert!((after - plain / 4.0).abs() < 1e-5 * plain, "{after}");
    }
}
