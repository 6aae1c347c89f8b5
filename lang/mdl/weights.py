"""Weights bound to a model: declared parameters + named arrays -> checked arrays + diagnostics.

A model's parameters and buffers are declared in the source (`ParamSpec`: a
path such as `blocks.0.attn.qkv.weight`, a dtype, a concrete shape). A weights
file is a mapping from those paths to arrays (a PyTorch state dict, key for
key). `bind_weights` matches the two and reports every problem at once:
E0503 missing, E0504 unexpected, E0505 wrong shape, E0506 wrong dtype.

This module is also the front door for weights files: `read_weights` picks the
reader by extension, and the readers and writers are re-exported from
`weights_io` (safetensors) and `weights_npz`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .diagnostics import Diagnostic
from .initializers import InitSpec
from .span import Span
from .types import DType
from .weights_io import (
    WeightsError,
    dump_safetensors,
    load_safetensors,
    printable,
    read_safetensors,
    write_safetensors,
)
from .weights_npz import dump_npz, read_npz, write_npz

__all__ = [
    "ParamSpec",
    "WeightsError",
    "bind_weights",
    "dump_npz",
    "dump_safetensors",
    "load_safetensors",
    "read_npz",
    "read_safetensors",
    "read_weights",
    "shape_text",
    "write_npz",
    "write_safetensors",
]

_PICKLE_EXTENSIONS = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One declared parameter or buffer, with its full path and concrete shape."""

    path: str
    dtype: DType
    shape: tuple[int, ...]
    is_buffer: bool = False
    span: Span | None = None
    init: InitSpec | None = None


def read_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a .safetensors or .npz file, chosen by extension (anything else is E0507)."""
    where = os.fspath(path)
    ext = os.path.splitext(where)[1].lower()
    if ext == ".safetensors":
        return read_safetensors(where)
    if ext == ".npz":
        return read_npz(where)
    hint = "mdl reads `.safetensors` and `.npz` weights files"
    if ext in _PICKLE_EXTENSIONS:
        hint = (
            "pickled checkpoints are never loaded; convert it with "
            "`safetensors.torch.save_file(model.state_dict(), 'w.safetensors')`"
        )
    shown = f"`{ext}`" if ext else "without an extension"
    raise WeightsError("E0507", f"unsupported weights file format {shown}", where, help=hint)


def shape_text(dtype: DType | str, shape: Sequence[int]) -> str:
    """`f32[32, 64]`, `i64[]`: how the language writes a tensor type."""
    return f"{dtype}[{', '.join(str(d) for d in shape)}]"


def bind_weights(
    specs: Sequence[ParamSpec], tensors: Mapping[str, object], source: str
) -> tuple[dict[str, np.ndarray], list[Diagnostic]]:
    """Check `tensors` against the declared `specs`; `source` names the weights file.

    Returns the arrays that match their declaration (declared dtype, native byte
    order, C-contiguous; they may share memory with the inputs) and one
    diagnostic per problem, declarations first in order, then unexpected names.
    """
    note = f"in weights file `{source}`"
    declared: dict[str, ParamSpec] = {}
    for spec in specs:
        declared.setdefault(spec.path, spec)
    missing = [p for p in declared if p not in tensors]
    unexpected = sorted(k for k in tensors if k not in declared)
    everything_missing = bool(declared) and len(missing) == len(declared)

    bound: dict[str, np.ndarray] = {}
    diags: list[Diagnostic] = []
    for spec in declared.values():
        noun = "buffer" if spec.is_buffer else "weight"
        expected = shape_text(spec.dtype, spec.shape)
        if spec.path not in tensors:
            diags.append(
                Diagnostic(
                    "E0503",
                    f"missing {noun} `{spec.path}`",
                    span=spec.span,
                    label=f"declared here as {expected}",
                    notes=(note,),
                    help="run `mdlc init` to create initial weights"
                    if everything_missing
                    else None,
                )
            )
            continue
        arr, found_dtype = _as_array(tensors[spec.path])
        if arr is None:
            diags.append(_wrong_dtype(spec, noun, expected, "a value that is not an array", note))
            continue
        found = shape_text(found_dtype or str(arr.dtype), arr.shape)
        ok = True
        if tuple(arr.shape) != tuple(spec.shape):
            ok = False
            transposed = (
                len(spec.shape) == 2
                and spec.shape[0] != spec.shape[1]
                and tuple(arr.shape) == tuple(reversed(spec.shape))
            )
            diags.append(
                Diagnostic(
                    "E0505",
                    f"wrong shape for {noun} `{spec.path}`: expected {expected}, found {found}",
                    span=spec.span,
                    label=f"declared as {expected}",
                    notes=(note,),
                    help="the weight may be transposed" if transposed else None,
                )
            )
        if found_dtype is not spec.dtype:
            ok = False
            diags.append(_wrong_dtype(spec, noun, expected, found, note))
        if ok:
            bound[spec.path] = np.asarray(arr, dtype=spec.dtype.numpy, order="C")

    for key in unexpected:
        guess = _guess(key, missing)
        diags.append(
            Diagnostic(
                "E0504",
                f"unexpected weight `{printable(key)}`",
                notes=(note, "the model declares no parameter or buffer with this name"),
                help=f"did you mean `{guess}`?" if guess else None,
            )
        )
    return bound, diags


def _wrong_dtype(spec: ParamSpec, noun: str, expected: str, found: str, note: str) -> Diagnostic:
    return Diagnostic(
        "E0506",
        f"wrong dtype for {noun} `{spec.path}`: expected {expected}, found {found}",
        span=spec.span,
        label=f"declared as {expected}",
        notes=(note,),
        help=f"store `{spec.path}` as {spec.dtype} in the weights file",
    )


def _as_array(value: object) -> tuple[np.ndarray | None, DType | None]:
    """`value` as a native-byte-order array and its DType (None when not one of ours)."""
    try:
        arr = np.asarray(value)
    except Exception:  # anything array-like may raise anything; it is simply not an array
        return None, None
    if arr.dtype.hasobject:
        return None, None
    if arr.dtype.byteorder in "<>":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr, DType.from_numpy(arr.dtype)


def _guess(key: str, missing: list[str]) -> str | None:
    """The missing path `key` most likely stands for: a prefixed name, else a close one."""
    suffixed = [p for p in missing if key.endswith("." + p)]
    if suffixed:
        return max(suffixed, key=len)
    close = difflib.get_close_matches(key, missing, n=1, cutoff=0.75)
    return close[0] if close else None
