"""Exports a torchvision (or timm) model's state_dict() to safetensors for convgrad.

    python scripts/export_weights.py resnet18 --pretrained resnet18.safetensors
    python scripts/export_weights.py mobilenet_v2 --random --seed 0 --classes 10 mnv2.safetensors
    python scripts/export_weights.py resnet50 --pretrained --dtype f16 resnet50-f16.safetensors

Names are those of `state_dict()`, which convgrad's zoo uses as they are: torchvision's, and
timm's for `xception` (timm `legacy_xception`) and `mobilenet_v1` (timm `mobilenetv1_100`).
`--pretrained` downloads the ImageNet weights (torchvision's DEFAULT, timm's default tag) and
needs internet; `--random --seed N` builds the model with its own random initialisation.

GoogLeNet and Inception-v3: torchvision's pretrained builders keep the auxiliary heads' weights
only in training; `--aux` exports them too (convgrad then builds the heads). Both were trained
with `transform_input=True`, which convgrad does not apply inside the model: `convgrad predict`
normalises their input with mean 0.5 and std 0.5, which is the same thing.

Needs torch, torchvision, timm and safetensors; never needed by the build or the tests.
"""
import argparse

import torch
import torchvision.models as tv
from safetensors.torch import save_file

TIMM = {"xception": "legacy_xception", "mobilenet_v1": "mobilenetv1_100"}
TORCHVISION = [
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
    "vgg19_bn", "googlenet", "inception_v3", "resnet18", "resnet34", "resnet50", "resnet101",
    "resnet152", "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2",
]
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64}


def build(name, pretrained, classes, aux):
    if name in TIMM:
        import timm

        kwargs = {} if classes is None else {"num_classes": classes}
        return timm.create_model(TIMM[name], pretrained=pretrained, **kwargs)
    if name not in TORCHVISION:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(TORCHVISION + list(TIMM))}")
    kwargs = {}
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = aux
        if not pretrained:
            kwargs["init_weights"] = True
    if pretrained:
        if classes not in (None, 1000):
            raise SystemExit("--classes applies to --random only (pretrained weights have 1000)")
        # Without aux_logits=True the pretrained builders load the heads and then drop them.
        return tv.get_model(name, weights="DEFAULT", **kwargs)
    return tv.get_model(name, weights=None, num_classes=classes or 1000, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a convgrad zoo name: resnet18, xception, mobilenet_v1, ...")
    parser.add_argument("output", help="the .safetensors file to write")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pretrained", action="store_true", help="ImageNet weights (internet)")
    source.add_argument("--random", action="store_true", help="random initialisation")
    parser.add_argument("--seed", type=int, default=0, help="seed for --random")
    parser.add_argument("--classes", type=int, help="class count for --random (default 1000)")
    parser.add_argument("--aux", action="store_true", help="GoogLeNet/Inception-v3 aux heads")
    parser.add_argument("--dtype", choices=DTYPES, default="f32",
                        help="floating-point type of the file (convgrad converts to f32)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = build(args.model, args.pretrained, args.classes, args.aux)
    dtype = DTYPES[args.dtype]
    state = {
        name: (t.to(dtype) if t.is_floating_point() else t).detach().contiguous()
        for name, t in model.state_dict().items()
    }
    save_file(state, args.output, metadata={"model": args.model, "source": "pretrained"
                                            if args.pretrained else f"random seed {args.seed}"})
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {len(state)} tensors, {params:,} parameters -> {args.output}")


if __name__ == "__main__":
    main()
