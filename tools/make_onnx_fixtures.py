"""Small PyTorch models -> real ONNX files plus inputs and torch's outputs (tests/fixtures/onnx/).

Each case writes `<case>.onnx`, exported by torch's TorchScript exporter
(`dynamo=False`, opset 17, a dynamic batch axis), and `<case>.npz` holding the
inputs and torch's outputs at two batch sizes, under the keys
`in.<input name>.<batch>` and `out.<output name>.<batch>`. The mdl tests use the
committed files and never need torch. Every parameter and buffer is randomised
so that no default-initialised identity (unit LayerNorm weight, zero
BatchNorm mean) can hide a bug, and scaled so that the outputs clearly depend
on the input.

Run with torch 2.13 (`pip install torch==2.13.0`):
    python tools/make_onnx_fixtures.py [--out DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "onnx"
OPSET = 17
BATCH_SIZES = (2, 5)
TOTAL_LIMIT_BYTES = 3 * 1024 * 1024


# ---------------------------------------------------------------- models
# Attribute names become the state-dict keys the importer should recover.


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 48)
        self.fc2 = nn.Linear(48, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        h = torch.tanh(self.fc2(h))
        return torch.softmax(self.fc3(h), dim=-1)


class LeNet(nn.Module):
    """LeNet-5 in the torchvision layout: `features` and `classifier` Sequentials."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(400, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(out + residual)


class ResNet20(nn.Module):
    """ResNet-20 for 32x32 CIFAR images (He et al. 2016, section 4.2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._stage(16, 16, 1)
        self.layer2 = self._stage(16, 32, 2)
        self.layer3 = self._stage(32, 64, 2)
        self.fc = nn.Linear(64, 10)

    @staticmethod
    def _stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
        blocks = [BasicBlock(in_channels, out_channels, stride)]
        blocks += [BasicBlock(out_channels, out_channels) for _ in range(2)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, dim = x.shape
        head_dim = dim // self.heads
        q, k, v = self.qkv(x).split(dim, dim=-1)
        q, k, v = (t.reshape(batch, steps, self.heads, head_dim).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)
        future = torch.ones(steps, steps, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(batch, steps, dim))


class FeedForward(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 4 * dim)
        self.proj = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(nn.functional.gelu(self.fc(x)))


class GptBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Gpt(nn.Module):
    """A GPT-style decoder: token and position embeddings, pre-norm blocks, a head."""

    def __init__(self, vocab: int = 64, context: int = 16, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(GptBlock(dim, heads) for _ in range(2))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str
    module: Callable[[], nn.Module]
    input_name: str
    output_name: str
    make_input: Callable[[int], torch.Tensor]
    weight_scale: float
    dynamic: tuple[str, ...] = ("batch",)  # names of the input's leading dynamic axes


CASES = (
    Case("mlp", Mlp, "x", "probs", lambda b: torch.randn(b, 64), 2.0),
    Case("lenet", LeNet, "x", "logits", lambda b: torch.randn(b, 1, 28, 28), 1.5),
    Case("resnet20", ResNet20, "x", "logits", lambda b: torch.randn(b, 3, 32, 32), 1.0),
    # the sequence is dynamic too: 16 steps at batch 2, 11 at batch 5
    Case(
        "gpt",
        Gpt,
        "ids",
        "logits",
        lambda b: torch.randint(0, 64, (b, 16 if b == 2 else 11)),
        1.0,
        ("batch", "seq"),
    ),
)


def randomise(module: nn.Module, scale: float) -> None:
    """Every parameter and buffer random, drawn from the global RNG: matrices and kernels
    scaled by 1/sqrt(fan_in) (so deep stacks neither vanish nor saturate), norm weights near
    1, biases and running statistics small but never zero."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if param.ndim >= 2:
                fan_in = param[0].numel() if "tok" not in name and "pos" not in name else 1
                param.copy_(torch.randn_like(param) * (scale / fan_in**0.5))
            elif leaf == "weight":
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            else:
                param.copy_(0.2 * torch.randn_like(param))
        for name, buffer in module.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            match leaf:
                case "running_mean":
                    buffer.copy_(torch.randn_like(buffer) * 0.1)
                case "running_var":
                    buffer.copy_(torch.rand_like(buffer) + 0.5)
                case "num_batches_tracked":
                    buffer.fill_(7)
                case _:
                    raise ValueError(f"no randomisation rule for buffer {name!r}")


def export(case: Case, out_dir: Path) -> list[Path]:
    torch.manual_seed(sum(map(ord, case.name)))
    module = case.module()
    randomise(module, case.weight_scale)
    module.eval()
    example = case.make_input(BATCH_SIZES[0])
    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        (example,),
        buffer,
        dynamo=False,
        opset_version=OPSET,
        input_names=[case.input_name],
        output_names=[case.output_name],
        dynamic_axes={
            case.input_name: dict(enumerate(case.dynamic)),
            case.output_name: dict(enumerate(case.dynamic)),
        },
    )
    onnx_path = out_dir / f"{case.name}.onnx"
    onnx_path.write_bytes(buffer.getvalue())
    arrays: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for batch in BATCH_SIZES:
            x = case.make_input(batch)
            y = module(x)
            arrays[f"in.{case.input_name}.{batch}"] = x.numpy()
            arrays[f"out.{case.output_name}.{batch}"] = y.numpy().astype(np.float32)
    io_path = out_dir / f"{case.name}.npz"
    np.savez_compressed(io_path, **arrays)
    return [onnx_path, io_path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", default=None, help="case names to regenerate")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        for path in export(case, args.out):
            print(
                f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}"
                f"  {path.stat().st_size} bytes"
            )
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.suffix in (".onnx", ".npz"))
    if total > TOTAL_LIMIT_BYTES:
        print(f"warning: fixtures total {total} bytes, over the {TOTAL_LIMIT_BYTES} limit")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
