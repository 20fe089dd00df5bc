//! Geometry of a 2-D convolution or pooling window, shared by every kernel.
//!
//! Kernels take raw slices plus one of these `Copy` structs. Tensors are NCHW, row-major and
//! contiguous; convolution weights are `[out_channels, in_channels / groups, kernel_height,
//! kernel_width]` as in PyTorch. Pairs are `(height, width)`.

use crate::KernelError;

/// Everything a convolution kernel needs to know about its operands' shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub in_height: usize,
    pub in_width: usize,
    pub kernel_height: usize,
    pub kernel_width: usize,
    /// `(height, width)` step between output positions.
    pub stride: (usize, usize),
    /// `(height, width)` zeros added on each side.
    pub padding: (usize, usize),
    /// `(height, width)` spacing between kernel taps.
    pub dilation: (usize, usize),
    pub groups: usize,
}

/// Which specialised kernel a convolution geometry is served by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// 1 x 1, one group, no padding, no dilation: a GEMM on the NCHW tensor as it is.
    Pointwise,
    /// One group per input channel (`groups == in_channels`), `out_channels` a multiple of it.
    Depthwise,
    /// One group, output maps of fewer than [`Conv2dGeometry::SMALL_MAP`] pixels: the batch is
    /// folded into one GEMM over the taps that touch the image (see `conv::im2col`).
    Im2col,
    /// Everything else: the general direct convolution (any groups).
    Direct,
}

/// Output extent of a sliding window along one axis, or `None` if the window does not fit.
///
/// `floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1`, as PyTorch.
pub fn conv_out_size(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    let span = dilation * (kernel.checked_sub(1)?) + 1;
    let padded = size + 2 * padding;
    if stride == 0 || padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

impl Conv2dGeometry {
    /// A square-kernel geometry with stride 1, no padding, dilation 1 and one group.
    pub fn new(
        batch: usize,
        in_channels: usize,
        out_channels: usize,
        (in_height, in_width): (usize, usize),
        (kernel_height, kernel_width): (usize, usize),
    ) -> Self {
        Conv2dGeometry {
            batch,
            in_channels,
            out_channels,
            in_height,
            in_width,
            kernel_height,
            kernel_width,
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }

    pub fn with_stride(mut self, stride: (usize, usize)) -> Self {
        self.stride = stride;
        self
    }
    pub fn with_padding(mut self, padding: (usize, usize)) -> Self {
        self.padding = padding;
        self
    }
    pub fn with_dilation(mut self, dilation: (usize, usize)) -> Self {
        self.dilation = dilation;
        self
    }
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Output height; `0` when the geometry is invalid (see [`Conv2dGeometry::validate`]).
    pub fn out_height(&self) -> usize {
        let (s, p, d) = (self.stride.0, self.padding.0, self.dilation.0);
        conv_out_size(self.in_height, self.kernel_height, s, p, d).unwrap_or(0)
    }

    /// Output width; `0` when the geometry is invalid.
    pub fn out_width(&self) -> usize {
        let (s, p, d) = (self.stride.1, self.padding.1, self.dilation.1);
        conv_out_size(self.in_width, self.kernel_width, s, p, d).unwrap_or(0)
    }

    pub fn in_channels_per_group(&self) -> usize {
        self.in_channels / self.groups
    }
    pub fn out_channels_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    /// Elements of the `[batch, in_channels, in_height, in_width]` input.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_height * self.in_width
    }
    /// Elements of the `[batch, out_channels, out_height, out_width]` output.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_height() * self.out_width()
    }
    /// Elements of the `[out_channels, in_channels / groups, kernel_height, kernel_width]` weight.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels_per_group() * self.kernel_height * self.kernel_width
    }

    /// Multiply-adds of one forward pass (the FLOP count is twice this).
    pub fn multiply_adds(&self) -> u64 {
        (self.batch * self.out_channels * self.out_height() * self.out_width()) as u64
            * (self.in_channels_per_group() * self.kernel_height * self.kernel_width) as u64
    }

    /// Checks that the geometry describes a convolution that can be computed.
    pub fn validate(&self) -> Result<(), KernelError> {
        let bad = |msg: String| Err(KernelError::new(format!("{self:?}: {msg}")));
        if self.groups == 0 {
            return bad("groups must be at least 1".into());
        }
        if self.in_channels % self.groups != 0 || self.out_channels % self.groups != 0 {
            return bad(format!(
                "in_channels {} and out_channels {} must both be divisible by groups {}",
                self.in_channels, self.out_channels, self.groups
            ));
        }
        if self.kernel_height == 0 || self.kernel_width == 0 {
            return bad("kernel must be at least 1 x 1".into());
        }
        if self.stride.0 == 0 || self.stride.1 == 0 {
            return bad("stride must be at least 1".into());
        }
        if self.dilation.0 == 0 || self.dilation.1 == 0 {
            return bad("dilation must be at least 1".into());
        }
        let eff_h = self.dilation.0 * (self.kernel_height - 1) + 1;
        let eff_w = self.dilation.1 * (self.kernel_width - 1) + 1;
        if self.in_height + 2 * self.padding.0 < eff_h || self.in_width + 2 * self.padding.1 < eff_w
        {
            return bad(format!(
                "kernel {}x{} (dilated {}x{}) is larger than the padded input {}x{}",
                self.kernel_height,
                self.kernel_width,
                eff_h,
                eff_w,
                self.in_height + 2 * self.padding.0,
                self.in_width + 2 * self.padding.1
            ));
        }
        Ok(())
    }

    /// The specialised kernel family that serves this geometry.
    /// Output maps smaller than this (in pixels) go to the im2col kernel: the direct kernel tiles
    /// six pixels of one image at a time, which small maps leave mostly empty.
    pub const SMALL_MAP: usize = 16;

    pub fn kind(&self) -> ConvKind {
        let one_by_one = self.kernel_height == 1 && self.kernel_width == 1;
        if one_by_one && self.groups == 1 && self.padding == (0, 0) {
            ConvKind::Pointwise
        } else if self.groups == self.in_channels && self.groups > 1 {
            ConvKind::Depthwise
        } else if self.groups == 1 && self.out_height() * self.out_width() < Self::SMALL_MAP {
            ConvKind::Im2col
        } else {
            ConvKind::Direct
        }
    }
}

/// Geometry of a 2-D pooling window over an NCHW tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeometry {
    pub batch: usize,
    pub channels: usize,
    pub in_height: usize,
    pub in_width: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    /// Round the output size up instead of down (PyTorch's `ceil_mode`); a window that would
    /// start in the right or bottom padding is dropped, as PyTorch does.
    pub ceil_mode: bool,
}

/// Output extent of a pooling window along one axis, PyTorch's rule (including `ceil_mode`).
///
/// `(size + 2 * padding - span + (ceil_mode ? stride - 1 : 0)) / stride + 1`, rounded toward
/// minus infinity, where `span = dilation * (kernel - 1) + 1`. In `ceil_mode` a last window may
/// hang past the end of the (padded) input, even one smaller than the window (PyTorch pools a
/// 2 x 2 map to 1 x 1 with a 3 x 3, stride-2, ceil-mode window), but it must start inside the
/// input or the left padding.
pub fn pool_out_size(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Option<usize> {
    let span = dilation * (kernel.checked_sub(1)?) + 1;
    if stride == 0 || size == 0 {
        return None;
    }
    let room = (size + 2 * padding) as i64 - span as i64;
    let numerator = room + if ceil_mode { stride as i64 - 1 } else { 0 };
    let out = numerator.div_euclid(stride as i64) + 1;
    if out < 1 {
        return None;
    }
    let mut out = out as usize;
    // The last window must start inside the input or the left padding.
    if ceil_mode && (out - 1) * stride >= size + padding {
        out -= 1;
    }
    (out > 0).then_some(out)
}

impl Pool2dGeometry {
    /// A square window of `kernel` with stride `kernel`, no padding, dilation 1, floor mode.
    pub fn new(
        batch: usize,
        channels: usize,
        (in_height, in_width): (usize, usize),
        kernel: (usize, usize),
    ) -> Self {
        Pool2dGeometry {
            batch,
            channels,
            in_height,
            in_width,
            kernel,
            stride: kernel,
            padding: (0, 0),
            dilation: (1, 1),
            ceil_mode: false,
        }
    }

    pub fn out_height(&self) -> usize {
        let (k, s, p, d) = (
            self.kernel.0,
            self.stride.0,
            self.padding.0,
            self.dilation.0,
        );
        pool_out_size(self.in_height, k, s, p, d, self.ceil_mode).unwrap_or(0)
    }
    pub fn out_width(&self) -> usize {
        let (k, s, p, d) = (
            self.kernel.1,
            self.stride.1,
            self.padding.1,
            self.dilation.1,
        );
        pool_out_size(self.in_width, k, s, p, d, self.ceil_mode).unwrap_or(0)
    }
    pub fn input_len(&self) -> usize {
        self.batch * self.channels * self.in_height * self.in_width
    }
    pub fn output_len(&self) -> usize {
        self.batch * self.channels * self.out_height() * self.out_width()
    }

    /// Checks the window fits and that padding is at most half the window, as PyTorch requires.
    pub fn validate(&self) -> Result<(), KernelError> {
        let bad = |msg: String| Err(KernelError::new(format!("{self:?}: {msg}")));
        if self.kernel.0 == 0 || self.kernel.1 == 0 {
            return bad("kernel must be at least 1 x 1".into());
        }
        if self.stride.0 == 0 || self.stride.1 == 0 {
            return bad("stride must be at least 1".into());
        }
        if self.dilation.0 == 0 || self.dilation.1 == 0 {
            return bad("dilation must be at least 1".into());
        }
        if 2 * self.padding.0 > self.kernel.0 || 2 * self.padding.1 > self.kernel.1 {
            return bad(format!(
                "padding {:?} must be at most half the kernel {:?}",
                self.padding, self.kernel
            ));
        }
        if self.out_height() == 0 || self.out_width() == 0 {
            return bad(format!(
                "window {:?} (dilation {:?}) is larger than the padded input {}x{}",
                self.kernel,
                self.dilation,
                self.in_height + 2 * self.padding.0,
                self.in_width + 2 * self.padding.1
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_follow_pytorch() {
        // ResNet stem: 224, k7 s2 p3 -> 112; then max-pool k3 s2 p1 -> 56.
        assert_eq!(conv_out_size(224, 7, 2, 3, 1), Some(112));
        assert_eq!(pool_out_size(112, 3, 2, 1, 1, false), Some(56));
        // GoogLeNet ceil_mode max-pool: 112, k3 s2 -> 56 (floor gives 55).
        assert_eq!(pool_out_size(112, 3, 2, 0, 1, true), Some(56));
        assert_eq!(pool_out_size(112, 3, 2, 0, 1, false), Some(55));
        // ceil_mode never starts a window in the right padding: 5, k2 s2 p1 -> 3.
        assert_eq!(pool_out_size(5, 2, 2, 1, 1, true), Some(3));
        // ceil_mode lets a window hang past a map smaller than itself, as PyTorch does.
        assert_eq!(pool_out_size(2, 3, 2, 0, 1, true), Some(1));
        assert_eq!(pool_out_size(2, 3, 2, 0, 1, false), None);
        assert_eq!(pool_out_size(1, 3, 1, 0, 1, true), None);
        assert_eq!(conv_out_size(2, 5, 1, 0, 1), None);
        assert_eq!(conv_out_size(5, 3, 1, 0, 2), Some(1));
    }

    #[test]
    fn kinds_are_picked_from_geometry() {
        let g = Conv2dGeometry::new(1, 8, 16, (5, 5), (1, 1));
        assert_eq!(g.kind(), ConvKind::Pointwise);
        assert_eq!(g.with_groups(8).kind(), ConvKind::Depthwise);
        assert_eq!(
            Conv2dGeometry::new(1, 8, 16, (8, 8), (3, 3)).kind(),
            ConvKind::Direct
        );
        // A 3 x 3 output map is small: im2col, unless grouped.
        let small = Conv2dGeometry::new(1, 8, 16, (5, 5), (3, 3));
        assert_eq!(small.kind(), ConvKind::Im2col);
        assert_eq!(small.with_groups(2).kind(), ConvKind::Direct);
        assert!(Conv2dGeometry::new(1, 6, 16, (5, 5), (3, 3))
            .with_groups(4)
            .validate()
            .is_err());
    }
}
