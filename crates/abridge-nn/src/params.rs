//! Parameters of a recurrent stack, under PyTorch's names and in PyTorch's layout.
//!
//! For layer `k` and direction `d` (suffix `""` forward, `"_reverse"` backward):
//!
//! | name | shape | rows |
//! |---|---|---|
//! | `weight_ih_l{k}{sfx}` | `[G·H, I_k]` | gate blocks in order i, f, g, o (LSTM) or r, z, n (GRU) |
//! | `weight_hh_l{k}{sfx}` | `[G·H, H]` | same |
//! | `bias_ih_l{k}{sfx}`, `bias_hh_l{k}{sfx}` | `[G·H]` | same |
//!
//! where `I_0 = I` and `I_k = D·H` above. The same struct holds gradients.

use abridge_tensor::{Float, Rng};

use crate::RnnConfig;

/// One layer and direction.
#[derive(Clone, Debug, PartialEq)]
pub struct DirParams<T> {
    /// `[G·H, I_k]`
    pub w_ih: Vec<T>,
    /// `[G·H, H]`
    pub w_hh: Vec<T>,
    /// `[G·H]`
    pub b_ih: Vec<T>,
    /// `[G·H]`
    pub b_hh: Vec<T>,
}

impl<T: Float> DirParams<T> {
    pub fn zeros(gates: usize, input: usize, hidden: usize) -> Self {
        let gh = gates * hidden;
        Self {
            w_ih: vec![T::ZERO; gh * input],
            w_hh: vec![T::ZERO; gh * hidden],
            b_ih: vec![T::ZERO; gh],
            b_hh: vec![T::ZERO; gh],
        }
    }

    fn buffers(&self) -> [&Vec<T>; 4] {
        [&self.w_ih, &self.w_hh, &self.b_ih, &self.b_hh]
    }
    fn buffers_mut(&mut self) -> [&mut Vec<T>; 4] {
        [
            &mut self.w_ih,
            &mut self.w_hh,
            &mut self.b_ih,
            &mut self.b_hh,
        ]
    }
}

/// All parameters (or gradients) of a stack; `dirs[k·D + d]` is layer `k`, direction `d`.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnParams<T> {
    pub config: RnnConfig,
    pub dirs: Vec<DirParams<T>>,
}

/// A named parameter tensor: PyTorch name, shape, values.
pub struct NamedTensor<'a, T> {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: &'a [T],
}

/// A named mutable parameter tensor.
pub struct NamedTensorMut<'a, T> {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: &'a mut [T],
}

impl<T: Float> RnnParams<T> {
    /// All zeros (the starting point of a gradient accumulator).
    pub fn zeros(config: RnnConfig) -> Self {
        let g = config.cell.gates();
        let dirs = (0..config.num_layers * config.directions())
            .map(|i| {
                DirParams::zeros(
                    g,
                    config.layer_input_size(i / config.directions()),
                    config.hidden_size,
                )
            })
            .collect();
        Self { config, dirs }
    }

    /// PyTorch's initialisation: every entry uniform in `[-1/√H, 1/√H)`.
    pub fn init_uniform(config: RnnConfig, rng: &mut Rng) -> Self {
        let mut p = Self::zeros(config);
        let k = 1.0 / (config.hidden_size as f64).sqrt();
        for t in p.tensors_mut() {
            t.data
                .iter_mut()
                .for_each(|v| *v = T::from_f64(rng.uniform(-k, k)));
        }
        p
    }

    /// Parameter name suffix for a direction index (`""` or `"_reverse"`).
    pub fn suffix(dir: usize) -> &'static str {
        if dir == 0 {
            ""
        } else {
            "_reverse"
        }
    }

    fn names_and_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.config;
        let (gh, h, d) = (
            c.cell.gates() * c.hidden_size,
            c.hidden_size,
            c.directions(),
        );
        let mut out = Vec::with_capacity(self.dirs.len() * 4);
        for (i, _) in self.dirs.iter().enumerate() {
            let (k, sfx) = (i / d, Self::suffix(i % d));
            out.push((
                format!("weight_ih_l{k}{sfx}"),
                vec![gh, c.layer_input_size(k)],
            ));
            out.push((format!("weight_hh_l{k}{sfx}"), vec![gh, h]));
            out.push((format!("bias_ih_l{k}{sfx}"), vec![gh]));
            out.push((format!("bias_hh_l{k}{sfx}"), vec![gh]));
        }
        out
    }

    /// Every tensor under its PyTorch name, in `state_dict` order.
    pub fn tensors(&self) -> Vec<NamedTensor<'_, T>> {
        let bufs = self.dirs.iter().flat_map(|p| p.buffers());
        self.names_and_shapes()
            .into_iter()
            .zip(bufs)
            .map(|((name, shape), data)| NamedTensor { name, shape, data })
            .collect()
    }

    /// Every tensor under its PyTorch name, mutable, in `state_dict` order.
    pub fn tensors_mut(&mut self) -> Vec<NamedTensorMut<'_, T>> {
        let names = self.names_and_shapes();
        let bufs = self.dirs.iter_mut().flat_map(|p| p.buffers_mut());
        names
            .into_iter()
            .zip(bufs)
            .map(|((name, shape), data)| NamedTensorMut { name, shape, data })
            .collect()
    }

    /// Sets every entry to zero (keeps allocations).
    pub fn fill_zero(&mut self) {
        for t in self.tensors_mut() {
            t.data.iter_mut().for_each(|v| *v = T::ZERO);
        }
    }

    /// `self += other`, element-wise (for reducing per-thread gradients).
    pub fn add_assign(&mut self, other: &Self) {
        for (a, b) in self.tensors_mut().into_iter().zip(other.tensors()) {
            a.data.iter_mut().zip(b.data).for_each(|(x, y)| *x += *y);
        }
    }

    /// Number of scalar parameters.
    pub fn len(&self) -> usize {
        self.tensors().iter().map(|t| t.data.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CellKind;

    #[test]
    fn names_and_shapes_follow_pytorch() {
        let c = RnnConfig::new(CellKind::Lstm, 3, 5)
            .with_layers(2)
            .with_bidirectional(true);
        let p = RnnParams::<f32>::zeros(c);
        let got: Vec<(String, Vec<usize>)> =
            p.tensors().into_iter().map(|t| (t.name, t.shape)).collect();
        assert_eq!(got.len(), 16);
        assert_eq!(got[0], ("weight_ih_l0".to_string(), vec![20, 3]));
        assert_eq!(got[4], ("weight_ih_l0_reverse".to_string(), vec![20, 3]));
        assert_eq!(got[8], ("weight_ih_l1".to_string(), vec![20, 10]));
        assert_eq!(got[15], ("bias_hh_l1_reverse".to_string(), vec![20]));
        for t in p.tensors() {
            assert_eq!(
                t.shape.iter().product::<usize>(),
                t.data.len(),
                "{}",
                t.name
            );
        }
        // nn.GRU(3, 5): 3·5·(3+5+2) parameters.
        assert_eq!(
            RnnParams::<f32>::zeros(RnnConfig::new(CellKind::Gru, 3, 5)).len(),
            15 * 10
        );
    }

    #[test]
    fn init_is_bounded_and_seeded() {
        let c = RnnConfig::new(CellKind::Gru, 4, 16);
        let a = RnnParams::<f64>::init_uniform(c, &mut Rng::new(1));
        let b = RnnParams::<f64>::init_uniform(c, &mut Rng::new(1));
        assert_eq!(a, b);
        assert!(a
            .tensors()
            .iter()
            .all(|t| t.data.iter().all(|v| v.abs() <= 0.25)));
    }
}
