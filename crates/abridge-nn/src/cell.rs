//! Single-step cells, as `nn.LSTMCell` / `nn.GRUCell`: one time step for a batch, with backward.
//!
//! A cell is a one-layer, one-direction [`Rnn`] run for one step, so it shares the stack's kernels and
//! equations ([`crate::lstm`], [`crate::gru`]). Its parameters carry PyTorch's cell names
//! (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`).

use abridge_tensor::{Float, Rng};

use crate::{
    CellKind, DirParams, Rnn, RnnCache, RnnConfig, RnnError, RnnGradOut, RnnInput, RnnParams,
};

/// One recurrent cell.
#[derive(Clone, Debug)]
pub struct Cell<T> {
    rnn: Rnn<T>,
}

impl<T: Float> Cell<T> {
    /// A cell with PyTorch's initialisation, uniform in `[-1/√H, 1/√H)`.
    pub fn new(cell: CellKind, input_size: usize, hidden_size: usize, rng: &mut Rng) -> Self {
        let config = RnnConfig::new(cell, input_size, hidden_size);
        Self {
            rnn: Rnn::new(RnnParams::init_uniform(config, rng)),
        }
    }

    /// A cell from existing parameters (`[G·H, I]`, `[G·H, H]`, `[G·H]`, `[G·H]`).
    pub fn from_params(
        cell: CellKind,
        input_size: usize,
        hidden_size: usize,
        p: DirParams<T>,
    ) -> Self {
        let config = RnnConfig::new(cell, input_size, hidden_size);
        let zeros = RnnParams::<T>::zeros(config);
        assert_eq!(
            zeros.dirs[0].w_ih.len(),
            p.w_ih.len(),
            "weight_ih must be [G·H, I]"
        );
        assert_eq!(
            zeros.dirs[0].w_hh.len(),
            p.w_hh.len(),
            "weight_hh must be [G·H, H]"
        );
        Self {
            rnn: Rnn::new(RnnParams {
                config,
                dirs: vec![p],
            }),
        }
    }

    pub fn config(&self) -> &RnnConfig {
        self.rnn.config()
    }

    pub fn params(&self) -> &DirParams<T> {
        &self.rnn.params.dirs[0]
    }

    /// `W_hhᵀ` packed once for many [`Cell::step`] calls with the same weights (see
    /// [`RnnCache::set_packed`]); `None` where the packed kernel does not apply.
    pub fn pack_recurrent(&self) -> Option<crate::PackedRecurrent> {
        self.rnn.pack_recurrent()
    }

    pub fn params_mut(&mut self) -> &mut DirParams<T> {
        &mut self.rnn.params.dirs[0]
    }

    /// A zeroed gradient accumulator of this cell's shape.
    pub fn zero_grads(&self) -> RnnParams<T> {
        RnnParams::zeros(*self.config())
    }

    /// PyTorch's cell parameter name for a stack name (`weight_ih_l0` → `weight_ih`).
    pub fn cell_name(stack_name: &str) -> &str {
        stack_name.strip_suffix("_l0").unwrap_or(stack_name)
    }

    /// One step: `x [B, I]`, `h [B, H]`, `c [B, H]` (LSTM) → `cache.h_n()`, `cache.c_n()`.
    pub fn step(
        &self,
        x: &[T],
        batch: usize,
        h: Option<&[T]>,
        c: Option<&[T]>,
        cache: &mut RnnCache<T>,
    ) -> Result<(), RnnError> {
        let input = RnnInput {
            x,
            steps: 1,
            batch,
            lengths: None,
            h0: h,
            c0: c,
        };
        self.rnn.forward(&input, cache)
    }

    /// Backward of the last [`Cell::step`]: `δh'`, `δc'` in; parameter gradients added to `grads`;
    /// `δx`, `δh`, `δc` in `cache.dx()`, `cache.dh0()`, `cache.dc0()`.
    pub fn step_backward(
        &self,
        cache: &mut RnnCache<T>,
        d_h: Option<&[T]>,
        d_c: Option<&[T]>,
        grads: &mut RnnParams<T>,
    ) -> Result<(), RnnError> {
        let grad = RnnGradOut {
            d_output: None,
            d_h_n: d_h,
            d_c_n: d_c,
        };
        self.rnn.backward(cache, &grad, grads)
    }
}
