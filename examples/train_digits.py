"""scikit-learn 8x8 digits -> trained MLP weights for examples/digits.mdl.

Trains a 64-32-10 MLP (`fc1` = Linear(64, 32), relu, `fc2` = Linear(32, 10),
softmax at inference) in pure numpy and writes, next to this script:
- digits.safetensors: `fc1.weight` [32, 64], `fc1.bias` [32], `fc2.weight` [10, 32],
  `fc2.bias` [10], float32 in PyTorch layout (weight is [out, in]);
- digits_test.npz: `x` float32 [64, 64] (the first 64 held-out images) and `y` int64 [64];
- digits_accuracy.txt: accuracy over the whole held-out split.

The model input is the 8x8 image flattened row-major with each pixel divided by
16.0 (sklearn's pixels are 0..16), so inputs lie in [0, 1].

    python examples/train_digits.py           # train and write the files
    python examples/train_digits.py --check   # train in memory, fail below 95% accuracy
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
PIXEL_SCALE = 16.0
HIDDEN = 32
CLASSES = 10
SAMPLE_SIZE = 64
MIN_ACCURACY = 0.95

SEED = 0
EPOCHS = 60
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_split() -> Split:
    digits = load_digits()
    x = digits.data / PIXEL_SCALE
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=SEED
    )
    return Split(x_train, y_train, x_test, y_test)


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """PyTorch's nn.Linear default: weight and bias uniform in +-1/sqrt(fan_in)."""
    params = {}
    for name, fan_in, fan_out in (("fc1", 64, HIDDEN), ("fc2", HIDDEN, CLASSES)):
        bound = 1.0 / np.sqrt(fan_in)
        params[f"{name}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in))
        params[f"{name}.bias"] = rng.uniform(-bound, bound, fan_out)
    return params


def logits(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    hidden = np.maximum(x @ params["fc1.weight"].T + params["fc1.bias"], 0.0)
    return hidden @ params["fc2.weight"].T + params["fc2.bias"]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def gradients(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Backprop of mean cross-entropy for one mini-batch."""
    pre = x @ params["fc1.weight"].T + params["fc1.bias"]
    hidden = np.maximum(pre, 0.0)
    probs = softmax(hidden @ params["fc2.weight"].T + params["fc2.bias"])
    d_logits = probs
    d_logits[np.arange(len(y)), y] -= 1.0
    d_logits /= len(y)
    d_hidden = (d_logits @ params["fc2.weight"]) * (pre > 0)
    return {
        "fc2.weight": d_logits.T @ hidden,
        "fc2.bias": d_logits.sum(axis=0),
        "fc1.weight": d_hidden.T @ x,
        "fc1.bias": d_hidden.sum(axis=0),
    }


def train(split: Split) -> dict[str, np.ndarray]:
    """Mini-batch Adam in float64 (so the float32 weights written are stable across BLAS builds)."""
    rng = np.random.default_rng(SEED)
    params = init_params(rng)
    first = {name: np.zeros_like(p) for name, p in params.items()}
    second = {name: np.zeros_like(p) for name, p in params.items()}
    beta1, beta2 = ADAM_BETAS
    step = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(split.y_train))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            grads = gradients(params, split.x_train[batch], split.y_train[batch])
            step += 1
            for name, grad in grads.items():
                if name.endswith(".weight"):
                    grad = grad + WEIGHT_DECAY * params[name]
                first[name] = beta1 * first[name] + (1 - beta1) * grad
                second[name] = beta2 * second[name] + (1 - beta2) * grad * grad
                m_hat = first[name] / (1 - beta1**step)
                v_hat = second[name] / (1 - beta2**step)
                params[name] = params[name] - LEARNING_RATE * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
    return {name: np.ascontiguousarray(p, dtype=np.float32) for name, p in params.items()}


def accuracy(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the float32 weights on float32 inputs, as an mdl model would run them."""
    predicted = logits(params, x.astype(np.float32)).argmax(axis=-1)
    return float((predicted == y).mean())


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez's format with a fixed zip timestamp (np.savez stamps each member with "now")."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(member, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, array, allow_pickle=False)


def write_outputs(params: dict[str, np.ndarray], split: Split, test_accuracy: float) -> None:
    weights_path = HERE / "digits.safetensors"
    # One metadata key only: safetensors writes the metadata map in hash order.
    metadata = {"input": "x: f32[B, 64], 8x8 digit flattened row-major, pixel / 16.0"}
    save_file(dict(sorted(params.items())), str(weights_path), metadata=metadata)

    sample_path = HERE / "digits_test.npz"
    sample_x = np.ascontiguousarray(split.x_test[:SAMPLE_SIZE], dtype=np.float32)
    sample_y = np.ascontiguousarray(split.y_test[:SAMPLE_SIZE], dtype=np.int64)
    write_npz(sample_path, {"x": sample_x, "y": sample_y})

    accuracy_path = HERE / "digits_accuracy.txt"
    accuracy_path.write_text(f"test accuracy: {test_accuracy:.4f} ({len(split.y_test)} images)\n")
    for path in (weights_path, sample_path, accuracy_path):
        print(f"wrote {path.relative_to(HERE.parent)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train the digits MLP example")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"train in memory and fail if test accuracy < {MIN_ACCURACY}; write nothing",
    )
    args = parser.parse_args(argv)

    split = load_split()
    params = train(split)
    test_accuracy = accuracy(params, split.x_test, split.y_test)
    print(f"test accuracy: {test_accuracy:.4f} ({len(split.y_test)} images)")
    if test_accuracy < MIN_ACCURACY:
        print(f"error: accuracy {test_accuracy:.4f} is below {MIN_ACCURACY}", file=sys.stderr)
        return 1
    if not args.check:
        write_outputs(params, split, test_accuracy)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
