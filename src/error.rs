//! The crate's error type: every variant says which op or layer failed and with which shapes.

use std::fmt;
use std::path::PathBuf;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, named after the op or layer and the shapes involved.
///
/// ```
/// use convgrad::{Tape, Tensor};
/// let mut tape = Tape::new();
/// let a = tape.input(Tensor::zeros(&[32, 400]));
/// let b = tape.input(Tensor::zeros(&[120, 84]));
/// let err = tape.matmul(a, b).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "matmul: [32, 400] x [120, 84]: inner dimensions 400 and 120 differ"
/// );
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Operands whose shapes do not fit the op.
    Shape { op: String, message: String },
    /// An argument outside what the op accepts (an axis out of range, a class index too large...).
    InvalidArgument { op: String, message: String },
    /// A graph node that does not fit its inputs, named with the shapes involved.
    Graph { node: String, message: String },
    /// Misuse of the tape: a `Var` from another tape, backward from a non-scalar, ...
    Tape { message: String },
    /// A file could not be read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file was read but its contents are not what they should be.
    Format { path: PathBuf, message: String },
    /// Training met a NaN or an infinity: at which step, in which graph node (or parameter) it
    /// first appeared, and which checkpoint is left.
    NonFinite {
        step: usize,
        node: String,
        message: String,
    },
}

impl Error {
    pub(crate) fn shape(op: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Shape {
            op: op.into(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(op: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op: op.into(),
            message: message.into(),
        }
    }

    pub(crate) fn tape(message: impl Into<String>) -> Self {
        Error::Tape {
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape { op, message } | Error::InvalidArgument { op, message } => {
                write!(f, "{op}: {message}")
            }
            Error::Graph { node, message } => write!(f, "node '{node}': {message}"),
            Error::Tape { message } => write!(f, "tape: {message}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Format { path, message } => write!(f, "{}: {message}", path.display()),
            Error::NonFinite { message, .. } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Formats a shape the way errors print it: `[32, 400]`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}
