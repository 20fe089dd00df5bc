"""PyTorch's side of `convgrad bench`: training and inference images per second and peak memory
for one zoo model on random data, with the same protocol (SGD with momentum 0.9, lr 0.01, two
warm-up steps, the median of the timed steps; peak resident memory per phase, reset between
phases through /proc/self/clear_refs).

    python3 scripts/torch_bench.py MODEL [--batch-size B] [--size H] [--steps S] [--threads T]

Needs torch, torchvision and timm (for xception and mobilenet_v1); never needed by the build or
the tests. Prints one JSON line. Run it in its own process per model, as `convgrad bench` is, so
peak memory belongs to one model.
"""
import argparse, json, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    """convgrad's lenet5 (and ../shared/bench/torch_train.py's): 5x5 convs, max pools, 3 FCs."""
    def __init__(self, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2); self.c2 = nn.Conv2d(6, 16, 5)
        self.f1 = nn.Linear(16 * 5 * 5, 120); self.f2 = nn.Linear(120, 84); self.f3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = x.flatten(1)
        return self.f3(F.relu(self.f2(F.relu(self.f1(x)))))


def make(name, classes):
    import torchvision.models as tv
    if name == "lenet5":
        return LeNet5(classes)
    if name in ("xception", "mobilenet_v1"):
        import timm
        timm_name = {"xception": "legacy_xception", "mobilenet_v1": "mobilenetv1_100"}[name]
        return timm.create_model(timm_name, pretrained=False, num_classes=classes)
    if name in ("googlenet", "inception_v3"):
        return getattr(tv, name)(num_classes=classes, aux_logits=False, init_weights=False)
    return getattr(tv, name)(num_classes=classes)


def peak_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--size", type=int)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    channels = 1 if args.model == "lenet5" else 3
    size = args.size or (28 if args.model == "lenet5" else 32)
    model = make(args.model, 10)
    x = torch.randn(args.batch_size, channels, size, size)
    y = torch.randint(0, 10, (args.batch_size,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    reset_peak()
    model.train()
    train = []
    for i in range(2 + args.steps):
        t = time.perf_counter(); step(); dt = time.perf_counter() - t
        if i >= 2:
            train.append(dt)
    peak_train = peak_bytes()
    reset_peak()
    model.eval()
    infer = []
    with torch.no_grad():
        for i in range(2 + args.steps):
            t = time.perf_counter(); model(x); dt = time.perf_counter() - t
            if i >= 2:
                infer.append(dt)
    peak_infer = peak_bytes()
    n = args.batch_size
    print(json.dumps(dict(
        model=args.model, batch=n, size=size, threads=args.threads,
        train_img_s=round(n / statistics.median(train), 1),
        infer_img_s=round(n / statistics.median(infer), 1),
        peak_train_mb=round(peak_train / 2**20) if peak_train else None,
        peak_infer_mb=round(peak_infer / 2**20) if peak_infer else None,
    )), flush=True)


if __name__ == "__main__":
    main()
