"""Writes PyTorch reference fixtures that `tests/torch_equality.rs` compares convgrad against.

    python scripts/torch_fixtures.py OUT_DIR                      # every zoo model, full size
    python scripts/torch_fixtures.py OUT_DIR --models resnet18,vgg11
    python scripts/torch_fixtures.py tests/fixtures/torch --small  # the small committed ones

Then `CONVGRAD_TORCH_FIXTURES=OUT_DIR cargo test --release --test torch_equality`.

Needs torch, torchvision and timm; never needed by the build or the tests. For each model it
writes a directory OUT_DIR/<name>/ holding

- weights.safetensors: the model's state_dict() (torchvision's names; timm's for xception and
  mobilenet_v1), with random weights and *randomised* BatchNorm statistics and affine
  parameters, so that evaluation mode is not a no-op normalisation;
- io.safetensors: `input` [2, C, H, W], `target` [2] (int64), `logits` [2, classes] from
  evaluation mode, and `loss` [1], the mean cross-entropy of a training-mode forward (batch
  statistics, dropout disabled); its metadata says how to build the model in convgrad
  (`model`, plus `growth_rate`, `block_config`, `num_init_features` or `width_mult` for the
  small configurations, and `aux_logits`), and how far PyTorch's own float32 logits and loss
  are from the float64 reference (`torch_f32_logits_error`, `torch_f32_loss_error`);
- grads.safetensors: `grad.<name>` for every parameter that the loss reaches, with PyTorch's
  own float32 error for each in the metadata.

PyTorch's float32 result is not one number: the same model run with one thread, in the
channels-last memory format, or with the native (non-oneDNN) convolution sums in other orders,
and on a badly conditioned network those orders land pre-activations on different sides of a
ReLU kink. The worst error of any of these variants against float64 is recorded too
(`torch_f32_variants_logits_error`, `..._loss_error`, `..._gradient_error`, in io's
metadata): it is how far from exact a float32 implementation can be and still be "what PyTorch
computes". `--variants-only` adds them to fixtures written before they existed.

Those four are only four samples of how float32 rounding can fall. `torch_f32_loss_spread`
samples it properly: each layer's float32 error is measured, then added at random (16 times)
to the float64 network's layer outputs; the standard deviation of the training-mode loss's
relative error is stored. `--spread-only` adds it to existing fixtures.

Logits, loss and gradients are computed in float64 from the float32 weights and input (then
stored as float32): the exact answer to compare with, since some of these random networks are
so badly conditioned in training mode that float32 PyTorch misses it by more than 1e-3. GoogLeNet keeps
  its auxiliary heads (to check they load) but, as in `convgrad gradients`, the loss is taken
  on the main logits only, so the heads get no gradient and are not written.

Full size is batch 2 at 64 x 64 (96 x 96 for Inception-v3) with 10 classes, as issue 6 asks.
The VGGs' first fully connected layer alone is 25088 x 4096, so their files are ~0.4 GB each.
"""
import argparse
import copy
import os

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tv
from safetensors import safe_open
from safetensors.torch import load_file, save_file

CLASSES = 10


class LeNet5(nn.Module):
    """convgrad's lenet5 (src/models/lenet.rs): ReLU and max pooling, 28 x 28 padded by 2."""

    def __init__(self, num_classes=CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def full_size():
    """name -> (constructor, input [C, H, W], convgrad build metadata)."""
    at64 = [3, 64, 64]
    models = {
        "alexnet": (lambda: tv.alexnet(num_classes=CLASSES), at64, {}),
        "googlenet": (
            lambda: tv.googlenet(
                num_classes=CLASSES, aux_logits=True, transform_input=False, init_weights=True
            ),
            at64,
            {"aux_logits": "true"},
        ),
        "inception_v3": (
            lambda: tv.inception_v3(
                num_classes=CLASSES, aux_logits=False, transform_input=False, init_weights=True
            ),
            [3, 96, 96],
            {},
        ),
        # At 96 x 96 Mixed_7's maps are 1 x 1, so training-mode BatchNorm there normalises two
        # values per channel and float32 cannot pin the loss down (PyTorch's own float32 loss
        # is ~30% off the float64 one). At 128 x 128 they are 2 x 2: well-conditioned.
        "inception_v3_128": (
            lambda: tv.inception_v3(
                num_classes=CLASSES, aux_logits=False, transform_input=False, init_weights=True
            ),
            [3, 128, 128],
            {"model": "inception_v3"},
        ),
        "xception": (
            lambda: timm.create_model("legacy_xception", pretrained=False, num_classes=CLASSES),
            at64,
            {},
        ),
        "mobilenet_v1": (
            lambda: timm.create_model("mobilenetv1_100", pretrained=False, num_classes=CLASSES),
            at64,
            {},
        ),
        "mobilenet_v2": (lambda: tv.mobilenet_v2(num_classes=CLASSES), at64, {}),
    }
    for name in ["vgg11", "vgg13", "vgg16", "vgg19"]:
        for suffix in ["", "_bn"]:
            make = getattr(tv, name + suffix)
            models[name + suffix] = (lambda make=make: make(num_classes=CLASSES), at64, {})
    for name in ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                 "densenet121", "densenet161", "densenet169", "densenet201"]:
        make = getattr(tv, name)
        models[name] = (lambda make=make: make(num_classes=CLASSES), at64, {})
    return models


def small():
    """Configurations small enough to commit (a few hundred kB each)."""
    return {
        "lenet5": (lambda: LeNet5(), [1, 28, 28], {"model": "lenet5"}),
        "densenet_small": (
            lambda: tv.DenseNet(
                growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16,
                num_classes=CLASSES,
            ),
            [3, 64, 64],
            {"model": "densenet", "growth_rate": "8", "block_config": "2,2,2,2",
             "num_init_features": "16"},
        ),
        "mobilenet_v2_w0.25": (
            lambda: tv.mobilenet_v2(num_classes=CLASSES, width_mult=0.25),
            [3, 64, 64],
            {"model": "mobilenet_v2", "width_mult": "0.25"},
        ),
    }


def randomise_batch_norm(model, generator):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(0.2 * torch.randn(c, generator=generator))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=generator))
                m.weight.copy_(0.5 + torch.rand(c, generator=generator))
                m.bias.copy_(0.2 * torch.randn(c, generator=generator))


def training_loss(model, x, target):
    """Training mode without dropout (BatchNorm on batch statistics, everything deterministic):
    the mean cross-entropy of the main logits."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    if hasattr(model, "drop_rate"):
        model.drop_rate = 0.0  # timm applies its head dropout functionally
    out = model(x)
    main = out.logits if hasattr(out, "logits") else out
    return F.cross_entropy(main, target)


def run(model, x, target):
    """Evaluation-mode logits, then the training-mode loss and gradients (dropout off)."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
    loss = training_loss(model, x, target)
    loss.backward()
    grads = {k: p.grad.detach() for k, p in model.named_parameters() if p.grad is not None}
    return logits, loss.detach(), grads


def relative(ours, exact):
    return ((ours.double() - exact).norm() / exact.norm().clamp_min(1e-300)).item()


def worst_gradient_error(grads, exact):
    """The worst relative error in norm over a model's gradients, as tests/torch_equality.rs
    measures it: a gradient that is zero in exact arithmetic (below 1e-6 of the largest, such as
    a convolution's bias right before a training-mode BatchNorm) against the largest's norm."""
    largest = max(g.double().norm().item() for g in exact.values())
    worst = 0.0
    for k, g in exact.items():
        g = g.double()
        scale = largest if g.norm().item() < 1e-6 * largest else g.norm().item()
        worst = max(worst, (grads[k].double() - g).norm().item() / scale)
    return worst


def variant_errors(make, state, x, target, logits, loss, grads):
    """PyTorch float32 computed four equally valid ways (2 threads with oneDNN, 1 thread,
    channels-last, native convolution); the worst error of any of them against float64."""
    def fresh():
        model = make().float()
        model.load_state_dict(state)
        return model

    results = []
    torch.set_num_threads(2)
    results.append(run(fresh(), x, target))
    torch.set_num_threads(1)
    results.append(run(fresh(), x, target))
    torch.set_num_threads(2)
    results.append(run(fresh().to(memory_format=torch.channels_last),
                       x.to(memory_format=torch.channels_last), target))
    with torch.backends.mkldnn.flags(enabled=False):
        results.append(run(fresh(), x, target))
    scale = logits.abs().max().item()
    return {
        "torch_f32_variants_logits_error": max(
            (l.double() - logits).abs().max().item() / scale for l, _, _ in results),
        "torch_f32_variants_loss_error": max(
            abs(o.item() - loss.item()) / abs(loss.item()) for _, o, _ in results),
        "torch_f32_variants_gradient_error": max(
            worst_gradient_error(g, grads) for _, _, g in results),
    }


# The layers whose float32 rounding the spread below models (ReLU and dropout add none).
COMPUTING = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.MaxPool2d, nn.AvgPool2d,
             nn.AdaptiveAvgPool2d, nn.LocalResponseNorm)
SPREAD_SAMPLES = 16


def loss_spread(make, state, x, target):
    """How far float32 rounding alone moves the training-mode loss: the standard deviation of
    its relative error when PyTorch's own float32 errors fall in other patterns.

    Each computing layer's float32 error is measured once, by running a float32 copy of it on
    the float64 network's input to that layer; then the float64 network runs SPREAD_SAMPLES
    times with Gaussian noise of that size added to every such layer's output. A deep network
    in training mode can be so sensitive to its first layers (ResNet-152 here: noise at the size
    of one float32 rounding, in conv1's output alone, moves the loss by 4e-5) that whether a
    float32 loss lands within 1e-4 of the exact one is a matter of luck, for PyTorch too."""
    model = make().double()
    model.load_state_dict({k: v.double() if v.is_floating_point() else v
                           for k, v in state.items()})
    layers = [m for m in model.modules() if isinstance(m, COMPUTING)]
    singles = {id(layer): copy.deepcopy(layer).float() for layer in layers}
    error_size = {}
    noise = {"on": False, "generator": torch.Generator().manual_seed(0)}

    def hook(layer, inputs, output):
        if not noise["on"]:
            with torch.no_grad():
                rounded = singles[id(layer)](*(i.float() for i in inputs)).double()
            size = (rounded - output).pow(2).mean().sqrt().item()
            error_size[id(layer)] = max(error_size.get(id(layer), 0.0), size)
            return None
        draw = torch.randn(output.shape, generator=noise["generator"], dtype=output.dtype)
        return output + error_size[id(layer)] * draw

    handles = [layer.register_forward_hook(hook) for layer in layers]
    x = x.double()
    with torch.no_grad():
        exact = training_loss(model, x, target).item()
        noise["on"] = True
        errors = torch.tensor([(training_loss(model, x, target).item() - exact) / abs(exact)
                               for _ in range(SPREAD_SAMPLES)])
    for handle in handles:
        handle.remove()
    return errors.std().item()


def read_fixture(out_dir, name):
    """A written fixture's weights, the path of its io file, that file's metadata and tensors."""
    directory = os.path.join(out_dir, name)
    state = load_file(os.path.join(directory, "weights.safetensors"))
    io_path = os.path.join(directory, "io.safetensors")
    with safe_open(io_path, "pt") as f:
        metadata = f.metadata()
    return state, io_path, metadata, load_file(io_path)


def add_spread(out_dir, name, make):
    """Adds the loss spread to a fixture written without it."""
    state, io_path, metadata, io = read_fixture(out_dir, name)
    spread = loss_spread(make, state, io["input"], io["target"])
    metadata["torch_f32_loss_spread"] = f"{spread:.6e}"
    save_file(io, io_path, metadata=metadata)
    print(f"{name}: float32 loss spread {spread:.2e}", flush=True)


def write_fixture(out_dir, name, make, input_shape, meta, seed):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = make().float()
    randomise_batch_norm(model, generator)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    x = torch.randn([2] + input_shape, generator=generator)
    target = torch.randint(0, CLASSES, (2,), generator=generator)

    # The reference is computed in float64 from the float32 weights and input: the exact answer
    # for the stored numbers, up to f64 rounding. Deep networks in training mode can be badly
    # conditioned (gradients growing layer by layer, pre-activations a hair from a ReLU kink,
    # BatchNorm over 2 values on a 1 x 1 map), so that PyTorch's own float32 result misses the
    # exact one by more than the tolerances; how far it misses is stored too.
    exact_model = copy.deepcopy(model).double()
    logits, loss, grads = run(exact_model, x.double(), target)
    logits32, loss32, grads32 = run(model, x, target)
    torch_error = {
        "torch_f32_logits_error": (logits32.double() - logits).abs().max().item()
        / logits.abs().max().item(),
        "torch_f32_loss_error": abs(loss32.item() - loss.item()) / abs(loss.item()),
    }
    grad_errors = {f"grad.{k}": f"{relative(grads32[k], g):.6e}" for k, g in grads.items()}
    torch_error.update(variant_errors(make, state, x, target, logits, loss, grads))
    torch_error["torch_f32_loss_spread"] = loss_spread(make, state, x, target)

    directory = os.path.join(out_dir, name)
    os.makedirs(directory, exist_ok=True)
    metadata = {"model": name, "seed": str(seed), "reference": "float64"}
    metadata.update(meta)
    metadata.update({k: f"{v:.6e}" for k, v in torch_error.items()})
    save_file(state, os.path.join(directory, "weights.safetensors"))
    save_file(
        {"input": x, "target": target, "logits": logits.float(),
         "loss": loss.float().reshape(1)},
        os.path.join(directory, "io.safetensors"),
        metadata=metadata,
    )
    save_file(
        {f"grad.{k}": g.float().contiguous() for k, g in grads.items()},
        os.path.join(directory, "grads.safetensors"),
        metadata=grad_errors,
    )
    worst = max(grad_errors.items(), key=lambda kv: float(kv[1]))
    print(f"{name}: input {list(x.shape)}, |logits| max {logits.abs().max():.4g}, "
          f"loss {loss.item():.6f}, {len(grads)} gradients; PyTorch float32 against float64: "
          f"logits {torch_error['torch_f32_logits_error']:.2e}, "
          f"loss {torch_error['torch_f32_loss_error']:.2e}, worst gradient {worst[1]} "
          f"({worst[0]}); worst float32 variant: gradient "
          f"{torch_error['torch_f32_variants_gradient_error']:.2e}, loss "
          f"{torch_error['torch_f32_variants_loss_error']:.2e}", flush=True)


def add_variants(out_dir, name, make):
    """Adds the float32 variants' errors to a fixture written without them."""
    state, io_path, metadata, io = read_fixture(out_dir, name)
    directory = os.path.join(out_dir, name)
    grads = {k.removeprefix("grad."): g.double()
             for k, g in load_file(os.path.join(directory, "grads.safetensors")).items()}
    # The stored float64 results were rounded to float32; the exact values are recomputed.
    exact_model = make().double()
    exact_model.load_state_dict({k: v.double() if v.is_floating_point() else v
                                 for k, v in state.items()})
    logits, loss, grads = run(exact_model, io["input"].double(), io["target"])
    errors = variant_errors(make, state, io["input"], io["target"], logits, loss, grads)
    metadata.update({k: f"{v:.6e}" for k, v in errors.items()})
    save_file(io, io_path, metadata=metadata)
    print(f"{name}: worst float32 variant against float64: logits "
          f"{errors['torch_f32_variants_logits_error']:.2e}, loss "
          f"{errors['torch_f32_variants_loss_error']:.2e}, gradient "
          f"{errors['torch_f32_variants_gradient_error']:.2e}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--models", help="comma-separated names (default: all)")
    parser.add_argument("--small", action="store_true", help="the small committed configurations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants-only", action="store_true",
                        help="add the float32 variants' errors to existing fixtures in OUT_DIR")
    parser.add_argument("--spread-only", action="store_true",
                        help="add the float32 loss spread to existing fixtures in OUT_DIR")
    args = parser.parse_args()
    torch.set_num_threads(2)
    table = small() if args.small else full_size()
    names = args.models.split(",") if args.models else list(table)
    for name in names:
        if name not in table:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(table)}")
        make, input_shape, meta = table[name]
        exists = os.path.isdir(os.path.join(args.out_dir, name))
        if args.variants_only or args.spread_only:
            if exists and args.variants_only:
                add_variants(args.out_dir, name, make)
            if exists and args.spread_only:
                add_spread(args.out_dir, name, make)
        else:
            write_fixture(args.out_dir, name, make, input_shape, meta, args.seed)


if __name__ == "__main__":
    main()
