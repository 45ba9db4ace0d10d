//! Greedy decoding at the anchor's shapes (batch 32, source 200, 30 tokens), in a loop, for `perf`.
use abridge_model::{ModelConfig, Params, Sources};
use abridge_tensor::Rng;
use std::time::Instant;

fn main() {
    // The anchor's shapes: the defaults (emb 128, hidden 256, attention 256, LSTM) at vocab 20k,
    // no pointer.
    let cfg = ModelConfig {
        vocab: 20000,
        pointer: false,
        ..Default::default()
    };
    let mut rng = Rng::new(0);
    let params = Params::<f32>::init(&cfg, &mut rng);
    let (b, s) = (32, 200);
    // Tokens to decode (default 30, the anchor's; 1 shows the encoder's share).
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(30);
    let src: Vec<u32> = (0..s * b).map(|_| 4 + rng.below(19996) as u32).collect();
    let lens = vec![s; b];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let mut ms = vec![];
        let mut fw = abridge_model::Forward::new(); // kept across calls, as `abridge bench decode` does
        for _ in 0..8 {
            let t0 = Instant::now();
            let srcs = Sources {
                batch: b,
                src_len: s,
                src: &src,
                src_ext: &src,
                src_lengths: &lens,
            };
            params.greedy_with(&cfg, &srcs, steps, &mut fw).unwrap();
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("greedy b32: median {:.1} ms", ms[ms.len() / 2]);
    });
}
