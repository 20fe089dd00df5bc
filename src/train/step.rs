//! One optimisation step: forward on a tape in training mode, cross-entropy (plus the weighted
//! auxiliary losses of GoogLeNet and Inception-v3), backward, optimiser update, and the new
//! BatchNorm running statistics written back into the store.

use super::nonfinite::forward_loss;
use crate::error::Result;
use crate::graph::{Graph, ParamStore};
use crate::optim::{trainable_grads, Optimizer};
use crate::{Rng, Tensor};

/// What one [`train_step`] measured on its batch, before the update.
#[derive(Clone, Debug)]
pub struct StepOutcome {
    /// The batch's mean loss (main head plus weighted auxiliary heads).
    pub loss: f32,
    /// The main head's logits `[N, classes]`.
    pub logits: Tensor,
}

/// Weight of each auxiliary classifier's loss (GoogLeNet's paper uses 0.3; torchvision's
/// Inception-v3 recipe 0.4).
pub fn aux_weight(model: &str) -> f32 {
    if model.starts_with("inception") {
        0.4
    } else {
        0.3
    }
}

/// One training step of `graph` on `images` `[N, C, H, W]` with `labels`. Dropout masks come
/// from `dropout_rng`. When the loss is not finite, nothing is updated and the outcome says so
/// through its `loss`; the caller decides what to do.
pub fn train_step(
    graph: &Graph,
    store: &mut ParamStore,
    optimizer: &mut dyn Optimizer,
    images: Tensor,
    labels: &[usize],
    dropout_rng: &mut Rng,
) -> Result<StepOutcome> {
    let aux = aux_weight(graph.name());
    let (tape, out, loss) = forward_loss(graph, store, images, labels, dropout_rng, aux, true)?;
    let loss_value = tape.value(loss)?.item()?;
    let logits = tape.value(out.output)?.clone();
    if !loss_value.is_finite() {
        return Ok(StepOutcome {
            loss: loss_value,
            logits,
        });
    }
    let mut grads = tape.backward(loss)?;
    let grads = trainable_grads(store.kinds(), &out.params, &mut grads)?;
    optimizer.step(store.tensors_mut(), &grads)?;
    for (slot, value) in out.buffer_updates {
        store.tensors_mut()[slot] = value;
    }
    Ok(StepOutcome {
        loss: loss_value,
        logits,
    })
}
