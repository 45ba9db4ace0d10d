//! `y = x Wᵀ + b` over a batch, with its backward.
//!
//! Shapes: `x [B, in]`, `W [out, in]` (PyTorch's `nn.Linear` layout), `b [out]` (or none), `y [B, out]`.

use abridge_tensor::{gemm, Float, MatMut, MatRef, Par, Rng};

/// All threads of the current rayon pool (the GEMM crate keeps small products on one).
fn par() -> Par {
    Par::Threads(rayon::current_num_threads())
}

/// A fully connected layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<T> {
    pub n_in: usize,
    pub n_out: usize,
    /// `[out, in]`
    pub w: Vec<T>,
    /// `[out]`, or empty for no bias.
    pub b: Vec<T>,
}

impl<T: Float> Linear<T> {
    pub fn zeros(n_in: usize, n_out: usize, bias: bool) -> Self {
        Self {
            n_in,
            n_out,
            w: vec![T::ZERO; n_in * n_out],
            b: vec![T::ZERO; if bias { n_out } else { 0 }],
        }
    }

    /// PyTorch's default initialisation: uniform in `[-1/√in, 1/√in)`.
    pub fn init(n_in: usize, n_out: usize, bias: bool, rng: &mut Rng) -> Self {
        let mut l = Self::zeros(n_in, n_out, bias);
        let k = 1.0 / (n_in.max(1) as f64).sqrt();
        l.w.iter_mut()
            .chain(l.b.iter_mut())
            .for_each(|v| *v = T::from_f64(rng.uniform(-k, k)));
        l
    }

    /// `y = x Wᵀ + b` (`y` overwritten).
    pub fn forward(&self, x: &[T], batch: usize, y: &mut [T]) {
        self.forward_with(&self.w, x, batch, y);
    }

    /// [`Linear::forward`] with the weight `w [out, in]` taken from elsewhere (a tied weight).
    pub fn forward_with(&self, w: &[T], x: &[T], batch: usize, y: &mut [T]) {
        gemm(
            MatMut::new(y, batch, self.n_out),
            MatRef::new(x, batch, self.n_in),
            MatRef::new(w, self.n_out, self.n_in).t(),
            false,
            par(),
        );
        if !self.b.is_empty() {
            for row in y.chunks_exact_mut(self.n_out) {
                row.iter_mut().zip(&self.b).for_each(|(v, b)| *v += *b);
            }
        }
    }

    /// Adds `δW += δyᵀ x`, `δb += Σ δy` to `grad`, and `δx += δy W` to `dx` when given.
    pub fn backward(
        &self,
        x: &[T],
        dy: &[T],
        batch: usize,
        grad: &mut Linear<T>,
        dx: Option<&mut [T]>,
    ) {
        self.backward_with(&self.w, x, dy, batch, &mut grad.w, &mut grad.b, dx);
    }

    /// [`Linear::backward`] with the weight `w` and its gradient `dw` taken from elsewhere (a tied
    /// weight).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_with(
        &self,
        w: &[T],
        x: &[T],
        dy: &[T],
        batch: usize,
        dw: &mut [T],
        db: &mut [T],
        dx: Option<&mut [T]>,
    ) {
        gemm(
            MatMut::new(dw, self.n_out, self.n_in),
            MatRef::new(dy, batch, self.n_out).t(),
            MatRef::new(x, batch, self.n_in),
            true,
            par(),
        );
        if !self.b.is_empty() {
            for row in dy.chunks_exact(self.n_out) {
                db.iter_mut().zip(row).for_each(|(g, d)| *g += *d);
            }
        }
        if let Some(dx) = dx {
            gemm(
                MatMut::new(dx, batch, self.n_in),
                MatRef::new(dy, batch, self.n_out),
                MatRef::new(w, self.n_out, self.n_in),
                true,
                par(),
            );
        }
    }
}
