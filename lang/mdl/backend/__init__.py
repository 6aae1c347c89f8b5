"""The native backend: graph -> loop IR (lower) -> LLVM IR (emit) -> machine code (jit)."""
