"""PyTorch modules -> reference fixtures (tests/fixtures/torch/<case>.safetensors + .json).

Each fixture holds one small torch module's state dict under its exact keys,
the input it was run on (`__input__`) and torch's output (`__output__`), so the
mdl tests can load real state dicts by name and compare against torch without
torch being installed. Every parameter and buffer is randomised so that a
default-initialised identity (unit LayerNorm weight, zero BatchNorm mean, ...)
cannot hide a bug.

Run with torch 2.13 (`pip install torch==2.13.0`):
    python tools/make_torch_fixtures.py [--out DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "torch"
SIZE_LIMIT_BYTES = 300 * 1024
RESERVED_KEYS = ("__input__", "__input2__", "__output__")


# ---------------------------------------------------------------- modules
# Attribute names below are the state-dict keys the mdl stdlib mirrors: do not rename.


class BasicBlock(nn.Module):
    """ResNet basic block (CIFAR layout) with a projection shortcut when shapes change."""

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


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a fused qkv projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, dim = x.shape
        head_dim = dim // self.heads
        q, k, v = self.qkv(x).split(dim, dim=-1)
        q, k, v = (t.reshape(batch, steps, self.heads, head_dim).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)
        future = torch.arange(steps)[None, :] > torch.arange(steps)[:, None]
        scores = scores.masked_fill(future, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(batch, steps, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 4 * dim)
        self.proj = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(nn.functional.gelu(self.fc(x)))


class GptBlock(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Gpt(nn.Module):
    def __init__(self, vocab: int, context: int, dim: int, heads: int, layers: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(GptBlock(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


class CifarResNet(nn.Module):
    """ResNet-6n+2 for CIFAR (He et al. 2016, section 4.2) with n blocks per stage."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._stage(16, 16, 1, blocks_per_stage)
        self.layer2 = self._stage(16, 32, 2, blocks_per_stage)
        self.layer3 = self._stage(32, 64, 2, blocks_per_stage)
        self.fc = nn.Linear(64, num_classes)

    @staticmethod
    def _stage(in_channels: int, out_channels: int, stride: int, count: int) -> nn.Sequential:
        blocks = [BasicBlock(in_channels, out_channels, stride)]
        blocks += [BasicBlock(out_channels, out_channels, 1) for _ in range(count - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean(dim=(2, 3)))


class Softmax(nn.Module):
    """Softmax / log-softmax over the last axis (nn.Softmax has no log variant flag)."""

    def __init__(self, log: bool) -> None:
        super().__init__()
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(x, dim=-1) if self.log else torch.softmax(x, dim=-1)


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], nn.Module]
    make_input: Callable[[], torch.Tensor]
    description: str


def normal(*shape: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.randn(*shape)


def spread(*shape: int) -> Callable[[], torch.Tensor]:
    """Values over about [-6, 6] so activations see both tails."""
    return lambda: torch.rand(*shape) * 12.0 - 6.0


def ids(high: int, *shape: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.randint(0, high, shape, dtype=torch.int64)


def activation(name: str, module: Callable[[], nn.Module], description: str) -> Case:
    return Case(name, module, spread(3, 10), description)


CASES: tuple[Case, ...] = (
    Case("dense", lambda: nn.Linear(12, 7), normal(3, 12), "nn.Linear(12, 7)"),
    Case(
        "dense_nobias",
        lambda: nn.Linear(12, 7, bias=False),
        normal(3, 12),
        "nn.Linear(12, 7, bias=False)",
    ),
    Case(
        "conv1d",
        lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1),
        normal(2, 4, 11),
        "nn.Conv1d(4, 6, 3, stride=2, padding=1)",
    ),
    Case(
        "conv2d",
        lambda: nn.Conv2d(3, 8, 3, stride=1, padding=1),
        normal(2, 3, 9, 9),
        "nn.Conv2d(3, 8, 3, stride=1, padding=1)",
    ),
    Case(
        "conv2d_strided_dilated",
        lambda: nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2),
        normal(2, 4, 11, 10),
        "nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2)",
    ),
    Case(
        "conv2d_groups",
        lambda: nn.Conv2d(6, 9, 3, padding=1, groups=3, bias=False),
        normal(1, 6, 7, 7),
        "nn.Conv2d(6, 9, 3, padding=1, groups=3, bias=False)",
    ),
    Case(
        "conv2d_depthwise",
        lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4),
        normal(2, 4, 8, 8),
        "nn.Conv2d(4, 4, 3, padding=1, groups=4)",
    ),
    Case(
        "batchnorm2d",
        lambda: nn.BatchNorm2d(5),
        normal(2, 5, 4, 4),
        "nn.BatchNorm2d(5) in eval mode (uses running statistics, eps=1e-5)",
    ),
    Case("layernorm", lambda: nn.LayerNorm(16), normal(2, 3, 16), "nn.LayerNorm(16), eps=1e-5"),
    Case(
        "rmsnorm",
        lambda: nn.RMSNorm(16, eps=1e-6),
        normal(2, 3, 16),
        "nn.RMSNorm(16, eps=1e-6)",
    ),
    Case("embedding", lambda: nn.Embedding(20, 8), ids(20, 2, 5), "nn.Embedding(20, 8)"),
    Case("maxpool2d", lambda: nn.MaxPool2d(2), normal(2, 3, 8, 8), "nn.MaxPool2d(2)"),
    Case(
        "maxpool2d_s",
        lambda: nn.MaxPool2d(3, stride=2, padding=1),
        normal(1, 2, 9, 9),
        "nn.MaxPool2d(3, stride=2, padding=1) (padding counts as -inf)",
    ),
    Case("avgpool2d", lambda: nn.AvgPool2d(2), normal(2, 3, 8, 8), "nn.AvgPool2d(2)"),
    Case(
        "avgpool2d_pad",
        lambda: nn.AvgPool2d(3, stride=2, padding=1),
        normal(1, 2, 9, 9),
        "nn.AvgPool2d(3, stride=2, padding=1), count_include_pad=True: padded zeros count",
    ),
    Case(
        "global_avg_pool",
        lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        normal(2, 5, 4, 4),
        "nn.AdaptiveAvgPool2d(1) then nn.Flatten(): [B, C, H, W] -> [B, C]",
    ),
    Case("flatten", lambda: nn.Flatten(), normal(2, 3, 4, 4), "nn.Flatten(): [B, ...] -> [B, -1]"),
    activation("relu", nn.ReLU, "nn.ReLU()"),
    activation("gelu_erf", nn.GELU, "nn.GELU() (exact, erf form)"),
    activation("gelu_tanh", lambda: nn.GELU(approximate="tanh"), 'nn.GELU(approximate="tanh")'),
    activation("silu", nn.SiLU, "nn.SiLU()"),
    activation("sigmoid", nn.Sigmoid, "nn.Sigmoid()"),
    activation("softmax", lambda: Softmax(log=False), "softmax over dim=-1"),
    activation("log_softmax", lambda: Softmax(log=True), "log_softmax over dim=-1"),
    Case(
        "basic_block_same",
        lambda: BasicBlock(8, 8, 1),
        normal(2, 8, 8, 8),
        "BasicBlock(in=8, out=8, stride=1): identity shortcut",
    ),
    Case(
        "basic_block_down",
        lambda: BasicBlock(8, 16, 2),
        normal(2, 8, 8, 8),
        "BasicBlock(in=8, out=16, stride=2): shortcut = Sequential(Conv2d 1x1 stride 2, BatchNorm2d)",
    ),
    Case(
        "attention",
        lambda: CausalSelfAttention(16, 4),
        normal(2, 6, 16),
        "CausalSelfAttention(D=16, H=4): qkv = Linear(D, 3D), proj = Linear(D, D)",
    ),
    Case(
        "gpt_block",
        lambda: GptBlock(16, 4),
        normal(2, 6, 16),
        "pre-norm GptBlock(D=16, H=4): x + attn(ln1(x)); x + mlp(ln2(x)), mlp = proj(gelu_erf(fc(x)))",
    ),
    Case(
        "gpt",
        lambda: Gpt(vocab=32, context=8, dim=16, heads=4, layers=2),
        ids(32, 2, 8),
        "Gpt(V=32, T=8, D=16, H=4, 2 blocks): head(ln_f(blocks(tok(ids) + pos(arange(T)))))",
    ),
    Case(
        "resnet20_tiny",
        lambda: CifarResNet(blocks_per_stage=1),
        normal(2, 3, 16, 16),
        "CIFAR ResNet, 1 BasicBlock per stage (16, 32/2, 64/2), global average pool, fc",
    ),
)


# ---------------------------------------------------------------- generation


def randomise(module: nn.Module) -> None:
    """Overwrite every parameter and buffer with random values, drawn from the global RNG."""
    with torch.no_grad():
        for _, param in module.named_parameters():
            param.copy_(torch.randn_like(param) * 0.5)
        for name, buffer in module.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            match leaf:
                case "running_mean":
                    buffer.copy_(torch.randn_like(buffer))
                case "running_var":
                    buffer.copy_(torch.rand_like(buffer) + 0.5)
                case "num_batches_tracked":
                    buffer.fill_(7)
                case _:
                    raise ValueError(f"no randomisation rule for buffer {name!r}")


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().cpu().numpy()
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu":
        array = array.astype(np.int64)
    # np.ascontiguousarray would turn a 0-d buffer (num_batches_tracked) into shape [1].
    return np.array(array, order="C", copy=True)


def format_sidecar(sidecar: dict[str, object]) -> str:
    """JSON with one line per top-level field and per state-dict entry, so diffs stay readable."""
    lines = []
    for key, value in sidecar.items():
        if key == "state_dict" and value:
            entries = ",\n".join(f"    {json.dumps(entry)}" for entry in value)
            lines.append(f'  "state_dict": [\n{entries}\n  ]')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def generate(case: Case, out_dir: Path) -> tuple[Path, int]:
    torch.manual_seed(0)
    module = case.build()
    randomise(module)
    module.eval()
    x = case.make_input()
    with torch.no_grad():
        y = module(x)

    state = {key: to_numpy(value) for key, value in module.state_dict().items()}
    clash = set(state) & set(RESERVED_KEYS)
    if clash:
        raise ValueError(f"{case.name}: state dict uses reserved keys {sorted(clash)}")
    tensors = dict(state)
    tensors["__input__"] = to_numpy(x)
    tensors["__output__"] = to_numpy(y)

    weights_path = out_dir / f"{case.name}.safetensors"
    save_file(dict(sorted(tensors.items())), str(weights_path))
    sidecar = {
        "case": case.name,
        "description": case.description,
        "torch_version": torch.__version__,
        "input": {"shape": list(x.shape), "dtype": str(tensors["__input__"].dtype)},
        "output": {"shape": list(y.shape), "dtype": str(tensors["__output__"].dtype)},
        "state_dict": [
            {"key": key, "shape": list(array.shape), "dtype": str(array.dtype)}
            for key, array in state.items()
        ],
        "module": repr(module),
    }
    (out_dir / f"{case.name}.json").write_text(format_sidecar(sidecar))
    return weights_path, weights_path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--only", nargs="*", metavar="NAME", help="generate only these cases")
    args = parser.parse_args(argv)

    known = {case.name for case in CASES}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")

    # One thread: the summation order, and so the last bits of each output, stay fixed.
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    oversized = []
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        path, size = generate(case, args.out)
        print(
            f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}"
            f"  ({size / 1024:.1f} KiB)"
        )
        if size > SIZE_LIMIT_BYTES:
            oversized.append(case.name)
    if oversized:
        print(f"note: over {SIZE_LIMIT_BYTES // 1024} KiB: {', '.join(oversized)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
