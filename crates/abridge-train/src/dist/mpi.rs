//! [`Ranks`] over MPI (the `mpi` crate: Open MPI, MPICH, Intel MPI, ...).
//!
//! Every exchange is point-to-point with non-blocking requests polled against a deadline, so a
//! rank that stopped answering is named, whatever the step was doing:
//!
//! * Sums: a reduce-scatter (rank `i` receives slice `i` of every rank's vector and adds the
//!   copies in rank order) then an all-gather of the summed slices. Each rank sends and receives
//!   `2·(N−1)/N` of the vector, as a ring all-reduce does, and the order of the additions is ours,
//!   not the library's choice of algorithm.
//! * The roll call: ranks `1..N` send `(step, stop)` to rank 0, which answers with the decision;
//!   rank 0 names the ranks that did not arrive, the others name rank 0.
//! * A rank that dies is also the launcher's to see: `mpirun` ends the job and names it.
//!
//! On every failure the job ends with `MPI_Abort`; rank 0 writes checkpoints atomically between
//! steps, so the last one stays whole.

use std::time::{Duration, Instant};

use mpi::datatype::Equivalence;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use super::{share, sum_in_rank_order, Ranks};

const ROLL_CALL_TAG: mpi::Tag = 0x5ab;
const SCATTER_TAG: mpi::Tag = 0x5ac;
const GATHER_TAG: mpi::Tag = 0x5ad;

/// The process's MPI world, with a deadline for every wait on another rank.
pub struct MpiRanks {
    // Dropped last: finalises MPI.
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    timeout: Duration,
    _universe: Universe,
}

impl MpiRanks {
    /// Initialises MPI (thread level "serialized": calls come from one thread at a time). `None`
    /// if MPI was initialised already. `timeout`: the longest wait on another rank, at any
    /// point; it must cover the longest difference in work between ranks (data loading at the
    /// start, rank 0's checkpoint writes).
    pub fn init(timeout: Duration) -> Option<Self> {
        let (universe, _level) = mpi::initialize_with_threading(mpi::Threading::Serialized)?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Some(Self {
            world,
            rank,
            size,
            timeout,
            _universe: universe,
        })
    }

    /// Prints `msg` as this rank's error and ends every rank of the job.
    pub fn abort(&self, msg: &str, code: i32) -> ! {
        eprintln!("error: rank {} of {}: {msg}", self.rank, self.size);
        self.world.abort(code)
    }

    fn sum<T: Equivalence + Copy + Default + std::ops::Add<Output = T>>(
        &self,
        what: &str,
        buf: &mut [T],
    ) {
        let (n, me) = (self.size, self.rank);
        if n == 1 {
            return;
        }
        if buf.len() / n >= Count::MAX as usize {
            self.abort(
                &format!(
                    "{what}: {} values are more than MPI messages carry",
                    buf.len()
                ),
                70,
            );
        }
        let parts: Vec<_> = (0..n).map(|r| share(buf.len(), r, n)).collect();
        let mine = parts[me].clone();
        let m = mine.len();
        let deadline = Instant::now() + self.timeout;
        // Reduce-scatter: slice `me` of every rank's vector, added in rank order.
        let mut copies = vec![T::default(); n * m];
        copies[me * m..(me + 1) * m].copy_from_slice(&buf[mine.clone()]);
        mpi::request::scope(|sc| {
            let mut reqs = Vec::with_capacity(n);
            for (i, c) in split(&mut copies, (0..n).map(|_| m))
                .into_iter()
                .enumerate()
            {
                if i != me {
                    let from = self.world.process_at_rank(i as i32);
                    reqs.push((i, from.immediate_receive_into_with_tag(sc, c, SCATTER_TAG)));
                }
            }
            let sends: Vec<_> = (0..n)
                .filter(|&j| j != me)
                .map(|j| {
                    let to = self.world.process_at_rank(j as i32);
                    (
                        j,
                        to.immediate_send_with_tag(sc, &buf[parts[j].clone()], SCATTER_TAG),
                    )
                })
                .collect();
            self.wait_until(reqs, deadline, what);
            self.wait_until(sends, deadline, what);
        });
        let mut piece = vec![T::default(); m];
        let slices: Vec<&[T]> = (0..n).map(|i| &copies[i * m..(i + 1) * m]).collect();
        sum_in_rank_order(&slices, &mut piece);
        // All-gather the summed slices.
        let mut slots = split(buf, parts.iter().map(|p| p.len()));
        slots[me].copy_from_slice(&piece);
        self.exchange(what, &piece, slots, deadline);
    }

    /// Sends `mine` to every other rank and receives rank `i`'s into `slots[i]` (this rank's slot
    /// is left alone), all polled against `deadline`.
    fn exchange<T: Equivalence>(
        &self,
        what: &str,
        mine: &[T],
        slots: Vec<&mut [T]>,
        deadline: Instant,
    ) {
        let me = self.rank;
        mpi::request::scope(|sc| {
            let reqs: Vec<_> = slots
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i != me)
                .map(|(i, slot)| {
                    let from = self.world.process_at_rank(i as i32);
                    (
                        i,
                        from.immediate_receive_into_with_tag(sc, slot, GATHER_TAG),
                    )
                })
                .collect();
            let sends: Vec<_> = (0..self.size)
                .filter(|&j| j != me)
                .map(|j| {
                    let to = self.world.process_at_rank(j as i32);
                    (j, to.immediate_send_with_tag(sc, mine, GATHER_TAG))
                })
                .collect();
            self.wait_until(reqs, deadline, what);
            self.wait_until(sends, deadline, what);
        });
    }

    /// Polls the requests (each with the rank at its other end) until all complete, spinning
    /// briefly and then sleeping a little between polls (the library makes progress in the
    /// polls); past `deadline`, ends the job naming the ranks that did not answer in `what`.
    fn wait_until<'a, D: ?Sized, S: mpi::request::Scope<'a>>(
        &self,
        mut pending: Vec<(usize, mpi::request::Request<'a, D, S>)>,
        deadline: Instant,
        what: &str,
    ) {
        let began = Instant::now();
        while !pending.is_empty() {
            let mut still = Vec::with_capacity(pending.len());
            for (i, r) in pending {
                if let Err(r) = r.test() {
                    still.push((i, r));
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let who: Vec<String> = pending.iter().map(|(i, _)| i.to_string()).collect();
                self.abort(
                    &format!(
                        "{what}: no answer from rank(s) {} within {:.0} s (stopped, stuck or far \
                         slower; --rank-timeout-s sets the wait); ending the job",
                        who.join(", "),
                        self.timeout.as_secs_f64()
                    ),
                    70,
                );
            }
            if began.elapsed() < Duration::from_millis(20) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

impl Ranks for MpiRanks {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn roll_call(&self, step: u64, stop: bool) -> bool {
        if self.size == 1 {
            return stop;
        }
        let deadline = Instant::now() + self.timeout;
        if self.rank == 0 {
            let mut got = vec![[0u64; 2]; self.size - 1];
            mpi::request::scope(|sc| {
                let reqs: Vec<_> = got
                    .iter_mut()
                    .enumerate()
                    .map(|(i, m)| {
                        let from = self.world.process_at_rank((i + 1) as i32);
                        (
                            i + 1,
                            from.immediate_receive_into_with_tag(sc, m, ROLL_CALL_TAG),
                        )
                    })
                    .collect();
                self.wait_until(
                    reqs,
                    deadline,
                    &format!("the roll call of step {}", step + 1),
                );
            });
            if let Some((i, m)) = got.iter().enumerate().find(|(_, m)| m[0] != step) {
                self.abort(
                    &format!(
                        "rank {} is at step {} but rank 0 at step {step}: the ranks are not \
                         running the same run (same flags and data on every rank?)",
                        i + 1,
                        m[0]
                    ),
                    70,
                );
            }
            let decision = stop || got.iter().any(|m| m[1] != 0);
            let answer = [step, decision as u64];
            for r in 1..self.size {
                self.world
                    .process_at_rank(r as i32)
                    .send_with_tag(&answer, ROLL_CALL_TAG);
            }
            decision
        } else {
            self.world
                .process_at_rank(0)
                .send_with_tag(&[step, stop as u64], ROLL_CALL_TAG);
            let mut answer = [0u64; 2];
            mpi::request::scope(|sc| {
                let req = self
                    .world
                    .process_at_rank(0)
                    .immediate_receive_into_with_tag(sc, &mut answer, ROLL_CALL_TAG);
                self.wait_until(
                    vec![(0, req)],
                    deadline,
                    &format!("the roll call of step {}", step + 1),
                );
            });
            answer[1] != 0
        }
    }

    fn sum_f32(&self, what: &str, buf: &mut [f32]) {
        self.sum(what, buf)
    }

    fn sum_f64(&self, what: &str, buf: &mut [f64]) {
        self.sum(what, buf)
    }

    fn gather_u64(&self, what: &str, x: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size];
        all[self.rank] = x;
        let deadline = Instant::now() + self.timeout;
        self.exchange(what, &[x], all.chunks_mut(1).collect(), deadline);
        all
    }
}

/// `buf` cut into consecutive pieces of the given lengths.
fn split<T>(mut buf: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut out = Vec::new();
    for len in lens {
        let (head, tail) = std::mem::take(&mut buf).split_at_mut(len);
        out.push(head);
        buf = tail;
    }
    out
}
