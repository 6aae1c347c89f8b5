"""Value types of the language: dtypes and tensor types.

A `TensorType` is a dtype and a shape of `Dim`s (see dims.py); a shape may be
symbolic (`f32[B, 64]`). Compile-time values (ints, floats, bools, dims,
dtypes, lists, layer instances) are not tensors and have no TensorType.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class DType(Enum):
    F16 = "f16"
    BF16 = "bf16"
    F32 = "f32"
    F64 = "f64"
    I32 = "i32"
    I64 = "i64"
    BOOL = "bool"

    def __str__(self) -> str:
        return self.value

    @property
    def is_float(self) -> bool:
        return self in (DType.F16, DType.BF16, DType.F32, DType.F64)

    @property
    def is_int(self) -> bool:
        return self in (DType.I32, DType.I64)

    @property
    def numpy(self) -> np.dtype:
        if self is DType.BF16:
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(_NUMPY[self])

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @staticmethod
    def parse(name: str) -> DType | None:
        return _BY_NAME.get(name)

    @staticmethod
    def from_numpy(dt: np.dtype) -> DType | None:
        dt = np.dtype(dt)
        for d, name in _NUMPY.items():  # by name first: only bf16 needs ml_dtypes imported
            if dt.name == name and dt == np.dtype(name):  # not a byte-swapped one
                return d
        if dt.name == "bfloat16" and DType.BF16.numpy == dt:
            return DType.BF16
        return None


_NUMPY = {
    DType.F16: "float16",
    DType.F32: "float32",
    DType.F64: "float64",
    DType.I32: "int32",
    DType.I64: "int64",
    DType.BOOL: "bool",
}
_BY_NAME = {d.value: d for d in DType}


@dataclass(frozen=True, slots=True)
class TensorType:
    dtype: DType
    shape: tuple  # tuple[Dim, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]"
