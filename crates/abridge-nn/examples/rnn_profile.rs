//! Runs the benchmark shape's forward (and optionally backward) in a loop, for `perf`.
use abridge_nn::{CellKind, Rnn, RnnCache, RnnConfig, RnnGradOut, RnnInput, RnnParams};
use abridge_tensor::Rng;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cell = if args.get(1).map(|s| s.as_str()) == Some("gru") {
        CellKind::Gru
    } else {
        CellKind::Lstm
    };
    let bwd = args.get(2).map(|s| s.as_str()) == Some("bwd");
    let threads: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
    // Optional: batch (default 32, the benchmark's) and `bi` for a bidirectional layer (the
    // summarizer's encoder; batch 1 is one document being summarized).
    let b: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(32);
    let bidir = args.get(5).map(|s| s.as_str()) == Some("bi");
    let (t, i, h) = (200, 128, 256);
    let mut rng = Rng::new(1);
    let cfg = RnnConfig::new(cell, i, h).with_bidirectional(bidir);
    let rnn = Rnn::new(RnnParams::<f32>::init_uniform(cfg, &mut rng));
    let mut grads = RnnParams::zeros(cfg);
    let x: Vec<f32> = (0..t * b * i)
        .map(|_| rng.uniform(-1.0, 1.0) as f32)
        .collect();
    let gy: Vec<f32> = (0..t * b * cfg.output_size())
        .map(|_| rng.uniform(-1.0, 1.0) as f32)
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut cache = RnnCache::new();
        let mut ms = vec![];
        for _ in 0..30 {
            let t0 = Instant::now();
            rnn.forward(&RnnInput::new(&x, t, b), &mut cache).unwrap();
            if bwd {
                let g = RnnGradOut {
                    d_output: Some(&gy),
                    ..Default::default()
                };
                rnn.backward(&mut cache, &g, &mut grads).unwrap();
            }
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("median {:.2} ms, min {:.2}", ms[ms.len() / 2], ms[0]);
    });
}
