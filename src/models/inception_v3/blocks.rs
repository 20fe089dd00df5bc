//! The five Inception modules of Inception-v3 and its `BasicConv2d`, named as torchvision
//! names them (`Mixed_6b.branch7x7dbl_3.conv`, ...). Each module runs parallel branches on the
//! same input and concatenates them along channels, in torchvision's order.

use crate::autograd::Pool2dOptions;
use crate::error::Result;
use crate::graph::{GraphBuilder, NodeId};
use crate::nn::Conv2d;

/// torchvision's `BasicConv2d`: a convolution without bias, batch norm with `eps = 0.001` (the
/// value of the TensorFlow original whose weights torchvision ported) and ReLU, as the nodes
/// `<name>.conv`, `<name>.bn` and `<name>.relu`.
pub(super) fn basic_conv(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    conv: Conv2d,
) -> Result<NodeId> {
    let x = b.conv(format!("{name}.conv"), x, conv.bias(false))?;
    let x = b.batch_norm_eps(format!("{name}.bn"), x, 1e-3)?;
    b.relu(format!("{name}.relu"), x)
}

/// A `kernel_size` x `kernel_size` convolution to `out_channels`; `in_channels` come from the
/// builder.
pub(super) fn square(out_channels: usize, kernel_size: usize) -> Conv2d {
    Conv2d::new(0, out_channels, kernel_size)
}

/// A 1 x `n` convolution padded to keep the size: the first half of a factorised n x n.
fn row(out_channels: usize, n: usize) -> Conv2d {
    square(out_channels, 1).kernel((1, n)).padding2((0, n / 2))
}

/// An `n` x 1 convolution padded to keep the size: the second half of a factorised n x n.
fn column(out_channels: usize, n: usize) -> Conv2d {
    square(out_channels, 1).kernel((n, 1)).padding2((n / 2, 0))
}

/// Builds the nodes of one module, prefixing every name with the module's (`Mixed_5b`).
struct Module<'a> {
    b: &'a mut GraphBuilder,
    name: &'a str,
}

impl Module<'_> {
    /// A `BasicConv2d` named `<module>.<branch>`.
    fn conv(&mut self, branch: &str, x: NodeId, conv: Conv2d) -> Result<NodeId> {
        basic_conv(self.b, &format!("{}.{branch}", self.name), x, conv)
    }

    /// The 3 x 3, stride 1, pad 1 average pool that feeds `branch_pool`. torchvision calls
    /// `F.avg_pool2d` with its default `count_include_pad=True`: border pixels average in zeros.
    fn avg_pool(&mut self, x: NodeId) -> Result<NodeId> {
        let options = Pool2dOptions::new(3)
            .stride(1)
            .padding(1)
            .count_include_pad(true);
        self.b
            .avg_pool(format!("{}.branch_pool.pool", self.name), x, options)
    }

    /// The 3 x 3, stride 2 max pool branch of the grid-size reductions (no parameters).
    fn max_pool(&mut self, x: NodeId) -> Result<NodeId> {
        let options = Pool2dOptions::new(3).stride(2);
        self.b
            .max_pool(format!("{}.branch_pool", self.name), x, options)
    }

    /// Concatenates branches along channels as the node `<module>.<what>`.
    fn concat(&mut self, what: &str, branches: &[NodeId]) -> Result<NodeId> {
        self.b.concat(format!("{}.{what}", self.name), branches)
    }
}

/// InceptionA (35 x 35, Mixed_5b..5d; the paper's figure 5): 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 |
/// avg pool, 1x1 to `pool_features`. Out: 224 + `pool_features` channels.
pub(super) fn inception_a(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    pool_features: usize,
) -> Result<NodeId> {
    let mut m = Module { b, name };
    let branch1x1 = m.conv("branch1x1", x, square(64, 1))?;

    let branch5x5 = m.conv("branch5x5_1", x, square(48, 1))?;
    let branch5x5 = m.conv("branch5x5_2", branch5x5, square(64, 5).padding(2))?;

    let branch3x3dbl = m.conv("branch3x3dbl_1", x, square(64, 1))?;
    let branch3x3dbl = m.conv("branch3x3dbl_2", branch3x3dbl, square(96, 3).padding(1))?;
    let branch3x3dbl = m.conv("branch3x3dbl_3", branch3x3dbl, square(96, 3).padding(1))?;

    let branch_pool = m.avg_pool(x)?;
    let branch_pool = m.conv("branch_pool", branch_pool, square(pool_features, 1))?;

    m.concat("concat", &[branch1x1, branch5x5, branch3x3dbl, branch_pool])
}

/// InceptionB (Mixed_6a; 35 x 35 to 17 x 17): a stride-2 3x3 | 1x1, 3x3, stride-2 3x3 | stride-2
/// max pool, side by side, so the grid shrinks while the channels grow (288 to 768) without a
/// representational bottleneck.
pub(super) fn inception_b(b: &mut GraphBuilder, name: &str, x: NodeId) -> Result<NodeId> {
    let mut m = Module { b, name };
    let branch3x3 = m.conv("branch3x3", x, square(384, 3).stride(2))?;

    let branch3x3dbl = m.conv("branch3x3dbl_1", x, square(64, 1))?;
    let branch3x3dbl = m.conv("branch3x3dbl_2", branch3x3dbl, square(96, 3).padding(1))?;
    let branch3x3dbl = m.conv("branch3x3dbl_3", branch3x3dbl, square(96, 3).stride(2))?;

    let branch_pool = m.max_pool(x)?;

    m.concat("concat", &[branch3x3, branch3x3dbl, branch_pool])
}

/// InceptionC (17 x 17, Mixed_6b..6e; figure 6): every 7 x 7 factorised into 1x7 then 7x1.
/// 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | avg pool, 1x1; `channels_7x7` inside the
/// factorised branches, 4 x 192 = 768 out.
pub(super) fn inception_c(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    channels_7x7: usize,
) -> Result<NodeId> {
    let c7 = channels_7x7;
    let mut m = Module { b, name };
    let branch1x1 = m.conv("branch1x1", x, square(192, 1))?;

    let branch7x7 = m.conv("branch7x7_1", x, square(c7, 1))?;
    let branch7x7 = m.conv("branch7x7_2", branch7x7, row(c7, 7))?;
    let branch7x7 = m.conv("branch7x7_3", branch7x7, column(192, 7))?;

    let branch7x7dbl = m.conv("branch7x7dbl_1", x, square(c7, 1))?;
    let branch7x7dbl = m.conv("branch7x7dbl_2", branch7x7dbl, column(c7, 7))?;
    let branch7x7dbl = m.conv("branch7x7dbl_3", branch7x7dbl, row(c7, 7))?;
    let branch7x7dbl = m.conv("branch7x7dbl_4", branch7x7dbl, column(c7, 7))?;
    let branch7x7dbl = m.conv("branch7x7dbl_5", branch7x7dbl, row(192, 7))?;

    let branch_pool = m.avg_pool(x)?;
    let branch_pool = m.conv("branch_pool", branch_pool, square(192, 1))?;

    m.concat("concat", &[branch1x1, branch7x7, branch7x7dbl, branch_pool])
}

/// InceptionD (Mixed_7a; 17 x 17 to 8 x 8): 1x1, stride-2 3x3 | 1x1, 1x7, 7x1, stride-2 3x3 |
/// stride-2 max pool. 320 + 192 + 768 = 1280 out.
pub(super) fn inception_d(b: &mut GraphBuilder, name: &str, x: NodeId) -> Result<NodeId> {
    let mut m = Module { b, name };
    let branch3x3 = m.conv("branch3x3_1", x, square(192, 1))?;
    let branch3x3 = m.conv("branch3x3_2", branch3x3, square(320, 3).stride(2))?;

    let branch7x7x3 = m.conv("branch7x7x3_1", x, square(192, 1))?;
    let branch7x7x3 = m.conv("branch7x7x3_2", branch7x7x3, row(192, 7))?;
    let branch7x7x3 = m.conv("branch7x7x3_3", branch7x7x3, column(192, 7))?;
    let branch7x7x3 = m.conv("branch7x7x3_4", branch7x7x3, square(192, 3).stride(2))?;

    let branch_pool = m.max_pool(x)?;

    m.concat("concat", &[branch3x3, branch7x7x3, branch_pool])
}

/// InceptionE (8 x 8, Mixed_7b/7c; figure 7): the coarsest grid gets *wider* rather than deeper
/// branches: a 3 x 3 split into a 1x3 and a 3x1 applied side by side and concatenated.
/// 1x1 | 1x1, [1x3 | 3x1] | 1x1, 3x3, [1x3 | 3x1] | avg pool, 1x1;
/// 320 + 768 + 768 + 192 = 2048 out.
pub(super) fn inception_e(b: &mut GraphBuilder, name: &str, x: NodeId) -> Result<NodeId> {
    let mut m = Module { b, name };
    let branch1x1 = m.conv("branch1x1", x, square(320, 1))?;

    let branch3x3 = m.conv("branch3x3_1", x, square(384, 1))?;
    let branch3x3_a = m.conv("branch3x3_2a", branch3x3, row(384, 3))?;
    let branch3x3_b = m.conv("branch3x3_2b", branch3x3, column(384, 3))?;
    let branch3x3 = m.concat("branch3x3", &[branch3x3_a, branch3x3_b])?;

    let branch3x3dbl = m.conv("branch3x3dbl_1", x, square(448, 1))?;
    let branch3x3dbl = m.conv("branch3x3dbl_2", branch3x3dbl, square(384, 3).padding(1))?;
    let branch3x3dbl_a = m.conv("branch3x3dbl_3a", branch3x3dbl, row(384, 3))?;
    let branch3x3dbl_b = m.conv("branch3x3dbl_3b", branch3x3dbl, column(384, 3))?;
    let branch3x3dbl = m.concat("branch3x3dbl", &[branch3x3dbl_a, branch3x3dbl_b])?;

    let branch_pool = m.avg_pool(x)?;
    let branch_pool = m.conv("branch_pool", branch_pool, square(192, 1))?;

    m.concat("concat", &[branch1x1, branch3x3, branch3x3dbl, branch_pool])
}
