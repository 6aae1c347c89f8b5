"""ONNX Attention (opsets 23 to 25) -> mdl matmuls, masks and a guarded softmax.

The node is written out step by step as the ONNX reference computes it: 3-D
inputs split into heads, Q and K each scaled by sqrt(scale), the key/value
cache appended, grouped-query heads repeated, the additive bias built from
the mask, `is_causal` (bottom-right aligned), the sliding window and
`nonpad_kv_seqlen`, softcap, a softmax whose fully masked rows are zero, and
the optional `qk_matmul_output`. Every intermediate is its own statement, so
the imported model reads like the attention it is.
"""

from __future__ import annotations

import math

from ..dims import Dim
from ..types import DType, TensorType
from .convert import DTYPE_OF_ONNX, Ctx, Node, scalar_text
from .ir import Expr, dims_symbols, ex, hole, lit
from .ops import broadcast, op
from .ops_math import storage_sum

_ATTRS = ("is_causal kv_num_heads q_num_heads qk_matmul_output_mode scale softcap "
          "softmax_precision left_window_size right_window_size")  # fmt: skip


class _Steps:
    """Emits the intermediates of one node under names derived from its first output."""

    def __init__(self, c: Ctx, n: Node):
        self.c, self.base, self.count = c, n.outputs[0] or n.name, 0

    def let(self, expr: Expr, t: TensorType, hint: str, out: str = "") -> Expr:
        if not out:
            self.count += 1
            out = f"{self.base}\x00attn{self.count}"
        self.c.emit(out, expr, t, hint)
        return hole(out)


def _present(n: Node, i: int) -> str:
    return n.inputs[i] if len(n.inputs) > i and n.inputs[i] else ""


def _heads(s: _Steps, x: Expr, t: TensorType, heads: int, hint: str) -> tuple[Expr, TensorType]:
    """[B, S, H*D] -> [B, H, S, D]."""
    b, seq, hidden = t.shape
    size = Dim.of(hidden).exact_div(Dim.of(heads))
    if size is None:
        s.c.fail("E1011", f"hidden size {hidden} does not split into {heads} heads")
    dims = [b, seq, Dim.of(heads), size]
    text = ", ".join(str(Dim.of(d)) for d in dims)
    e = ex(f"{{}}.reshape({text}).transpose(0, 2, 1, 3)", x)
    e = Expr(e.text, e.refs, e.symbols | dims_symbols(dims))
    out = TensorType(t.dtype, (b, Dim.of(heads), seq, size))
    return s.let(e, out, hint), out


def _positions(length: Dim, column: bool) -> Expr:
    """`arange(n)` as a column ([n, 1]) or a row ([1, n])."""
    index = "[:, None]" if column else "[None, :]"
    return lit(f"arange({length}){index}", dims_symbols([length]))


@op("Attention", attrs=_ATTRS)
def _attention(c: Ctx, n: Node) -> None:
    s = _Steps(c, n)
    tq, tk, tv = (c.type_of(i) for i in n.inputs[:3])
    dtype = tq.dtype
    if not dtype.is_float or tk.dtype is not dtype or tv.dtype is not dtype:
        c.fail("E1008", f"Attention on {tq.dtype}, {tk.dtype}, {tv.dtype} is not supported")
    if not tq.rank == tk.rank == tv.rank or tq.rank not in (3, 4):
        c.fail("E1011", "Attention takes Q, K and V all 3-D or all 4-D")
    q, k, v = (c.arg(i) for i in n.inputs[:3])
    rank3 = tq.rank == 3
    if rank3:
        if "q_num_heads" not in n.attrs or "kv_num_heads" not in n.attrs:
            c.fail("E1011", "3-D Attention inputs need q_num_heads and kv_num_heads")
        q, tq = _heads(s, q, tq, int(n.attrs["q_num_heads"]), "q")
        k, tk = _heads(s, k, tk, int(n.attrs["kv_num_heads"]), "k")
        v, tv = _heads(s, v, tv, int(n.attrs["kv_num_heads"]), "v")
    batch, q_heads, q_len, head = tq.shape
    kv_heads = Dim.of(tk.shape[1])
    if "scale" in n.attrs:
        scale = float(n.attrs["scale"])
    else:
        if not Dim.of(head).is_const:
            c.fail("E1010", f"the default scale needs a known head size, not {head}")
        scale = 1 / math.sqrt(int(head))
    factor = scalar_text(math.sqrt(scale), dtype)  # Q and K are each scaled by its root

    past_k, past_v, nonpad = _present(n, 4), _present(n, 5), _present(n, 6)
    if bool(past_k) != bool(past_v):
        c.fail("E1011", "past_key and past_value come together")
    past_len = Dim.of(0)
    if past_k:
        tpk, tpv = c.type_of(past_k), c.type_of(past_v)
        past_len = Dim.of(tpk.shape[2])
        k_shape = (*tk.shape[:2], past_len + Dim.of(tk.shape[2]), tk.shape[3])
        v_shape = (*tv.shape[:2], Dim.of(tpv.shape[2]) + Dim.of(tv.shape[2]), tv.shape[3])
        k_out, v_out = (n.outputs + ["", "", ""])[1:3]
        tk, tv = TensorType(dtype, k_shape), TensorType(dtype, v_shape)
        k = s.let(ex("concat({}, {}, axis=2)", c.arg(past_k), k), tk, "present_key", k_out)
        v = s.let(ex("concat({}, {}, axis=2)", c.arg(past_v), v), tv, "present_value", v_out)
    else:
        for i, value in ((1, k), (2, v)):
            if len(n.outputs) > i and n.outputs[i]:
                s.let(value, tk if i == 1 else tv, "present", n.outputs[i])
    kv_len = Dim.of(tk.shape[2])

    bias, bias_shape = _bias(c, s, n, q_len, kv_len, past_len, nonpad, batch)

    if q_heads != kv_heads:  # grouped-query attention: each kv head serves a group of q heads
        reps = Dim.of(q_heads).exact_div(kv_heads)
        if reps is None:
            c.fail("E1011", f"{q_heads} query heads do not group over {kv_heads} kv heads")
        k = _repeat_heads(s, k, tk, reps, "k")
        v = _repeat_heads(s, v, tv, reps, "v")
        tv = TensorType(dtype, (tv.shape[0], Dim.of(q_heads), *tv.shape[2:]))
    scores_t = TensorType(dtype, (batch, q_heads, q_len, kv_len))
    scores = s.let(ex(f"({{}} * {factor}) @ ({{}} * {factor}).transpose(0, 1, 3, 2)", q, k),
                   scores_t, "scores")  # fmt: skip
    softcap = float(n.attrs.get("softcap", 0.0))
    if softcap > 0:
        cap = scalar_text(softcap, dtype)
        scores = s.let(ex(f"tanh({{}} / {cap}) * {cap}", scores), scores_t, "capped")
    mode = int(n.attrs.get("qk_matmul_output_mode", 0))
    if mode not in (0, 1, 2, 3):
        c.unsupported(f"qk_matmul_output_mode={mode} is not supported")
    qk_out = n.outputs[3] if len(n.outputs) > 3 else ""
    if qk_out and mode in (0, 1):
        s.let(scores, scores_t, "qk", qk_out)
    logits, logits_t = scores, scores_t
    if bias is not None:
        shape = broadcast(c, scores_t.shape, bias_shape)
        logits_t = TensorType(dtype, shape)
        logits = s.let(ex("{} + {}", scores, bias), logits_t, "logits")
    if qk_out and mode == 2:
        s.let(logits, logits_t, "qk", qk_out)

    precision = dtype
    if "softmax_precision" in n.attrs:
        precision = DTYPE_OF_ONNX.get(int(n.attrs["softmax_precision"]))  # type: ignore[assignment]
        if precision is None or not precision.is_float:
            c.unsupported(f"softmax_precision={n.attrs['softmax_precision']} is not supported")
    if precision is not dtype:
        logits = ex(f"cast({{}}, {precision})", logits)
    probs_t = TensorType(precision, logits_t.shape)
    probs = _softmax(s, logits, probs_t, guarded=bias is not None)
    if bias is not None:  # a row whose every key is masked attends to nothing: zeros
        masked = ex("max({}, axis=-1, keep=true) == -inf", bias)
        probs = s.let(ex("where({}, 0.0, {})", masked, probs), probs_t, "probs")
    if precision is not dtype:
        probs = s.let(ex(f"cast({{}}, {dtype})", probs), logits_t, "probs")
    if qk_out and mode == 3:
        s.let(probs, logits_t, "qk", qk_out)
    y_shape = (*broadcast(c, logits_t.shape[:-2], tv.shape[:-2]), q_len, tv.shape[3])
    y_t = TensorType(dtype, y_shape)
    if not rank3:
        s.let(ex("{} @ {}", probs, v), y_t, "attended", n.outputs[0])
        return
    y = s.let(ex("{} @ {}", probs, v), y_t, "attended")
    hidden = Dim.of(y_shape[1]) * Dim.of(y_shape[3])
    dims = [y_shape[0], q_len, hidden]
    e = ex(f"{{}}.transpose(0, 2, 1, 3).reshape({', '.join(str(Dim.of(d)) for d in dims)})", y)
    s.let(Expr(e.text, e.refs, e.symbols | dims_symbols(dims)),
          TensorType(dtype, tuple(Dim.of(d) for d in dims)), "attended", n.outputs[0])  # fmt: skip


def _repeat_heads(s: _Steps, x: Expr, t: TensorType, reps: Dim, hint: str) -> Expr:
    """[B, H, S, D] -> [B, H*reps, S, D], each head repeated in place (h0, h0, h1, h1, ...)."""
    b, h, seq, d = t.shape
    wide = [b, h, reps, seq, d]
    flat = [b, Dim.of(h) * reps, seq, d]
    text = lambda dims: ", ".join(str(Dim.of(x)) for x in dims)  # noqa: E731
    e = ex(f"expand({{}}.reshape({text([b, h, 1, seq, d])}), {text(wide)}).reshape({text(flat)})",
           x)  # fmt: skip
    e = Expr(e.text, e.refs, e.symbols | dims_symbols(wide))
    return s.let(e, TensorType(t.dtype, tuple(Dim.of(x) for x in flat)), hint)


def _softmax(s: _Steps, x: Expr, t: TensorType, guarded: bool) -> Expr:
    """Softmax over the last axis; `guarded`: a row of -inf gives zeros, not NaN."""
    peak = s.let(ex("max({}, axis=-1, keep=true)", x),
                 TensorType(t.dtype, (*t.shape[:-1], Dim.of(1))), "peak")  # fmt: skip
    if guarded:
        peak = ex("where({} == -inf, 0.0, {})", peak, peak)
    weights = s.let(ex("exp({} - {})", x, peak), t, "weights")
    total = storage_sum(weights, t, t.rank - 1)
    if guarded:
        total_t = TensorType(t.dtype, (*t.shape[:-1], Dim.of(1)))
        total = s.let(total, total_t, "total")
        total = ex("where({} == 0.0, 1.0, {})", total, total)
    return s.let(ex("{} / {}", weights, total), t, "probs")


def _bias(c: Ctx, s: _Steps, n: Node, q_len: Dim, kv_len: Dim, past_len: Dim, nonpad: str,
          batch: Dim) -> tuple[Expr | None, tuple]:  # fmt: skip
    """The additive attention bias (0 where a key is attended, -inf where masked, or the
    float mask's values) and its shape; None when nothing is masked."""
    dtype = c.type_of(n.inputs[0]).dtype
    zero, neg = "0.0", "-inf"
    mask_name = _present(n, 3)
    bias: Expr | None = None
    shape: tuple = ()
    if mask_name:
        tm = c.type_of(mask_name)
        mask = c.arg(mask_name)
        missing = kv_len - Dim.of(tm.shape[-1])
        if not (missing.is_const and int(missing) >= 0):
            c.fail("E1010", f"the mask's last dim {tm.shape[-1]} is not at most {kv_len}")
        if tm.dtype is DType.BOOL:
            mask = ex(f"where({{}}, {_typed(zero, dtype)}, {_typed(neg, dtype)})", mask)
        elif tm.dtype is not dtype:
            c.fail("E1011", f"the mask is {tm.dtype}, Q is {dtype}")
        if int(missing):  # keys past the mask's end are masked
            pads = ", ".join(["0"] * (2 * tm.rank - 1) + [str(missing)])
            mask = ex(f"pad({{}}, [{pads}], value=-inf)", mask)
            tm = TensorType(tm.dtype, (*tm.shape[:-1], kv_len))
        bias = s.let(mask, TensorType(dtype, tm.shape), "mask")
        shape = tuple(tm.shape)
    per_batch = bool(nonpad) and past_len == 0
    offset = ex("{}.reshape(" + f"{batch}, 1, 1) - {q_len}", c.arg(nonpad)) if per_batch else None
    allowed: list[Expr] = []
    rows, cols = _positions(q_len, True), _positions(kv_len, False)
    if per_batch and nonpad and c.type_of(nonpad).dtype is not DType.I64:
        offset = ex("cast({}, i64)", offset)  # type: ignore[arg-type]
    frontier = ex("{} + {}", rows, offset) if offset is not None else (
        ex(f"{{}} + {past_len}", rows) if past_len != 0 else rows)  # fmt: skip
    if n.attrs.get("is_causal", 0):
        allowed.append(ex("{} <= {}", cols, frontier))
    left = int(n.attrs.get("left_window_size", -1))
    right = int(n.attrs.get("right_window_size", -1))
    if left >= 0:
        allowed.append(ex(f"{{}} - {{}} <= {left}", frontier, cols))
    if right >= 0:
        allowed.append(ex(f"{{}} - {{}} <= {right}", cols, frontier))
    window_shape = (batch, Dim.of(1), q_len, kv_len) if per_batch else (q_len, kv_len)
    for cond in allowed:
        if per_batch:
            cond = ex("{}.reshape(" + f"{batch}, 1, {q_len}, {kv_len})", cond)
            cond = Expr(cond.text, cond.refs, cond.symbols | dims_symbols([batch, q_len, kv_len]))
        term = ex(f"where({{}}, {_typed(zero, dtype)}, {_typed(neg, dtype)})", cond)
        bias, shape = _add(c, s, bias, shape, term, window_shape, dtype)
    if nonpad:
        keep = ex("{} < {}.reshape(" + f"{batch}, 1, 1, 1)", _positions(kv_len, False),
                  _as_i64(c, nonpad))  # fmt: skip
        term = ex(f"where({{}}, {_typed(zero, dtype)}, {_typed(neg, dtype)})", keep)
        bias, shape = _add(c, s, bias, shape, term, (batch, Dim.of(1), Dim.of(1), kv_len), dtype)
    return bias, shape


def _as_i64(c: Ctx, name: str) -> Expr:
    e = c.arg(name)
    return e if c.type_of(name).dtype is DType.I64 else ex("cast({}, i64)", e)


def _add(c: Ctx, s: _Steps, bias: Expr | None, shape: tuple, term: Expr, term_shape: tuple,
         dtype: DType) -> tuple[Expr, tuple]:  # fmt: skip
    new_shape = broadcast(c, shape, term_shape) if bias is not None else term_shape
    e = term if bias is None else ex("{} + {}", bias, term)
    return s.let(e, TensorType(dtype, tuple(Dim.of(d) for d in new_shape)), "bias"), new_shape


def _typed(value: str, dtype: DType) -> str:
    """A number of `dtype` where no tensor operand gives it one (`where` on a condition)."""
    return value if dtype is DType.F32 else f"full([], {value}, dtype={dtype})"
