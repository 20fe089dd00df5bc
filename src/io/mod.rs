//! Files: safetensors in and out, with PyTorch's parameter names, and the atomic writer every
//! file convgrad writes goes through.

pub mod atomic;
mod safetensors;

pub use self::safetensors::{
    read_safetensors, safetensors_bytes, safetensors_from_bytes, write_safetensors, NamedTensors,
};
