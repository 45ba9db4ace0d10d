//! [`Ranks`] over MPI (the `mpi` crate: Open MPI, MPICH, Intel MPI, ...).
//!
//! * Sums: a reduce-scatter by `MPI_Alltoallv` (rank `i` receives slice `i` of every rank's
//!   vector and adds the copies in rank order), then `MPI_Allgatherv` of the slices: each rank
//!   sends and receives `2·(N−1)/N` of the vector, as a ring all-reduce does, but the order of
//!   the additions is fixed by us, not by the library's choice of algorithm.
//! * The roll call: ranks `1..N` send `(step, stop)` to rank 0, which answers with the decision;
//!   both sides wait with a deadline (non-blocking receives, polled), so a rank that stopped
//!   answering is named: rank 0 names the ranks that did not arrive, the others name rank 0.
//! * Blocking collectives run under a watchdog thread: one that has not returned after the
//!   timeout (a peer stopped in the middle of it) prints what it was waiting for and ends this
//!   process, and the launcher ends the rest of the job.
//! * A rank that dies is the launcher's to see: `mpirun` ends the job and names the rank.
//!
//! On every failure the job ends with `MPI_Abort`; nothing has been written that a checkpoint
//! depends on (rank 0 writes checkpoints atomically between steps).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpi::datatype::{Equivalence, Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use super::{share, sum_in_rank_order, Ranks};

const ROLL_CALL_TAG: mpi::Tag = 0x5ab;

/// The process's MPI world, with a deadline for every wait on another rank.
pub struct MpiRanks {
    // Dropped last: finalises MPI.
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    timeout: Duration,
    watchdog: Arc<Watchdog>,
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
        let watchdog = Watchdog::start(rank, size, timeout);
        Some(Self {
            world,
            rank,
            size,
            timeout,
            watchdog,
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
        let n = self.size;
        if n == 1 {
            return;
        }
        if buf.len() > Count::MAX as usize {
            self.abort(
                &format!(
                    "{what}: {} values are more than one MPI message can carry",
                    buf.len()
                ),
                70,
            );
        }
        let parts: Vec<_> = (0..n).map(|r| share(buf.len(), r, n)).collect();
        let counts: Vec<Count> = parts.iter().map(|p| p.len() as Count).collect();
        let displs: Vec<Count> = parts.iter().map(|p| p.start as Count).collect();
        let mine = parts[self.rank].clone();
        let m = mine.len();
        let mut copies = vec![T::default(); n * m];
        let _armed = self.watchdog.arm(what);
        {
            let send = Partition::new(&*buf, counts.clone(), &displs[..]);
            let recv_displs: Vec<Count> = (0..n).map(|i| (i * m) as Count).collect();
            let mut recv =
                PartitionMut::new(&mut copies[..], vec![m as Count; n], &recv_displs[..]);
            self.world.all_to_all_varcount_into(&send, &mut recv);
        }
        let slices: Vec<&[T]> = copies.chunks(m.max(1)).take(n).collect();
        let mut piece = vec![T::default(); m];
        if m > 0 {
            sum_in_rank_order(&slices, &mut piece);
        }
        let mut all = PartitionMut::new(buf, counts, &displs[..]);
        self.world.all_gather_varcount_into(&piece[..], &mut all);
    }

    /// Polls `req` until it completes or the deadline passes (then `late()` names the culprit).
    fn wait_until<'a, D: ?Sized, S: mpi::request::Scope<'a>>(
        &self,
        reqs: Vec<mpi::request::Request<'a, D, S>>,
        deadline: Instant,
        late: impl Fn(&[usize]) -> String,
    ) {
        let mut pending: Vec<(usize, mpi::request::Request<'a, D, S>)> =
            reqs.into_iter().enumerate().collect();
        let mut pause = Duration::from_micros(20);
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
                let who: Vec<usize> = pending.iter().map(|(i, _)| *i).collect();
                self.abort(&late(&who), 70);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(2));
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
        let secs = self.timeout.as_secs_f64();
        if self.rank == 0 {
            let mut got = vec![[0u64; 2]; self.size - 1];
            mpi::request::scope(|sc| {
                let reqs: Vec<_> = got
                    .iter_mut()
                    .enumerate()
                    .map(|(i, m)| {
                        self.world
                            .process_at_rank((i + 1) as i32)
                            .immediate_receive_into_with_tag(sc, m, ROLL_CALL_TAG)
                    })
                    .collect();
                self.wait_until(reqs, deadline, |late| {
                    let names: Vec<String> = late.iter().map(|i| (i + 1).to_string()).collect();
                    format!(
                        "rank(s) {} did not reach step {} within {secs:.0} s (stopped, stuck or \
                         far slower; --rank-timeout-s sets the wait); ending the job",
                        names.join(", "),
                        step + 1
                    )
                });
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
                self.wait_until(vec![req], deadline, |_| {
                    format!(
                        "rank 0 did not answer at step {} within {secs:.0} s (stopped, stuck or \
                         far slower; --rank-timeout-s sets the wait); ending the job",
                        step + 1
                    )
                });
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
        let _armed = self.watchdog.arm(what);
        self.world.all_gather_into(&x, &mut all[..]);
        all
    }
}

/// A thread that ends the process when a blocking collective has not returned in time.
struct Watchdog {
    /// Milliseconds since `epoch` at which the armed wait expires; 0 when disarmed.
    expires_ms: AtomicU64,
    what: Mutex<String>,
    epoch: Instant,
    timeout: Duration,
}

impl Watchdog {
    fn start(rank: usize, size: usize, timeout: Duration) -> Arc<Self> {
        let w = Arc::new(Self {
            expires_ms: AtomicU64::new(0),
            what: Mutex::new(String::new()),
            epoch: Instant::now(),
            timeout,
        });
        let watch = Arc::clone(&w);
        std::thread::Builder::new()
            .name("abridge-rank-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(100));
                let at = watch.expires_ms.load(Ordering::Acquire);
                if at != 0 && watch.epoch.elapsed().as_millis() as u64 >= at {
                    let what = watch.what.lock().map(|s| s.clone()).unwrap_or_default();
                    eprintln!(
                        "error: rank {rank} of {size}: {what}: no answer from the other ranks in \
                         {:.0} s (a rank stopped or died; the launcher's message names it); \
                         ending the job",
                        watch.timeout.as_secs_f64()
                    );
                    // Not MPI_Abort: this thread may not call MPI while the main one is inside
                    // it. A rank that exits without finalising makes the launcher end the job.
                    std::process::exit(70);
                }
            })
            .expect("spawning the watchdog thread");
        w
    }

    /// Arms the watchdog for one wait; disarmed when the guard drops.
    fn arm(&self, what: &str) -> Armed<'_> {
        if let Ok(mut s) = self.what.lock() {
            s.clear();
            s.push_str(what);
        }
        let at = self.epoch.elapsed() + self.timeout;
        self.expires_ms
            .store((at.as_millis() as u64).max(1), Ordering::Release);
        Armed(self)
    }
}

struct Armed<'a>(&'a Watchdog);

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.0.expires_ms.store(0, Ordering::Release);
    }
}
