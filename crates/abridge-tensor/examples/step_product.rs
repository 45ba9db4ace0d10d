//! Times the products of a recurrent layer's training step (benchmark shapes, one shard of 16 rows
//! per thread): the per-step product on `gemm` vs `PackedMatrix`, and the large weight-gradient GEMMs.
//! `cargo run --release -p abridge-tensor --example step_product`
use abridge_tensor::{gemm, MatMut, MatRef, PackedMatrix, Par};
use std::time::Instant;

fn main() {
    big();
    for &(m, k, n) in &[
        (16usize, 256usize, 1024usize),
        (16, 1024, 256),
        (16, 128, 1024),
        (3200, 128, 1024),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.01).collect(); // [k, n] row-major
        let mut c = vec![0f32; m * n];
        let reps = 2000;
        let flop = 2.0 * (m * k * n) as f64 * reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            gemm(
                MatMut::new(&mut c, m, n),
                MatRef::new(&a, m, k),
                MatRef::new(&w, k, n),
                true,
                Par::Seq,
            );
        }
        let g1 = flop / t.elapsed().as_secs_f64() / 1e9;
        let packed = PackedMatrix::new(MatRef::new(&w, k, n));
        let t = Instant::now();
        for _ in 0..reps {
            packed.mul_acc(&a, m, &mut c);
        }
        let g2 = flop / t.elapsed().as_secs_f64() / 1e9;
        println!("[{m},{k}]x[{k},{n}]: gemm {g1:.1} GFLOP/s, packed {g2:.1} GFLOP/s");
    }
}

fn big() {
    // (name, m, k, n, a transposed?)
    let rows = 6400;
    let da: Vec<f32> = (0..rows * 1024).map(|i| (i % 7) as f32 * 0.1).collect();
    let x: Vec<f32> = (0..rows * 384).map(|i| (i % 5) as f32 * 0.1).collect();
    let w: Vec<f32> = (0..1024 * 128).map(|i| (i % 3) as f32 * 0.1).collect();
    let mut c = vec![0f32; rows * 384];
    let time = |name: &str, flop: f64, f: &mut dyn FnMut()| {
        f();
        let t = Instant::now();
        for _ in 0..5 {
            f();
        }
        println!(
            "{name}: {:.1} GFLOP/s",
            flop * 5.0 / t.elapsed().as_secs_f64() / 1e9
        );
    };
    for &(i, par) in &[
        (128usize, Par::Seq),
        (256, Par::Seq),
        (384, Par::Seq),
        (128, Par::Threads(2)),
        (256, Par::Threads(2)),
    ] {
        let r = if matches!(par, Par::Seq) {
            rows / 2
        } else {
            rows
        };
        time(
            &format!("dW [1024,{i}] k={r} {par:?}"),
            2.0 * (1024 * i * r) as f64,
            &mut || {
                gemm(
                    MatMut::new(&mut c[..1024 * i], 1024, i),
                    MatRef::new(&da[..r * 1024], r, 1024).t(),
                    MatRef::new(&x[..r * i], r, i),
                    true,
                    par,
                )
            },
        );
    }
    for i in [128usize, 256] {
        let r = rows / 2;
        time(
            &format!("dW^T [{i},1024] k={r} Seq"),
            2.0 * (1024 * i * r) as f64,
            &mut || {
                gemm(
                    MatMut::new(&mut c[..1024 * i], i, 1024),
                    MatRef::new(&x[..r * i], r, i).t(),
                    MatRef::new(&da[..r * 1024], r, 1024),
                    true,
                    Par::Seq,
                )
            },
        );
    }
    time(
        "dx [3200,128] k=1024",
        2.0 * (3200 * 128 * 1024) as f64,
        &mut || {
            gemm(
                MatMut::new(&mut c[..3200 * 128], 3200, 128),
                MatRef::new(&da[..3200 * 1024], 3200, 1024),
                MatRef::new(&w, 1024, 128),
                true,
                Par::Seq,
            )
        },
    );
}
