"""Prints the PyTorch values that convgrad's unit tests compare against.

Run with a PyTorch install (never needed by the build or the tests):
    python3 scripts/torch_expected.py conv
Each case builds its inputs from the same closed-form integer patterns as the Rust test, so no
data file is needed.
"""
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)


def pattern(n, mul, mod, shift, div):
    return torch.tensor([((i * mul % mod) - shift) / div for i in range(n)], dtype=torch.float32)


def conv():
    # src/autograd/conv.rs: matches_pytorch_on_a_strided_padded_grouped_case
    x = pattern(2 * 4 * 5 * 5, 7, 11, 5.0, 5.0).reshape(2, 4, 5, 5).requires_grad_()
    w = pattern(6 * 2 * 3 * 2, 5, 13, 6.0, 6.0).reshape(6, 2, 3, 2).requires_grad_()
    b = torch.tensor([0.1, -0.2, 0.3, -0.4, 0.5, -0.6], requires_grad=True)
    y = F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    u = pattern(y.numel(), 3, 7, 3.0, 3.0).reshape(y.shape)
    (y * u).sum().backward()
    d = lambda t: t.detach().double()
    stats = [d(y).sum(), d(y).pow(2).sum(), d(x.grad).sum(), d(x.grad).pow(2).sum(),
             d(w.grad).sum(), d(w.grad).pow(2).sum(), d(b.grad).sum(),
             d(y).flatten()[0], d(y).flatten()[100]]
    print(list(y.shape))
    print(", ".join(f"{float(s):.9e}" for s in stats))


def pool():
    # src/autograd/pool.rs: matches_pytorch
    x = pattern(2 * 3 * 7 * 6, 7, 19, 9.0, 4.0).reshape(2, 3, 7, 6)
    ys = [
        F.max_pool2d(x, 3, stride=2, ceil_mode=True),
        F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        F.avg_pool2d(x, 2, stride=1, padding=1),
        F.adaptive_avg_pool2d(x, (3, 4)),
    ]
    for y in ys:
        y = y.double()
        print(f"({list(y.shape)}, {float(y.sum()):.9e}, {float(y.pow(2).sum()):.9e}),")


def norm():
    # src/autograd/norm.rs: matches_pytorch
    x = pattern(3 * 4 * 3 * 2, 7, 23, 11.0, 5.0).reshape(3, 4, 3, 2).requires_grad_()
    w = torch.tensor([0.5, 1.0, 1.5, 2.0], requires_grad=True)
    b = torch.tensor([0.1, 0.2, -0.3, 0.0], requires_grad=True)
    mean = torch.tensor([0.1, -0.1, 0.2, 0.0])
    var = torch.tensor([1.0, 2.0, 0.5, 1.5])
    y = F.batch_norm(x, mean, var, w, b, training=True, momentum=0.1, eps=1e-3)
    u = pattern(y.numel(), 5, 7, 3.0, 3.0).reshape(y.shape)
    (y * u).sum().backward()
    lrn = F.local_response_norm(x.detach(), 3, alpha=0.3, beta=0.75, k=2.0)
    d = lambda t: t.detach().double()
    stats = [d(y).sum(), d(y).pow(2).sum(), d(x.grad).pow(2).sum(), d(w.grad).sum(),
             d(b.grad).sum(), d(mean).sum(), d(var).sum(), d(lrn).sum(), d(lrn).pow(2).sum()]
    print(", ".join(f"{float(s):.9e}" for s in stats))


if __name__ == "__main__":
    {"conv": conv, "pool": pool, "norm": norm}[sys.argv[1]]()
