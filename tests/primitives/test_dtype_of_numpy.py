"""DType.from_numpy: every mdl dtype round trips; byte-swapped, unsigned and raw dtypes are
not mdl dtypes (an array of them at a boundary is an error, not reinterpreted bits)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from mdl.types import DType


@pytest.mark.parametrize("dtype", list(DType))
def test_round_trip(dtype):
    assert DType.from_numpy(dtype.numpy) is dtype


@pytest.mark.parametrize("spelled", [">f4", ">i8", ">f2", "u1", "u8", "V2", "c8", "<U3"])
def test_not_mdl_dtypes(spelled):
    assert DType.from_numpy(np.dtype(spelled)) is None


def test_bfloat16_by_its_type():
    assert DType.from_numpy(np.dtype(ml_dtypes.bfloat16)) is DType.BF16
    assert DType.from_numpy(np.dtype(ml_dtypes.float8_e4m3fn)) is None
