"""Prints the PyTorch values that convgrad's optimiser and schedule tests compare against.

Run with a PyTorch install (never needed by the build or the tests):
    python3 scripts/torch_optim.py [--exact]
The Rust tests in src/optim/{sgd,adam,rmsprop,schedule}.rs hold the printed values (parameters
with 8 significant digits). `--exact` prints 9 digits, enough to identify an f32 exactly: that
is how SGD and RMSprop were seen to agree with PyTorch bit for bit, and Adam to 2 ulps.

Every optimiser case starts from the same closed-form parameters (two tensors, shapes [2, 3] and
[4]) and applies 5 steps of closed-form gradients that change from step to step, so no data file
is needed; src/optim/test_util.rs builds the same numbers. On CPU, torch.optim's default is the
single-tensor ("for-loop") implementation, which is what convgrad reproduces.
"""
import sys

import torch
from torch.optim import lr_scheduler

torch.set_default_dtype(torch.float32)

SHAPES = [(2, 3), (4,)]
STEPS = 5


def initial_params():
    # Element i of the concatenated parameters is ((i * 7 % 11) - 5) / 5.
    params, offset = [], 0
    for shape in SHAPES:
        n = torch.Size(shape).numel()
        values = [((i * 7 % 11) - 5) / 5 for i in range(offset, offset + n)]
        params.append(torch.tensor(values).reshape(shape).requires_grad_())
        offset += n
    return params


def gradient(step, slot, shape):
    # Element i of slot k's gradient at step s (counted from 1) is (((5i + 3s + 2k) % 13) - 6) / 4.
    n = torch.Size(shape).numel()
    values = [(((5 * i + 3 * step + 2 * slot) % 13) - 6) / 4 for i in range(n)]
    return torch.tensor(values).reshape(shape)


CASES = [
    ("sgd_plain", torch.optim.SGD, dict(lr=0.1)),
    ("sgd_nesterov_wd", torch.optim.SGD,
     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_dampening", torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("adam", torch.optim.Adam, dict(lr=0.1)),
    ("adam_wd", torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adamw", torch.optim.AdamW, dict(lr=0.1, weight_decay=0.1)),
    ("amsgrad", torch.optim.Adam, dict(lr=0.1, amsgrad=True)),
    ("rmsprop", torch.optim.RMSprop, dict(lr=0.01)),
    ("rmsprop_centered", torch.optim.RMSprop,
     dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05, momentum=0.5, centered=True)),
]


def fmt(values, digits):
    return "[" + ", ".join(f"{v:.{digits}e}" for v in values) + "]"


def optimisers(digits):
    for name, cls, kwargs in CASES:
        params = initial_params()
        opt = cls(params, **kwargs)
        for step in range(1, STEPS + 1):
            for slot, p in enumerate(params):
                p.grad = gradient(step, slot, p.shape)
            opt.step()
        print(f"// {name}: {cls.__name__}({kwargs})")
        for slot, p in enumerate(params):
            print(f"{name}[{slot}] = {fmt(p.detach().flatten().tolist(), digits - 1)}")


def lr_values(make, epochs):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = make(opt)
    values = []
    for _ in range(epochs):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


def schedules():
    cases = [
        ("step_lr", "StepLR(step_size=3, gamma=0.5)",
         lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 10),
        ("cosine_lr", "CosineAnnealingLR(T_max=10, eta_min=0.001), past T_max",
         lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 13),
        ("warmup_cosine_lr",
         "SequentialLR([LinearLR(start_factor=0.01, total_iters=5), "
         "CosineAnnealingLR(T_max=15)], milestones=[5])",
         lambda o: lr_scheduler.SequentialLR(o, [
             lr_scheduler.LinearLR(o, start_factor=0.01, total_iters=5),
             lr_scheduler.CosineAnnealingLR(o, T_max=15)], milestones=[5]), 21),
    ]
    for name, desc, make, epochs in cases:
        print(f"// {name}: base lr 0.1, {desc}, epochs 0..{epochs}")
        print(f"{name} = {fmt(lr_values(make, epochs), 11)}")


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    optimisers(9 if "--exact" in sys.argv else 8)
    schedules()
