//! Run-time CPU dispatch for element-wise kernels.
//!
//! Kernels are written as plain loops over slices; [`simd_fn!`](crate::simd_fn) compiles them twice,
//! once for the baseline target and once with AVX2+FMA enabled, and picks at run time. The binary
//! therefore runs on any x86-64 (and any other architecture) while using 8-wide vectors where present.

/// True when the CPU has AVX-512 F/VL as well as AVX2 and FMA.
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2_fma()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the CPU has AVX2 and FMA (checked once, cached by `std`).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The loop nest of the few-row product kernels (`matmul`'s f32 GEMV, `HalfMatrix`): blocks of up
/// to four outputs `j..j+q`, and within each, blocks of up to four rows `i0..i0+mi` — the four
/// outputs' weights are loaded once and then serve every row block from L1. Calls `f(j, q, i0, mi)`.
#[inline(always)]
pub(crate) fn for_4x4_blocks(n: usize, m: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let mut j = 0;
    while j < n {
        let q = (n - j).min(4);
        let mut i0 = 0;
        while i0 < m {
            f(j, q, i0, (m - i0).min(4));
            i0 += 4;
        }
        j += q;
    }
}

/// Defines `fn name<T: Float>(args)` whose body is compiled for the baseline target and for
/// AVX2+FMA, dispatching at run time. The body must be safe code.
#[macro_export]
macro_rules! simd_fn {
    ($($item:tt)*) => { $crate::__simd_dispatch!(false; $($item)*); };
}

/// [`simd_fn!`] with an AVX-512 variant as well, for compute-bound kernels (transcendentals over
/// rows that stay in cache), where 16 lanes pay; memory-bound kernels gain nothing from it.
#[macro_export]
macro_rules! simd_fn_wide {
    ($($item:tt)*) => { $crate::__simd_dispatch!(true; $($item)*); };
}

/// The one implementation behind [`simd_fn!`] and [`simd_fn_wide!`] (`$wide` selects AVX-512).
#[doc(hidden)]
#[macro_export]
macro_rules! __simd_dispatch {
    ($wide:literal; $(#[$meta:meta])* $vis:vis fn $name:ident<$T:ident>($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name<$T: $crate::Float>($($arg: $ty),*) {
            #[inline(always)]
            fn inner<$T: $crate::Float>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn avx512<$T: $crate::Float>($($arg: $ty),*) {
                    inner::<$T>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<$T: $crate::Float>($($arg: $ty),*) {
                    inner::<$T>($($arg),*)
                }
                if $wide && $crate::simd::has_avx512() {
                    // SAFETY: the CPU supports the features `avx512` was compiled for.
                    return unsafe { avx512::<$T>($($arg),*) };
                }
                if $crate::simd::has_avx2_fma() {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2::<$T>($($arg),*) };
                }
            }
            inner::<$T>($($arg),*)
        }
    };
}

/// The four lane sums of `v` (a transposing add tree: half the instructions of four separate
/// reductions), for the few-row kernels' column blocks.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn hsum4(v: &[std::arch::x86_64::__m512; 4]) -> std::arch::x86_64::__m128 {
    use std::arch::x86_64::*;
    let half = |x: __m512| {
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x)));
        _mm256_add_ps(_mm512_castps512_ps256(x), hi)
    };
    let ab = _mm256_hadd_ps(half(v[0]), half(v[1]));
    let cd = _mm256_hadd_ps(half(v[2]), half(v[3]));
    // Lanes: [a b c d] of the low 128 bits of each input, then of the high 128 bits.
    let abcd = _mm256_hadd_ps(ab, cd);
    _mm_add_ps(
        _mm256_castps256_ps128(abcd),
        _mm256_extractf128_ps::<1>(abcd),
    )
}

/// A few-row kernel's block: rows `i0..i0 + M` (`M ≤ 4`; `i0` is the implementor's) times columns
/// `j..j + Q`, `Q` 4 or 1 (the ragged last columns), both constants so that the kernel's loops
/// unroll without branches. [`run_block`] picks the constants.
pub(crate) trait Block {
    /// # Safety
    /// As the kernel's (its CPU features, its bounds).
    unsafe fn block<const M: usize, const Q: usize>(&mut self, j: usize);
}

/// Runs `k`'s block of `mi` rows (1 to 4) over columns `j..j + q` (`q ≤ 4`): at once when `q` is
/// 4, else column by column.
///
/// # Safety
/// As [`Block::block`].
#[inline(always)]
pub(crate) unsafe fn run_block<K: Block>(k: &mut K, mi: usize, q: usize, j: usize) {
    // SAFETY: per the caller.
    unsafe {
        match (mi, q) {
            (4, 4) => k.block::<4, 4>(j),
            (3, 4) => k.block::<3, 4>(j),
            (2, 4) => k.block::<2, 4>(j),
            (1, 4) => k.block::<1, 4>(j),
            _ => {
                for j in j..j + q {
                    match mi {
                        4 => k.block::<4, 1>(j),
                        3 => k.block::<3, 1>(j),
                        2 => k.block::<2, 1>(j),
                        _ => k.block::<1, 1>(j),
                    }
                }
            }
        }
    }
}
