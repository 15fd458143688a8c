"""PyTorch half of `benches/versus.sh`: times the cases `examples/speed.rs` lists (same
architectures, widths and inputs) and prints prunus ÷ PyTorch for each.

    python3 benches/versus.py CASES.json [--speed BIN] [--threads N] [--runs N]

CASES.json is the file `speed --list --json CASES.json` (or `speed --json CASES.json`) writes.
With `--speed BIN` (the `speed` example's binary) each case is timed by prunus right before
PyTorch times it, so that both halves of a ratio see the machine in the same state; without,
the prunus timings in CASES.json are used. Forward
cases run in eval mode under `torch.inference_mode()`, BatchNorm folded into the convolution as
prunus folds it; training cases time one Adam step of the gated network (per-filter gates, BCE +
soft Jaccard + gate L1, the loss read back with `.item()`), as prunus's `train` does.
PyTorch is optional: nothing in the test suite needs it.
"""

import argparse
import json
import statistics
import subprocess
import tempfile
import time

import torch
from torch import nn
import torch.nn.functional as F


class GatedConv(nn.Module):
    """conv → optional BatchNorm → per-filter gate → optional ReLU (prunus's gated layer)."""

    def __init__(self, cin, cout, k=3, pad=1, bn=False, transpose=None, relu=True):
        super().__init__()
        if transpose is None:
            self.conv = nn.Conv2d(cin, cout, k, padding=pad, bias=not bn)
        else:
            stride, out_pad = transpose
            self.conv = nn.ConvTranspose2d(
                cin, cout, k, stride=stride, padding=pad, output_padding=out_pad
            )
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.gate = nn.Parameter(torch.ones(cout))
        self.relu = relu

    def forward(self, x):
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        if self.gate is not None:
            y = y * self.gate.view(1, -1, 1, 1)
        return F.relu(y) if self.relu else y

    def fold(self):
        """Gate and BatchNorm folded into the convolution, as `fold_for_inference` does."""
        with torch.no_grad():
            w = self.conv.weight
            transpose = isinstance(self.conv, nn.ConvTranspose2d)
            cout = w.shape[1] if transpose else w.shape[0]
            scale = self.gate.detach().clone()
            bias = self.conv.bias.detach().clone() if self.conv.bias is not None else torch.zeros(cout)
            if self.bn is not None:
                s = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
                bias = (bias - self.bn.running_mean) * s + self.bn.bias
                scale = scale * s
                self.bn = None
            bias = bias * self.gate.detach()
            shape = (1, -1, 1, 1) if transpose else (-1, 1, 1, 1)
            w.mul_(scale.view(shape))
            self.conv.bias = nn.Parameter(bias)
            self.gate = None


def unet(cfg):
    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = cfg["in_channels"]
            self.enc = nn.ModuleList()
            for a, b in cfg["encoder"]:
                self.enc.append(nn.Sequential(GatedConv(c, a, bn=True), GatedConv(a, b, bn=True)))
                c = b
            depth = len(cfg["decoder"])
            self.dec = nn.ModuleList()
            for j, (up, a, b) in enumerate(cfg["decoder"]):
                skip = cfg["encoder"][depth - 1 - j][1]
                self.dec.append(
                    nn.ModuleList(
                        [
                            GatedConv(c, up, k=2, pad=0, transpose=(2, 0), relu=False),
                            GatedConv(skip + up, a, bn=True),
                            GatedConv(a, b, bn=True),
                        ]
                    )
                )
                c = b
            self.head = nn.Conv2d(c, cfg["num_classes"], 1)

        def forward(self, x):
            skips = []
            for i, block in enumerate(self.enc):
                if i > 0:
                    x = F.max_pool2d(x, 2)
                x = block(x)
                skips.append(x)
            skips.pop()
            for up, c1, c2 in self.dec:
                x = c2(c1(torch.cat([skips.pop(), up(x)], 1)))
            return self.head(x)

    return UNet()


def ternausnet(cfg):
    class TernausNet(nn.Module):
        def __init__(self):
            super().__init__()
            e = cfg["encoder"]
            cin = [cfg["in_channels"], e[0], e[1], e[2], e[3], e[4], e[5], e[6]]
            self.enc = nn.ModuleList(GatedConv(i, o) for i, o in zip(cin, e))
            skips = [e[7], e[5], e[3], e[1], e[0]]  # conv5, conv4, conv3, conv2, conv1
            c = e[7]
            self.dec = nn.ModuleList()
            for i, (mid, out) in enumerate(cfg["decoder"]):
                block = nn.Sequential(
                    GatedConv(c, mid), GatedConv(mid, out, transpose=(2, 1))
                )
                self.dec.append(block)
                c = out + skips[i]
            self.dec1 = GatedConv(c, cfg["dec1"])
            self.head = nn.Conv2d(cfg["dec1"], cfg["num_classes"], 1)

        def forward(self, x):
            pool = lambda t: F.max_pool2d(t, 2)
            c = self.enc
            conv1 = c[0](x)
            conv2 = c[1](pool(conv1))
            conv3 = c[3](c[2](pool(conv2)))
            conv4 = c[5](c[4](pool(conv3)))
            conv5 = c[7](c[6](pool(conv4)))
            x = self.dec[0](pool(conv5))
            for block, skip in zip(self.dec[1:], [conv5, conv4, conv3, conv2]):
                x = block(torch.cat([x, skip], 1))
            x = self.dec1(torch.cat([x, conv1], 1))
            return self.head(x)

    return TernausNet()


def build(architecture):
    family, cfg = architecture["family"], architecture["config"]
    return {"unet": unet, "ternausnet": ternausnet}[family](cfg)


def median_ms(step, runs):
    step()
    step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def time_forward(case, runs):
    net = build(case["architecture"]).eval()
    for m in net.modules():
        if isinstance(m, GatedConv):
            m.fold()
    x = torch.rand(case["input"])

    def step():
        with torch.inference_mode():
            net(x)

    return median_ms(step, runs)


def time_train(case, runs):
    net = build(case["architecture"]).train()
    b, _, h, w = case["input"]
    x = torch.rand(case["input"])
    masks = (torch.rand(b, 1, h, w) < 0.1).float()
    gates = [m.gate for m in net.modules() if isinstance(m, GatedConv)]
    optim = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step():
        logits = net(x)
        bce = F.binary_cross_entropy_with_logits(logits, masks)
        p = torch.sigmoid(logits)
        inter = (p * masks).sum()
        jaccard = (inter + 1) / (p.sum() + masks.sum() - inter + 1)
        loss = bce + (1 - jaccard) + 1e-4 * sum(g.abs().sum() for g in gates)
        optim.zero_grad()
        loss.backward()
        optim.step()
        loss.item()

    return median_ms(step, runs)


def prunus_ms(speed, name, runs):
    """prunus's median ms for case `name`, timed now by the `speed` binary."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [speed, "--case", name, "--runs", str(runs), "--json", out.name],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(out.name) as f:
            return json.load(f)["cases"][0]["ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all cores)")
    parser.add_argument("--runs", type=int, default=None, help="as the cases file by default")
    parser.add_argument("--speed", help="the speed example's binary: time prunus case by case")
    args = parser.parse_args()
    with open(args.cases) as f:
        doc = json.load(f)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.runs or doc["runs"]
    torch.manual_seed(0)
    print(f"prunus on {doc['device']}; PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"| case | GMACs | prunus ms | PyTorch ms | prunus ÷ PyTorch |")
    print(f"| --- | ---: | ---: | ---: | ---: |")
    by_name = {c["name"]: c for c in doc["cases"]}
    rows = []
    for case in doc["cases"]:
        if args.speed:
            case["ms"] = prunus_ms(args.speed, case["name"], runs)
        ms = time_train(case, runs) if case["kind"] == "train" else time_forward(case, runs)
        rows.append((case, ms))
        print(
            f"| {case['name']} | {case['gmacs']:.3f} | {case['ms']:.1f} | {ms:.1f} "
            f"| {case['ms'] / ms:.2f} |",
            flush=True,
        )
    pruned = [(c, ms) for c, ms in rows if c["pruned_from"]]
    if pruned:
        torch_ms = {c["name"]: ms for c, ms in rows}
        print()
        print("| pruned case | MAC ratio | prunus speed-up | ÷ MAC ratio | PyTorch speed-up | ÷ MAC ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for case, ms in pruned:
            base = by_name[case["pruned_from"]]
            ratio = base["gmacs"] / case["gmacs"]
            ours = base["ms"] / case["ms"]
            theirs = torch_ms[base["name"]] / ms
            print(
                f"| {case['name']} | {ratio:.2f} | {ours:.2f} | {ours / ratio:.2f} "
                f"| {theirs:.2f} | {theirs / ratio:.2f} |"
            )


if __name__ == "__main__":
    main()
