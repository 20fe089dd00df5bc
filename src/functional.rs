//! Operations on plain tensors, without a tape, in the style of `torch.nn.functional`.
//!
//! These are the forward computations the tape ops record; use them for inference, where no
//! gradient is needed and nothing should be saved.
//!
//! ```
//! use convgrad::{functional as F, Tensor};
//! let logits = Tensor::from_vec(vec![2.0, 1.0, 0.1], &[1, 3])?;
//! let probs = F::softmax(&logits, 1)?;
//! assert!((probs.data().iter().sum::<f32>() - 1.0).abs() < 1e-6);
//! # Ok::<(), convgrad::Error>(())
//! ```

pub use crate::autograd::forward::*;
