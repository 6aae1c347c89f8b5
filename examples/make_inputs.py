"""Fixed seed -> examples/inputs/<example>.npy: one small sample input per example.

Each input is a batch of 2 with the dtype and shape the example's model declares.
The digits sample is the first two held-out images of digits_test.npz, so it is
a real input; the others are random with a fixed seed:

    python examples/make_inputs.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0
BATCH = 2
GPT_VOCAB = 512
GPT_CONTEXT = 64


def make_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    with np.load(HERE / "digits_test.npz") as held_out:
        digits = held_out["x"][:BATCH].astype(np.float32)
    return {
        "digits": digits,
        # Pixel-like values in [0, 1] for the image models.
        "mlp": rng.random((BATCH, 784), dtype=np.float32),
        "lenet": rng.random((BATCH, 1, 28, 28), dtype=np.float32),
        # CIFAR inputs are normalised per channel, so roughly standard normal.
        "resnet20": rng.standard_normal((BATCH, 3, 32, 32), dtype=np.float32),
        "gpt": rng.integers(0, GPT_VOCAB, (BATCH, GPT_CONTEXT), dtype=np.int64),
    }


def main() -> None:
    out_dir = HERE / "inputs"
    out_dir.mkdir(exist_ok=True)
    for name, array in make_inputs().items():
        np.save(out_dir / f"{name}.npy", array)
        print(f"{name}: {array.dtype} {list(array.shape)}")


if __name__ == "__main__":
    main()
