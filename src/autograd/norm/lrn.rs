//! Local response normalisation across channels (Krizhevsky et al. 2012, AlexNet).

use convgrad_kernels::norm::{self as kernels, LrnGeometry};

use super::channels_shape;
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::Tensor;

/// Size, `alpha`, `beta` and `k` of a local response normalisation across channels:
/// `b_c = a_c / (k + alpha / size * sum of a^2 over the size channels around c)^beta`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnOptions {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

impl LrnOptions {
    /// PyTorch's defaults for a window of `size` channels: alpha `1e-4`, beta `0.75`, k `1`.
    pub fn new(size: usize) -> Self {
        LrnOptions {
            size,
            alpha: 1e-4,
            beta: 0.75,
            k: 1.0,
        }
    }
}

/// Local response normalisation across channels, as `torch.nn.functional.local_response_norm`.
pub fn local_response_norm(x: &Tensor, options: LrnOptions) -> Result<Tensor> {
    let g = lrn_geometry(x.shape(), options)?;
    let mut out = vec![0.0; x.numel()];
    kernels::lrn_forward(&g, x.data(), &mut out)
        .map_err(|e| Error::shape("local_response_norm", e.to_string()))?;
    Ok(Tensor::from_parts(out, x.shape()))
}

fn lrn_geometry(shape: &[usize], o: LrnOptions) -> Result<LrnGeometry> {
    let s = channels_shape("local_response_norm", shape)?;
    if o.size == 0 {
        return Err(Error::invalid(
            "local_response_norm",
            "the window must hold at least one channel",
        ));
    }
    Ok(LrnGeometry {
        alpha: o.alpha,
        beta: o.beta,
        k: o.k,
        ..LrnGeometry::new(s, o.size)
    })
}

impl Tape {
    /// Local response normalisation across channels.
    pub fn local_response_norm(&mut self, x: Var, options: LrnOptions) -> Result<Var> {
        let x_value = self.get(x)?;
        let y = local_response_norm(&x_value, options)?;
        let g = lrn_geometry(x_value.shape(), options)?;
        Ok(
            self.record("local_response_norm", &[x], y, move |grad, sink| {
                let mut dx = vec![0.0; x_value.numel()];
                kernels::lrn_backward(&g, x_value.data(), grad.data(), &mut dx)
                    .expect("checked by forward");
                sink.accumulate(0, Tensor::from_parts(dx, x_value.shape()));
            }),
        )
    }
}
