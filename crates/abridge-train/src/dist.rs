//! Data parallelism across processes: what the training loop needs from its peers ([`Ranks`]),
//! the one-process case ([`Solo`]) and, with the `mpi` feature, MPI (`mpi::MpiRanks`).
//!
//! A run on `N` ranks takes the same global batches as a run on one process (the plan depends on
//! the seed and the batch size only). Rank `r` takes the contiguous [`share`] `r` of a batch's
//! `B` examples and computes `g_r`, the gradient of the mean loss over its `T_r` target tokens.
//! The batch's gradient is
//!
//! ```text
//! g = Σ_r (T_r / T) · g_r,   T = Σ_r T_r
//! ```
//!
//! the same quantity one process computes (up to rounding). Every rank scales its gradient by
//! `T_r / T` (all of them know every `T_r`: each holds the whole training set) and the ranks sum
//! element-wise **in rank order** ([`Ranks::sum_f32`]: each rank adds up one slice of the vector
//! from every rank, `((x_0 + x_1) + x_2) + …`, then the slices are gathered), so every rank gets
//! the same bits on every run. Clipping and the optimizer then run on identical inputs on every
//! rank and the weights stay identical without ever being sent; the training loop checks that
//! they start identical and compares them again at each evaluation.

use std::ops::Range;

/// The `r`-th of `n` contiguous parts of `0..len`, in order, whose sizes differ by at most one.
pub fn share(len: usize, r: usize, n: usize) -> Range<usize> {
    let n = n.max(1);
    len * r / n..len * (r + 1) / n
}

/// The processes of a data-parallel run, as the training loop sees them. Every method is
/// collective: every rank calls it at the same point of the run, with buffers of the same length.
pub trait Ranks {
    /// This process's rank, `0..size()`; rank 0 writes checkpoints, logs and progress.
    fn rank(&self) -> usize;
    /// How many processes train together.
    fn size(&self) -> usize;
    /// The check before the ranks wait for each other (`step` = steps done so far): every rank
    /// reports whether it wants to stop (its time limit is spent), and all learn whether any
    /// does. A rank that does not arrive in time, or arrives at another step, ends the job with
    /// an error that names it.
    fn roll_call(&self, step: u64, stop: bool) -> bool;
    /// Element-wise sum of `buf` over ranks, added in rank order: the same bits on every rank.
    fn sum_f32(&self, what: &str, buf: &mut [f32]);
    /// [`sum_f32`](Self::sum_f32) for `f64`.
    fn sum_f64(&self, what: &str, buf: &mut [f64]);
    /// Every rank's `x`, in rank order.
    fn gather_u64(&self, what: &str, x: u64) -> Vec<u64>;
}

/// One process: every collective is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Ranks for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn roll_call(&self, _step: u64, stop: bool) -> bool {
        stop
    }
    fn sum_f32(&self, _what: &str, _buf: &mut [f32]) {}
    fn sum_f64(&self, _what: &str, _buf: &mut [f64]) {}
    fn gather_u64(&self, _what: &str, x: u64) -> Vec<u64> {
        vec![x]
    }
}

/// The rank-order sum that [`Ranks::sum_f32`] promises, for one slice: `parts[i]` is rank `i`'s
/// copy; the result is `((parts[0] + parts[1]) + parts[2]) + …` element by element.
pub fn sum_in_rank_order<T: Copy + std::ops::Add<Output = T>>(parts: &[&[T]], out: &mut [T]) {
    for (k, o) in out.iter_mut().enumerate() {
        let mut s = parts[0][k];
        for p in &parts[1..] {
            s = s + p[k];
        }
        *o = s;
    }
}

/// The world size an MPI launcher (Open MPI, MPICH/Hydra, Slurm's PMI) announces to this
/// process, if any.
pub fn launcher_world_size(env: impl Fn(&str) -> Option<String>) -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|v| env(v).and_then(|s| s.trim().parse().ok()))
}

/// How many ranks of this job run on this machine (for the default thread count), if the
/// launcher says.
pub fn launcher_local_size(env: impl Fn(&str) -> Option<String>) -> Option<usize> {
    [
        "OMPI_COMM_WORLD_LOCAL_SIZE",
        "MPI_LOCALNRANKS",
        "SLURM_NTASKS_PER_NODE",
    ]
    .iter()
    .find_map(|v| env(v).and_then(|s| s.trim().parse().ok()))
    .filter(|&n: &usize| n > 0)
}

#[cfg(feature = "mpi")]
pub mod mpi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_batch_once_in_order() {
        for len in 0..20 {
            for n in 1..6 {
                let parts: Vec<_> = (0..n).map(|r| share(len, r, n)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[n - 1].end, len);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let (lo, hi) = (
                    parts.iter().map(|p| p.len()).min().unwrap(),
                    parts.iter().map(|p| p.len()).max().unwrap(),
                );
                assert!(hi - lo <= 1, "{len} over {n}: {parts:?}");
            }
        }
    }

    #[test]
    fn rank_order_sum_is_left_to_right() {
        // 1e8 + 1 - 1e8 is 0 in f32 left to right, 1 in another order: the order is observable.
        let (a, b, c) = ([1e8f32], [1.0f32], [-1e8f32]);
        let mut out = [0.0f32];
        sum_in_rank_order(&[&a, &b, &c], &mut out);
        assert_eq!(out[0], 0.0);
        sum_in_rank_order(&[&a, &c, &b], &mut out);
        assert_eq!(out[0], 1.0);
    }

    #[test]
    fn launcher_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            launcher_world_size(env(&[("OMPI_COMM_WORLD_SIZE", "4")])),
            Some(4)
        );
        assert_eq!(launcher_world_size(env(&[("PMI_SIZE", "2")])), Some(2));
        assert_eq!(launcher_world_size(env(&[])), None);
        assert_eq!(
            launcher_local_size(env(&[("OMPI_COMM_WORLD_LOCAL_SIZE", "2")])),
            Some(2)
        );
    }
}
