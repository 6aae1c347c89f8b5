"""The example models as PyTorch modules, and their onnxruntime sessions: the peers of bench/models.py.

Each module mirrors its `examples/*.mdl` file layer for layer, with the same attribute
names, so mdl's weights (PyTorch state-dict names) load with `strict=True`. The ONNX
peer is the torch module exported by the TorchScript exporter. Needs torch; onnxruntime
is optional (`ort_session` raises ImportError without it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


class Mlp(nn.Module):
    """examples/mlp.mdl: 784-512-256-10 with ReLU and a softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        h = torch.relu(self.fc2(h))
        return torch.softmax(self.fc3(h), dim=-1)


class LeNet(nn.Module):
    """examples/lenet.mdl: two conv/ReLU/max-pool stages, three dense layers; logits and probs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.pool1(torch.relu(self.conv1(x)))
        h = self.pool2(torch.relu(self.conv2(h)))
        h = torch.relu(self.fc1(self.flat(h)))
        h = torch.relu(self.fc2(h))
        logits = self.fc3(h)
        return logits, torch.softmax(logits, dim=-1)


class BasicBlock(nn.Module):
    """stdlib/resnet.mdl's BasicBlock, with the projection shortcut where shapes change."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        residual = self.shortcut(x) if self.shortcut is not None else x
        return torch.relu(y + residual)


class ResNet20(nn.Module):
    """examples/resnet20.mdl: CIFAR ResNet-20 (3 stages of 3 basic blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 16), BasicBlock(16, 16))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32), BasicBlock(32, 32))
        self.layer3 = nn.Sequential(BasicBlock(32, 64, 2), BasicBlock(64, 64), BasicBlock(64, 64))
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(h.mean(dim=(2, 3)))


class CausalSelfAttention(nn.Module):
    """stdlib/transformer.mdl's attention: fused qkv, causal mask by -inf, softmax, proj."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = math.sqrt(d // heads)  # a constant, not traced from shapes
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(x).split(d, dim=-1)
        q = q.reshape(b, t, self.heads, hd).transpose(1, 2)
        k = k.reshape(b, t, self.heads, hd).permute(0, 2, 3, 1)
        v = v.reshape(b, t, self.heads, hd).transpose(1, 2)
        i = torch.arange(t)
        causal = i[:, None] >= i[None, :]
        scores = torch.where(causal, q @ k / self.scale, float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, hidden)
        self.proj = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(nn.functional.gelu(self.fc(x)))  # exact (erf) GELU, as nn.gelu


class GptBlock(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = FeedForward(d, 4 * d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.attn(self.ln1(x))
        return h + self.mlp(self.ln2(h))


class Gpt(nn.Module):
    """examples/gpt.mdl with its default sizes V=512, T=64, D=256, H=4, L=4."""

    def __init__(self, v: int = 512, t: int = 64, d: int = 256, heads: int = 4, layers: int = 4):
        super().__init__()
        self.tok = nn.Embedding(v, d)
        self.pos = nn.Embedding(t, d)
        self.blocks = nn.ModuleList(GptBlock(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, v, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


MODULES = {"mlp": Mlp, "lenet": LeNet, "resnet20": ResNet20, "gpt": Gpt}


def torch_model(name: str, weights: dict[str, np.ndarray]) -> nn.Module:
    """The peer of examples/<name>.mdl with mdl's weights, loaded by name (strict), in eval mode."""
    module = MODULES[name]()
    module.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, strict=True
    )
    return module.eval()


def torch_runner(module: nn.Module) -> Any:
    """x -> tuple of numpy outputs, without autograd."""

    def run(x: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.inference_mode():
            out = module(torch.from_numpy(x))
        outs = out if isinstance(out, tuple) else (out,)
        return tuple(o.numpy() for o in outs)

    return run


def ort_runner(module: nn.Module, example: np.ndarray, folder: Path, threads: int = 1) -> Any:
    """Export `module` at the example's fixed shape (opset 17) and open it in onnxruntime."""
    import onnxruntime as ort

    path = folder / f"{type(module).__name__}_{'x'.join(map(str, example.shape))}.onnx"
    with torch.no_grad():
        torch.onnx.export(
            module, (torch.from_numpy(example),), str(path), dynamo=False, opset_version=17
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(session.run(None, {name: x}))

    return run
