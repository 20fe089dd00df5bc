//! The one error a kernel can return: its operands do not fit its geometry.

use std::fmt;

/// A geometry that cannot be computed, or a slice whose length does not match the geometry.
/// The message names the geometry and the lengths involved; the caller adds the op's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError {
    message: String,
}

impl KernelError {
    pub fn new(message: impl Into<String>) -> Self {
        KernelError {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KernelError {}

/// Checks that a slice has the length a geometry implies.
pub(crate) fn check_len(what: &str, got: usize, expected: usize) -> Result<(), KernelError> {
    if got == expected {
        Ok(())
    } else {
        Err(KernelError::new(format!(
            "{what} has {got} elements, the geometry needs {expected}"
        )))
    }
}
