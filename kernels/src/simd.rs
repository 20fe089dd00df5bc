//! Which SIMD instructions this build of the kernels uses.
//!
//! `wide` chooses its instructions at compile time from the enabled target features, so a build
//! without `-C target-cpu=native` (or `-C target-feature=+avx2,+fma`) silently runs its f32x8
//! code on SSE, at half speed or worse. [`compiled_level`] reports what was compiled in and
//! [`host_level`] what the running CPU offers; a test checks that the build uses every level the
//! CPU has (AVX2 + FMA, and AVX-512 where the micro-kernels pair their vectors).

/// A SIMD instruction level relevant to the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// No 256-bit vectors: f32x8 is emulated with two 128-bit halves (or scalars).
    Baseline,
    /// AVX2 and FMA: one f32x8 fused multiply-add per instruction.
    Avx2Fma,
    /// AVX-512 (foundation) as well: the register tiles of `conv/tile.rs` join their f32x8
    /// vectors in pairs, one 16-lane fused multiply-add per instruction.
    Avx512,
}

/// The level the kernels were compiled for.
pub fn compiled_level() -> SimdLevel {
    if cfg!(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "avx512f"
    )) {
        SimdLevel::Avx512
    } else if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
        SimdLevel::Avx2Fma
    } else {
        SimdLevel::Baseline
    }
}

/// The level the CPU running this process supports.
pub fn host_level() -> SimdLevel {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return SimdLevel::Avx512;
            }
            return SimdLevel::Avx2Fma;
        }
    }
    SimdLevel::Baseline
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when the CPU has AVX2 + FMA (or AVX-512) but the build did not enable them (see
    /// `.cargo/config.toml`).
    #[test]
    fn build_uses_the_avx2_fma_the_cpu_has() {
        assert!(
            compiled_level() >= host_level(),
            "this CPU supports {:?} but the kernels were compiled for {:?}: build with \
             RUSTFLAGS=\"-C target-cpu=native\" (the workspace's .cargo/config.toml does this)",
            host_level(),
            compiled_level()
        );
    }
}
