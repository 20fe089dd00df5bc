//! [`Tensor`]: owned, contiguous, row-major `f32` data with a shape.
//!
//! Images are NCHW. The data sits behind an `Arc`, so cloning a tensor is cheap and shares the
//! buffer (the tape saves inputs for backward this way, without copying). Writing through
//! [`Tensor::data_mut`] copies the buffer first only if it is shared (copy-on-write).
//!
//! A tensor of shape `[]` is a scalar holding one value.

pub(crate) mod elementwise;
mod init;
pub(crate) mod shelf;

use std::fmt;
use std::sync::Arc;

use crate::error::{fmt_shape, Error, Result};

/// An n-dimensional array of `f32`.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Arc<Vec<f32>>,
    /// Whether the buffer goes back to the shelf when the last tensor holding it is dropped:
    /// true for buffers that came from it (kernel outputs, see `shelf.rs`). Other buffers go
    /// back to the allocator, which reuses them for everything else.
    shelved: bool,
}

impl PartialEq for Tensor {
    /// Same shape and same values.
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.data == other.data
    }
}

impl Drop for Tensor {
    fn drop(&mut self) {
        if self.shelved {
            if let Some(data) = Arc::get_mut(&mut self.data) {
                shelf::give(std::mem::take(data));
            }
        }
    }
}

/// Number of elements of a shape (1 for the scalar shape `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// Wraps data whose length the caller has already checked against the shape.
    pub(crate) fn from_parts(data: Vec<f32>, shape: &[usize]) -> Tensor {
        debug_assert_eq!(data.len(), numel(shape), "shape {shape:?}");
        Tensor {
            shape: shape.to_vec(),
            data: Arc::new(data),
            shelved: false,
        }
    }

    /// [`Tensor::from_parts`] for a buffer from [`shelf::take`], which goes back to the shelf
    /// when the tensor is dropped.
    pub(crate) fn from_shelf(data: Vec<f32>, shape: &[usize]) -> Tensor {
        let mut tensor = Tensor::from_parts(data, shape);
        tensor.shelved = true;
        tensor
    }

    /// A tensor of the given shape holding `data` in row-major order.
    ///
    /// ```
    /// use convgrad::Tensor;
    /// let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert!(Tensor::from_vec(vec![1.0, 2.0], &[2, 3]).is_err());
    /// # Ok::<(), convgrad::Error>(())
    /// ```
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        let expected = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                Error::shape(
                    "Tensor::from_vec",
                    format!("shape {} has too many elements", fmt_shape(shape)),
                )
            })?;
        if data.len() != expected {
            return Err(Error::shape(
                "Tensor::from_vec",
                format!(
                    "{} values cannot fill shape {} ({expected} elements)",
                    data.len(),
                    fmt_shape(shape)
                ),
            ));
        }
        Ok(Tensor::from_parts(data, shape))
    }

    /// Every element equal to `value`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor::from_parts(vec![value; numel(shape)], shape)
    }

    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// A scalar: shape `[]`, one value.
    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_parts(vec![value], &[])
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions (0 for a scalar).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Mutable elements; copies the buffer first if another tensor shares it.
    pub fn data_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.data).as_mut_slice()
    }

    /// The elements as a `Vec`, without copying when this tensor is the buffer's only owner.
    pub fn into_vec(mut self) -> Vec<f32> {
        let data = std::mem::take(&mut self.data);
        Arc::try_unwrap(data).unwrap_or_else(|shared| (*shared).clone())
    }

    /// The value of a one-element tensor (a scalar loss, say).
    pub fn item(&self) -> Result<f32> {
        match self.data.as_slice() {
            [value] => Ok(*value),
            _ => Err(Error::shape(
                "Tensor::item",
                format!(
                    "only a one-element tensor has an item, this one is {}",
                    fmt_shape(&self.shape)
                ),
            )),
        }
    }

    /// The same data seen with another shape of the same element count (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "cannot view {} ({} elements) as {} ({} elements)",
                    fmt_shape(&self.shape),
                    self.numel(),
                    fmt_shape(shape),
                    numel(shape)
                ),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Arc::clone(&self.data),
            shelved: self.shelved,
        })
    }

    /// A new tensor of the same shape with `f` applied to every element (on several threads
    /// when the tensor is large, hence `Sync`).
    pub fn map(&self, f: impl Fn(f32) -> f32 + Sync) -> Tensor {
        Tensor::from_parts(elementwise::map(&self.data, f), &self.shape)
    }

    /// The largest absolute difference to `other`, or `None` if the shapes differ.
    pub fn max_abs_diff(&self, other: &Tensor) -> Option<f32> {
        (self.shape == other.shape).then(|| {
            self.data
                .iter()
                .zip(other.data.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max)
        })
    }

    /// Whether every element is finite (no NaN, no infinity).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Shows the shape and the first few values: `Tensor[2, 3] [1.0000, 2.0000, 3.0000, 4.0000, ...]`.
impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        write!(f, "Tensor{} [", fmt_shape(&self.shape))?;
        for (i, x) in self.data.iter().take(SHOWN).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{x:.4}")?;
        }
        if self.numel() > SHOWN {
            write!(f, ", ... ({} values)", self.numel())?;
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_fill_and_check_lengths() {
        assert_eq!(Tensor::ones(&[2, 2]).data(), &[1.0; 4]);
        assert_eq!(Tensor::full(&[3], 2.5).data(), &[2.5; 3]);
        assert_eq!(Tensor::scalar(4.0).shape(), &[] as &[usize]);
        assert_eq!(Tensor::scalar(4.0).item().unwrap(), 4.0);
        let err = Tensor::from_vec(vec![0.0; 5], &[2, 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Tensor::from_vec: 5 values cannot fill shape [2, 3] (6 elements)"
        );
        assert!(Tensor::from_vec(vec![], &[usize::MAX, 4]).is_err());
        assert!(Tensor::zeros(&[2, 2]).item().is_err());
    }

    #[test]
    fn reshape_shares_and_checks() {
        let t = Tensor::from_vec((0..6).map(|x| x as f32).collect(), &[2, 3]).unwrap();
        let r = t.reshape(&[3, 2]).unwrap();
        assert_eq!(r.shape(), &[3, 2]);
        assert_eq!(r.data(), t.data());
        let err = t.reshape(&[4, 2]).unwrap_err().to_string();
        assert_eq!(
            err,
            "reshape: cannot view [2, 3] (6 elements) as [4, 2] (8 elements)"
        );
    }

    #[test]
    fn writes_copy_only_shared_buffers() {
        let a = Tensor::zeros(&[3]);
        let mut b = a.clone();
        b.data_mut()[0] = 1.0;
        assert_eq!(a.data(), &[0.0, 0.0, 0.0]);
        assert_eq!(b.data(), &[1.0, 0.0, 0.0]);
        assert_eq!(b.into_vec(), vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn display_shows_shape_and_first_values() {
        let t = Tensor::from_vec((0..10).map(|x| x as f32).collect(), &[2, 5]).unwrap();
        assert_eq!(
            t.to_string(),
            "Tensor[2, 5] [0.0000, 1.0000, 2.0000, 3.0000, 4.0000, 5.0000, 6.0000, 7.0000, ... (10 values)]"
        );
        assert_eq!(Tensor::scalar(1.5).to_string(), "Tensor[] [1.5000]");
    }
}
