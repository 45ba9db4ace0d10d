//! Fast `f32` activations for the recurrent cells, with `libm` as their slow reference.
//!
//! All three are branch-free (clamps and bit tricks only) so that loops calling them auto-vectorise.
//!
//! * `exp_f32`: Cody–Waite range reduction `x = n·ln2 + r`, `|r| ≤ ln2/2`, and the degree-7 Cephes
//!   `expf` polynomial for `e^r`; `2^n` is assembled in the exponent bits. Max relative error ≈ 2 ulp
//!   on `[-87, 88]`; inputs are clamped to that range (so `exp(-1000) = 2^-126·…`, not 0).
//! * `sigmoid_f32(x) = 1 / (1 + exp(-x))`: no cancellation, so the relative error stays a few ulp.
//! * `tanh_f32`: the odd/even rational minimax approximation `p(x)/q(x)` (degree 13/6) used by Eigen,
//!   on `x` clamped to `[-9, 9]` (beyond which `tanh` rounds to ±1 in `f32`), result clamped to
//!   `[-1, 1]`. Max error ≈ 2 ulp.
//!
//! Tests compare each against `libm` (`f32::exp`, `f64::tanh`) over a dense grid.

// The constants are the published coefficients, kept digit for digit; `max`/`min` rather than
// `clamp` keeps the code free of `clamp`'s argument assertion.
#![allow(clippy::excessive_precision, clippy::manual_clamp)]

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    5.000_000_1e-1,
];

/// `e^x` for `f32`, ≈2 ulp, branch-free.
///
/// `n = round(x·log2 e)` is taken with the "magic number" trick (adding `1.5·2^23` leaves `n` in the
/// low mantissa bits), which, unlike `floor` and a float-to-int cast, vectorises on every x86 level.
#[inline(always)]
pub fn exp_f32(x0: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    let x = x0.max(-87.3).min(88.3);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = EXP_P[0];
    p = p * r + EXP_P[1];
    p = p * r + EXP_P[2];
    p = p * r + EXP_P[3];
    p = p * r + EXP_P[4];
    p = p * r + EXP_P[5];
    let er = p * r * r + r + 1.0;
    // The low bits of `t` hold `n` (two's complement); `(n + 127) << 23` is 2^n.
    let scale = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
    // `max`/`min` would turn a NaN into a bound; keep it a NaN so that divergence stays visible.
    let r = er * scale;
    if x0.is_nan() {
        x0
    } else {
        r
    }
}

/// Logistic sigmoid `1 / (1 + e^-x)` for `f32`.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `tanh_f32`'s numerator coefficients (highest power first), for vector versions elsewhere.
pub const TANH_ALPHA: [f32; 7] = [
    -2.760_768_5e-16,
    2.000_187_9e-13,
    -8.604_671_5e-11,
    5.122_297e-8,
    1.485_722_4e-5,
    6.372_619_3e-4,
    4.893_524_6e-3,
];
/// `tanh_f32`'s denominator coefficients (highest power first).
pub const TANH_BETA: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];

/// Hyperbolic tangent for `f32`, rational approximation, ≈2 ulp.
#[inline(always)]
pub fn tanh_f32(x0: f32) -> f32 {
    let x = x0.max(-9.0).min(9.0);
    let x2 = x * x;
    let mut p = TANH_ALPHA[0];
    for &a in &TANH_ALPHA[1..] {
        p = p * x2 + a;
    }
    let p = p * x;
    let mut q = TANH_BETA[0];
    for &b in &TANH_BETA[1..] {
        q = q * x2 + b;
    }
    let r = (p / q).max(-1.0).min(1.0);
    if x0.is_nan() {
        x0
    } else {
        r
    }
}

/// Sixteen-lane AVX-512 versions for kernels written with intrinsics.
#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use super::{TANH_ALPHA, TANH_BETA};
    use std::arch::x86_64::*;

    /// [`super::tanh_f32`] on sixteen lanes: the same rational approximation, evaluated with FMAs,
    /// and the division done as a refined reciprocal (`rcp14`, a Newton step, a residual
    /// correction) — the quotient within an ulp of the divided one. NaN lanes stay NaN.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn tanh(x0: __m512) -> __m512 {
        // MINPS/MAXPS return their second operand when either is NaN: keep `x0` second.
        let x = _mm512_max_ps(_mm512_set1_ps(-9.0), _mm512_min_ps(_mm512_set1_ps(9.0), x0));
        let x2 = _mm512_mul_ps(x, x);
        let mut p = _mm512_set1_ps(TANH_ALPHA[0]);
        for &a in &TANH_ALPHA[1..] {
            p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(a));
        }
        let p = _mm512_mul_ps(p, x);
        let mut q = _mm512_set1_ps(TANH_BETA[0]);
        for &b in &TANH_BETA[1..] {
            q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(b));
        }
        let r = _mm512_rcp14_ps(q);
        let r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0)));
        let t = _mm512_mul_ps(p, r);
        let t = _mm512_fmadd_ps(_mm512_fnmadd_ps(q, t, p), r, t);
        _mm512_max_ps(_mm512_set1_ps(-1.0), _mm512_min_ps(_mm512_set1_ps(1.0), t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> f32 {
        ((a - b).abs() / b.abs().max(f32::MIN_POSITIVE)) / f32::EPSILON
    }

    fn grid() -> impl Iterator<Item = f32> {
        (-200_000..=200_000)
            .map(|i| i as f32 * 1e-4)
            .chain([-80.0, -30.0, 30.0, 80.0, 1e-30, -1e-30, 0.0])
    }

    #[test]
    fn exp_matches_libm_within_3_ulp() {
        let worst = grid()
            .map(|x| ulps(exp_f32(x), (x as f64).exp() as f32))
            .fold(0.0, f32::max);
        assert!(worst <= 3.0, "exp worst error {worst} ulp");
    }

    #[test]
    fn sigmoid_matches_reference_within_4_ulp() {
        let worst = grid()
            .map(|x| ulps(sigmoid_f32(x), (1.0 / (1.0 + (-(x as f64)).exp())) as f32))
            .fold(0.0, f32::max);
        assert!(worst <= 4.0, "sigmoid worst error {worst} ulp");
    }

    #[test]
    fn tanh_matches_libm_within_4_ulp() {
        let worst = grid()
            .map(|x| ulps(tanh_f32(x), (x as f64).tanh() as f32))
            .fold(0.0, f32::max);
        assert!(worst <= 4.0, "tanh worst error {worst} ulp");
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(100.0), 1.0);
        assert_eq!(tanh_f32(-100.0), -1.0);
    }

    #[test]
    fn vector_tanh_matches_libm_and_the_scalar_version() {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx512() {
            // (Below ~1e-35 the intermediate `p·x` is subnormal and precision is absolute, as in the
            // scalar version: left out.)
            let xs: Vec<f32> = grid().chain([f32::NAN, 9.5, -9.5, 1e-35, -1e-35]).collect();
            let mut worst = 0.0f32;
            for c in xs.chunks(16) {
                let mut lanes = [0f32; 16];
                lanes[..c.len()].copy_from_slice(c);
                let mut out = [0f32; 16];
                // SAFETY: AVX-512F checked above; the pointers are to 16-float arrays.
                unsafe {
                    use std::arch::x86_64::*;
                    let v = avx512::tanh(_mm512_loadu_ps(lanes.as_ptr()));
                    _mm512_storeu_ps(out.as_mut_ptr(), v);
                }
                for (&x, &y) in c.iter().zip(&out) {
                    if x.is_nan() {
                        assert!(y.is_nan(), "tanh(NaN) = {y}");
                        continue;
                    }
                    worst = worst.max(ulps(y, (x as f64).tanh() as f32));
                    assert!(
                        ulps(y, tanh_f32(x)) <= 4.0,
                        "x = {x}: {y} vs scalar {}",
                        tanh_f32(x)
                    );
                }
            }
            assert!(worst <= 4.0, "vector tanh worst error {worst} ulp");
        }
    }

    #[test]
    fn nan_stays_nan() {
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(sigmoid_f32(f32::NAN).is_nan());
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn extremes_are_finite_and_saturate() {
        for x in [f32::MAX, -f32::MAX, 1e10, -1e10] {
            assert!(exp_f32(x).is_finite());
            let s = sigmoid_f32(x);
            assert!((0.0..=1.0).contains(&s), "sigmoid({x}) = {s}");
        }
        assert_eq!(sigmoid_f32(1e10), 1.0);
        assert!(sigmoid_f32(-1e10) < 1e-37);
    }
}
