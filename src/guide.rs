//! Chapters of the guide (`docs/guide/` in the repository) that hold runnable code, included
//! here so that `cargo test --doc` compiles and runs their examples: the guide cannot drift from
//! the API it describes. The chapters' relative links point into the repository and work when
//! the markdown is read there.

/// The autograd chapter (`docs/guide/autograd.md`).
#[doc = include_str!("../docs/guide/autograd.md")]
pub mod autograd {}
