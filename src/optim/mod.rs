//! Optimisers with PyTorch's semantics, and learning-rate schedules.
