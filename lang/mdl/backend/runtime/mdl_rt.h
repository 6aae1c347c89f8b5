/* mdl AOT runtime: the model descriptor a generated model.c fills in, and the
 * context the generic runtime (mdl_rt.c) builds from it.
 *
 * Generated code is one translation unit: model.c includes this header, defines
 * its descriptor and shape functions, then includes mdl_rt.c (and, for an
 * executable, mdl_npy.c and mdl_main.c). Everything but the public API is
 * static, so several models link into one program without clashes.
 */
#ifndef MDL_RT_H
#define MDL_RT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* snprintf in the generated checks */

/* status codes: the same numbers as the MDL_* codes of every generated header */
enum {
    MDLRT_OK = 0,
    MDLRT_ERR_ARGUMENT = 1,
    MDLRT_ERR_SHAPE = 2,
    MDLRT_ERR_RANGE = 3,
    MDLRT_ERR_CAPACITY = 4,
    MDLRT_ERR_RUN = 5,
    MDLRT_ERR_WEIGHTS = 6,
    MDLRT_ERR_NOMEM = 7,
    MDLRT_ERR_BUSY = 8,
};

/* f16 and bf16 are stored as their 16 bits */
enum {
    MDLRT_F32 = 1,
    MDLRT_F64 = 2,
    MDLRT_I32 = 3,
    MDLRT_I64 = 4,
    MDLRT_BOOL = 5,
    MDLRT_F16 = 6,
    MDLRT_BF16 = 7
};
enum { MDLRT_INPUT, MDLRT_PARAM, MDLRT_CONST, MDLRT_OUTPUT, MDLRT_TEMP };

#define MDLRT_ERROR_LEN 512
#define MDLRT_ERRINFO 8

typedef struct {
    const char *name;  /* as declared in the model */
    const char *type;  /* declared type text, `f32[B, 64]` */
    int dtype;
    int rank;
    int buffer;        /* index into the model's buffers */
} mdlrt_port;

typedef struct {
    const char *name;  /* `in.x`, `param.fc1.weight`, `tmp.7`, ... */
    int role;
    int dtype;
    int rank;
    int64_t offset;    /* param/const: byte offset in the blob or the sidecar file */
    int slot;          /* temp: its slot of the arena (backend/memplan.py); else -1 */
} mdlrt_buffer;

typedef int32_t (*mdlrt_entry_fn)(int64_t *syms, void **bufs, int64_t *errinfo, void *pool);

typedef struct mdlrt_model {
    const char *name;
    int num_inputs, num_outputs, num_buffers, num_symbols, max_rank, num_errors, num_slots;
    const mdlrt_port *inputs;
    const mdlrt_port *outputs;
    const mdlrt_buffer *buffers;
    const char *const *errors; /* `E0607: index {0} out of range ...` */
    mdlrt_entry_fn entry;
    /* generated with the kernels (backend/pool.py): threads - 1 workers, NULL for one */
    void *(*pool_create)(int64_t threads);
    void (*pool_destroy)(void *pool);
    /* frees the scratch blocks the parallel loops keep between calls (backend/scratch.py) */
    void (*scratch_release)(void);
    const unsigned char *blob; /* constants, and the parameters when embedded */
    int sidecar;               /* parameters come from a .safetensors file */
    const char *sidecar_name;  /* its file name, looked for beside the artifact */
    int64_t sidecar_size;
    unsigned char sidecar_sha256[32];
    /* generated: check the inputs' dims against the declared types and bind the
     * symbols; 0 or an MDLRT_ERR_* code with a message in err */
    int (*bind)(const int64_t *const *dims, int64_t *syms, char *err, size_t errlen);
    /* generated: the dims of buffer b under syms; *overflow set when they do not fit i64 */
    void (*shape)(int b, const int64_t *syms, int64_t *dims, int *overflow);
    /* generated: 1 and [lo, hi) when input i is an index input, else 0 */
    int (*range)(int i, const int64_t *syms, int64_t *lo, int64_t *hi, int *overflow);
} mdlrt_model;

typedef struct mdlrt_ctx mdlrt_ctx;

/* shape arithmetic of the generated shape functions: i64 with overflow detection,
 * floor division with Python semantics (x // 0 is 0, as in the generated kernels) */
static inline int64_t mdlrt_add(int64_t a, int64_t b, int *overflow) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        *overflow = 1;
        return 0;
    }
    return r;
}

static inline int64_t mdlrt_mul(int64_t a, int64_t b, int *overflow) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) {
        *overflow = 1;
        return 0;
    }
    return r;
}

static inline int64_t mdlrt_floordiv(int64_t a, int64_t b, int *overflow) {
    if (b == 0) return 0;
    if (b == -1 && a == INT64_MIN) {
        *overflow = 1;
        return 0;
    }
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
    return q;
}

#endif
