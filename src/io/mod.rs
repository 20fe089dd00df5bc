//! Files: safetensors in and out, with PyTorch's parameter names, written atomically.

mod safetensors;

pub use self::safetensors::{
    read_safetensors, safetensors_from_bytes, write_safetensors, NamedTensors,
};
