"""The registry of diagnostic codes: code -> one-line title.

Every `Diagnostic.code` must be a key here (a test checks it), and every code
has an explanation in `errors/<CODE>.md` (shipped in the package, printed by
`mdlc explain`, mirrored in docs/errors/).

Ranges: E00xx source text and syntax, E01xx names and imports, E02xx dtypes
and values, E03xx shapes, E04xx compile-time evaluation and declarations,
E05xx weights files, E06xx inputs at run time, E07xx files and command line,
E08xx the native backend, E09xx internal compiler errors, E10xx ONNX import, E11xx
ONNX export.
"""

from __future__ import annotations

CODES: dict[str, str] = {
    # E00xx: source text and syntax
    "E0001": "source file is not valid UTF-8",
    "E0002": "source file contains a NUL byte",
    "E0003": "unexpected character",
    "E0004": "unexpected token",
    "E0005": "unexpected end of file",
    "E0006": "nesting too deep",
    "E0007": "unclosed bracket",
    "E0008": "mismatched closing bracket",
    "E0010": "expression cannot be used as a statement here",
    "E0011": "invalid type expression",
    "E0012": "source file too large",
    # E01xx: names and imports
    "E0101": "unknown name",
    "E0102": "unknown module",
    "E0103": "name not found in module",
    "E0104": "duplicate definition",
    "E0105": "import cycle",
    "E0106": "unknown attribute",
    "E0107": "assignment to an undeclared variable",
    "E0108": "a model file must not define more than one model",
    "E0109": "no model in file",
    "E0110": "duplicate parameter name",
    "E0111": "unknown keyword argument",
    "E0112": "missing argument",
    "E0113": "too many arguments",
    "E0114": "argument given twice",
    "E0115": "name is not callable",
    "E0116": "unknown dtype",
    "E0117": "recursion between definitions",
    # E02xx: dtypes and values
    "E0201": "mismatched dtypes",
    "E0202": "wrong dtype for this operation",
    "E0203": "expected a tensor",
    "E0204": "expected a compile-time value",
    "E0205": "wrong kind of value",
    "E0206": "return type does not match the declaration",
    "E0207": "condition must be a compile-time boolean",
    "E0208": "cannot unpack value",
    "E0209": "declared index range is invalid",
    "E0210": "division by zero in a compile-time expression",
    # E03xx: shapes
    "E0301": "shapes cannot be broadcast together",
    "E0302": "inner dimensions of a matrix product differ",
    "E0303": "dimension mismatch",
    "E0304": "rank mismatch",
    "E0305": "axis out of range",
    "E0306": "dimension does not divide",
    "E0307": "reshape changes the number of elements",
    "E0308": "invalid permutation",
    "E0309": "index out of range",
    "E0310": "invalid slice",
    "E0311": "cannot infer a dimension",
    "E0312": "invalid convolution or pooling geometry",
    "E0313": "negative or zero dimension",
    "E0314": "argument shape does not match the declared type",
    # E04xx: compile-time evaluation and declarations
    "E0401": "compile-time loop over a non-compile-time value",
    "E0402": "unknown initialiser",
    "E0403": "parameter declared outside a layer",
    "E0405": "missing return",
    "E0406": "unknown compile-time argument override",
    "E0407": "invalid compile-time argument override",
    "E0408": "instantiation too deep",
    "E0409": "compile-time value out of range",
    "E0410": "layer instance used in an invalid position",
    "E0411": "model inputs and outputs must be declared",
    "E0412": "unused layer instance has parameters",
    # E05xx: weights files
    "E0501": "cannot read weights file",
    "E0502": "malformed weights file",
    "E0503": "missing weight",
    "E0504": "unexpected weight",
    "E0505": "weight has the wrong shape",
    "E0506": "weight has the wrong dtype",
    "E0507": "unsupported weights format",
    "E0508": "weight contains pickled objects",
    # E06xx: inputs at run time
    "E0601": "missing input",
    "E0602": "unexpected input",
    "E0603": "input has the wrong dtype",
    "E0604": "input has the wrong rank",
    "E0605": "input dimension mismatch",
    "E0606": "index input out of its declared range",
    "E0607": "index out of range at run time",
    "E0608": "input is not a valid array",
    "E0609": "out of memory at run time",
    # E07xx: files and the command line
    "E0701": "cannot read file",
    "E0702": "cannot write file",
    "E0703": "unknown error code",
    "E0704": "bad command-line value",
    # E08xx: the native backend
    "E0801": "not supported by the native backend yet",
    "E0802": "native outputs differ from the reference",
    "E0803": "cannot link the artifact",
    # E09xx: internal
    "E0901": "internal compiler error",
    # E10xx: ONNX import
    "E1001": "not an ONNX model",
    "E1002": "unsafe external data",
    "E1003": "invalid dims",
    "E1004": "initializer data does not match its shape",
    "E1005": "graph too deep or too large",
    "E1006": "unsupported op",
    "E1007": "unsupported attribute",
    "E1008": "element type mdl does not support",
    "E1009": "opset not supported",
    "E1010": "shape not knowable at compile time",
    "E1011": "invalid graph",
    # E11xx: ONNX export
    "E1101": "primitive cannot be exported to ONNX",
    "E1102": "dimension not computable from the inputs",
    "E1103": "output name clashes with an input or parameter",
    "E1104": "exported with reduced precision",
    "E1105": "the `onnx` package is not installed",
}


def title(code: str) -> str:
    return CODES.get(code, "unknown error code")
