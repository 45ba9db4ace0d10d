//! Corpus-level aggregation, reproducing each reference scorer's resampling exactly.
//!
//! * rouge-score's `BootstrapAggregator`: numpy's legacy `RandomState` (MT19937 seeded with
//!   `init_genrand(seed)`, `randint` by masked rejection), `n_samples` resamples of the pairs per type,
//!   all types drawing from one stream in order; low/mid/high are `np.percentile` (linear) of the
//!   resample means at `(1−c)/2`, 50 and `(1+c)/2` percent. "mid" is a median, not the mean.
//! * ROUGE-1.5.5's `-t 0` average: resample `i` seeds Perl's `drand48` with `srand(i)` and draws
//!   `int(rand(N))` over the instance ids sorted *as strings*; the printed average is the mean of the
//!   1000 resample means (summed in ascending order), the interval `sorted[25]`, `sorted[974]`.

/// MT19937, as numpy's legacy `RandomState`.
pub struct Mt19937 {
    mt: [u32; 624],
    idx: usize,
}

impl Mt19937 {
    /// `np.random.seed(seed)` (`init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self { mt, idx: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % 624] & 0x7FFF_FFFF);
            let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                v ^= 0x9908_B0DF;
            }
            self.mt[i] = v;
        }
        self.idx = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.idx >= 624 {
            self.twist();
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C_5680;
        y ^= (y << 15) & 0xEFC6_0000;
        y ^ (y >> 18)
    }

    /// `RandomState.randint(0, n)` (legacy masked rejection), `1 ≤ n ≤ 2^32`.
    pub fn randint(&mut self, n: u64) -> usize {
        let rng = (n - 1) as u32;
        if rng == 0 {
            return 0;
        }
        let mut mask = rng;
        for s in [1, 2, 4, 8, 16] {
            mask |= mask >> s;
        }
        loop {
            let v = self.next_u32() & mask;
            if v <= rng {
                return v as usize;
            }
        }
    }
}

/// numpy's `_lerp`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// `np.percentile(values, q)` with the default linear method; `values` sorted ascending.
pub fn percentile_sorted(v: &[f64], q: f64) -> f64 {
    let n = v.len();
    let virt = (n as f64 - 1.0) * (q / 100.0);
    let lo = virt.floor();
    let gamma = virt - lo;
    let lo = (lo as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    lerp(v[lo], v[hi], gamma)
}

/// Low, mid and high of one type: each a (precision, recall, fmeasure) triple.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub low: [f64; 3],
    pub mid: [f64; 3],
    pub high: [f64; 3],
}

/// rouge-score's `BootstrapAggregator.aggregate()` after `np.random.seed(seed)`.
///
/// `rows_by_type[k]` holds one `[precision, recall, fmeasure]` per pair; types are resampled in
/// this order from one random stream. Panics if a type has no rows.
pub fn rouge_score_bootstrap(
    rows_by_type: &[Vec<[f64; 3]>],
    seed: u32,
    n_samples: usize,
    confidence: f64,
) -> Vec<Interval> {
    let mut mt = Mt19937::new(seed);
    let delta = (1.0 - confidence) / 2.0;
    let qs = [100.0 * delta, 50.0, 100.0 * (1.0 - delta)];
    rows_by_type
        .iter()
        .map(|rows| {
            let n = rows.len();
            assert!(n > 0, "bootstrap over zero pairs");
            let mut means = [
                Vec::with_capacity(n_samples),
                Vec::with_capacity(n_samples),
                Vec::with_capacity(n_samples),
            ];
            let mut idx = vec![0usize; n];
            for _ in 0..n_samples {
                idx.iter_mut().for_each(|i| *i = mt.randint(n as u64));
                for (k, m) in means.iter_mut().enumerate() {
                    let mut s = 0.0;
                    for &j in &idx {
                        s += rows[j][k];
                    }
                    m.push(s / n as f64);
                }
            }
            let mut out = [[0.0; 3]; 3];
            for (k, m) in means.iter_mut().enumerate() {
                m.sort_by(f64::total_cmp);
                for (qi, q) in qs.iter().enumerate() {
                    out[qi][k] = percentile_sorted(m, *q);
                }
            }
            Interval {
                low: out[0],
                mid: out[1],
                high: out[2],
            }
        })
        .collect()
}

/// Perl (≥ 5.20) `rand()`: `drand48` seeded by `srand(seed)`.
pub struct PerlDrand48 {
    x: u64,
}

impl PerlDrand48 {
    pub fn new(seed: u32) -> Self {
        Self {
            x: (0x330E + ((seed as u64) << 16)) & 0xFFFF_FFFF_FFFF,
        }
    }
    /// `rand(n)`.
    pub fn rand(&mut self, n: f64) -> f64 {
        self.x = (self.x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & 0xFFFF_FFFF_FFFF;
        n * (self.x as f64 / 281_474_976_710_656.0)
    }
}

/// ROUGE-1.5.5's printed corpus average and confidence interval of one measure.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PerlAverage {
    pub avg: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// ROUGE-1.5.5 `computeAverages` (`-t 0`, `-r resamples`, `-c conf`) over per-pair `[R, P, F]`
/// values (the printed 5-decimal ones); pair `i` (0-based) is instance `"{i+1}.A"`.
pub fn perl155_corpus(per_pair: &[[f64; 3]], resamples: usize, conf: f64) -> [PerlAverage; 3] {
    let n = per_pair.len();
    // Instance ids sorted as strings: "1.A" < "10.A" < "2.A".
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|i| format!("{}.A", i + 1));
    let mut samples = [
        Vec::with_capacity(resamples),
        Vec::with_capacity(resamples),
        Vec::with_capacity(resamples),
    ];
    for i in 0..resamples {
        let mut rng = PerlDrand48::new(i as u32);
        let mut acc = [0.0f64; 3];
        for draw in 0..n {
            let v = per_pair[order[rng.rand(n as f64) as usize]];
            for k in 0..3 {
                acc[k] = if draw == 0 { v[k] } else { acc[k] + v[k] };
            }
        }
        for k in 0..3 {
            samples[k].push(if n > 0 { acc[k] / n as f64 } else { 0.0 });
        }
    }
    let delta = resamples as f64 * ((100.0 - conf) / 2.0) / 100.0;
    let ci_ua = (resamples as f64 - delta - 1.0) as usize;
    let ci_la = delta as usize;
    let ci_r = resamples as f64 - delta - 1.0 - ci_ua as f64;
    let mut out = [PerlAverage {
        avg: 0.0,
        ci_low: 0.0,
        ci_high: 0.0,
    }; 3];
    for (k, arr) in samples.iter_mut().enumerate() {
        arr.sort_by(f64::total_cmp);
        let total: f64 = arr.iter().fold(0.0, |s, v| s + v);
        let at = |i: usize| arr.get(i).copied().unwrap_or(0.0);
        let avg = if arr.is_empty() {
            0.0
        } else {
            total / arr.len() as f64
        };
        out[k] = PerlAverage {
            avg: crate::rouge155::round5(avg),
            ci_low: crate::rouge155::round5(at(ci_la) + (at(ci_la + 1) - at(ci_la)) * ci_r),
            ci_high: crate::rouge155::round5(at(ci_ua) + (at(ci_ua + 1) - at(ci_ua)) * ci_r),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_first_output() {
        // The canonical MT19937 test value: init_genrand(5489) -> 3499211612.
        assert_eq!(Mt19937::new(5489).next_u32(), 3_499_211_612);
    }

    #[test]
    fn percentile_interpolates_linearly() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&v, 50.0), 2.5);
        assert_eq!(percentile_sorted(&v, 0.0), 1.0);
        assert_eq!(percentile_sorted(&v, 100.0), 4.0);
    }
}
