//! Normalisation as tape ops: batch normalisation (Ioffe and Szegedy 2015) and local response
//! normalisation (Krizhevsky et al. 2012).
//!
//! BatchNorm in training normalises with the batch's mean and biased variance and returns the
//! updated running statistics (`running = (1 - momentum) * running + momentum * batch`, with the
//! unbiased variance, as PyTorch); in evaluation it uses the running statistics, so the op is an
//! affine map per channel.
//!
//! | file | what |
//! |---|---|
//! | `batch.rs` | batch normalisation: the functional form, the tape op in evaluation and training, and BatchNorm with its ReLU / ReLU6 as one op |
//! | `lrn.rs` | local response normalisation (AlexNet) |

mod batch;
#[cfg(test)]
mod clamped_tests;
mod lrn;
#[cfg(test)]
mod tests;

pub use batch::{batch_norm, BatchNormOptions};
pub use convgrad_kernels::norm::Clamp;
pub use lrn::{local_response_norm, LrnOptions};

use convgrad_kernels::pool::NchwShape;

use crate::error::{fmt_shape, Error, Result};

/// `[N, C, H, W]`, or `[N, C]` seen as `[N, C, 1, 1]`.
fn channels_shape(op: &str, shape: &[usize]) -> Result<NchwShape> {
    match *shape {
        [n, c, h, w] => Ok(NchwShape::new(n, c, (h, w))),
        [n, c] => Ok(NchwShape::new(n, c, (1, 1))),
        _ => Err(Error::shape(
            op,
            format!("expects [N, C, H, W] or [N, C], got {}", fmt_shape(shape)),
        )),
    }
}
