//! Times the vocabulary projection of a decoding step, `[m, 256]·Wᵀ` with `W [20000, 256]`.
use abridge_tensor::{gemm, MatMut, MatRef, PackedMatrix, Par};
use std::time::Instant;

fn main() {
    let (k, n) = (256usize, 20000usize);
    let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.01).collect(); // [n, k]
    let mut wt = vec![0f32; k * n];
    for j in 0..n {
        for p in 0..k {
            wt[p * n + j] = w[j * k + p];
        }
    }
    let packed = PackedMatrix::new(MatRef::new(&w, n, k).t());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for m in [4usize, 16, 32] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let reps = 20;
        let flop = 2.0 * (m * k * n) as f64 * reps as f64;
        let mut run = |name: &str, f: &mut dyn FnMut(&mut [f32])| {
            f(&mut c);
            let t = Instant::now();
            for _ in 0..reps {
                f(&mut c);
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "m={m} {name}: {:.2} ms, {:.1} GFLOP/s",
                s * 1e3 / reps as f64,
                flop / s / 1e9
            );
        };
        pool.install(|| {
            run("gemm W^T view, 2 thr", &mut |c| {
                gemm(
                    MatMut::new(c, m, n),
                    MatRef::new(&a, m, k),
                    MatRef::new(&w, n, k).t(),
                    false,
                    Par::Threads(2),
                )
            });
            run("gemm transposed copy, 2 thr", &mut |c| {
                gemm(
                    MatMut::new(c, m, n),
                    MatRef::new(&a, m, k),
                    MatRef::new(&wt, k, n),
                    false,
                    Par::Threads(2),
                )
            });
            run("packed, 1 thr", &mut |c| {
                c.iter_mut().for_each(|v| *v = 0.0);
                packed.mul_acc(&a, m, c)
            });
        });
    }
}
