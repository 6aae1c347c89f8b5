/* mdl AOT runtime: the context API behind every generated NAME_create/run/...
 *
 * A context binds the weights (embedded in the artifact, or a sidecar
 * .safetensors file memory-mapped and checked against its SHA-256), owns the
 * arena of temporaries and the error message. `run` checks every argument
 * (null, alignment, dims against the declared types, index ranges, output
 * capacities, overlaps) before the generated code touches memory, so a bad
 * call returns an error code and never reads or writes out of bounds.
 * Included into the generated model.c: everything here is static.
 */
#include "mdl_rt.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mdl_sha256.c"

#define MDLRT_ALIGN 64

struct mdlrt_ctx {
    const mdlrt_model *m;
    int threads;
    void *pool;        /* the worker threads, created once with the context */
    void **bufs;       /* one pointer per buffer, in the entry point's order */
    int64_t *syms;     /* run-time dims, bound from the inputs */
    int64_t *dims;     /* scratch: one buffer's dims */
    unsigned char *arena;
    size_t arena_size;
    void *map;         /* the sidecar weights mapping */
    size_t map_len;
    int busy;
    char error[MDLRT_ERROR_LEN];
};

/* the message of the last failed create on this thread (there is no context to hold it) */
static _Thread_local char mdlrt_create_error[MDLRT_ERROR_LEN];

static void mdlrt_fail(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, MDLRT_ERROR_LEN, fmt, ap);
    va_end(ap);
}

static int mdlrt_itemsize(int dtype) {
    switch (dtype) {
    case MDLRT_F64:
    case MDLRT_I64:
        return 8;
    case MDLRT_BOOL:
        return 1;
    case MDLRT_F16:
    case MDLRT_BF16:
        return 2;
    default:
        return 4;
    }
}

/* elements and bytes of a dense array; 1 when they do not fit */
static int mdlrt_size(const int64_t *dims, int rank, int itemsize, int64_t *numel, size_t *bytes) {
    int64_t n = 1;
    for (int a = 0; a < rank; a++)
        if (dims[a] < 0 || __builtin_mul_overflow(n, dims[a], &n)) return 1;
    int64_t b;
    if (__builtin_mul_overflow(n, (int64_t)itemsize, &b) || b > (int64_t)(SIZE_MAX / 2)) return 1;
    *numel = n;
    *bytes = (size_t)b;
    return 0;
}

static void mdlrt_dims_text(char *out, size_t n, const int64_t *dims, int rank) {
    size_t used = (size_t)snprintf(out, n, "[");
    for (int a = 0; a < rank && used < n; a++)
        used += (size_t)snprintf(out + used, n - used, a ? ", %lld" : "%lld", (long long)dims[a]);
    if (used < n) snprintf(out + used, n - used, "]");
}

/* `index {0} out of range` + errinfo -> the message, as Python's str.format would */
static void mdlrt_format(char *out, size_t n, const char *msg, const int64_t *info) {
    size_t used = 0;
    for (const char *p = msg; *p && used + 1 < n; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            out[used++] = *p++;
        } else if (p[0] == '{' && p[1] >= '0' && p[1] <= '9') {
            int k = 0;
            const char *q = p + 1;
            while (*q >= '0' && *q <= '9') k = k * 10 + (*q++ - '0');
            if (*q == '}' && k < MDLRT_ERRINFO) {
                used += (size_t)snprintf(out + used, n - used, "%lld", (long long)info[k]);
                if (used >= n) used = n - 1;
                p = q;
            } else {
                out[used++] = *p;
            }
        } else {
            out[used++] = *p;
        }
    }
    out[used] = 0;
}

/* ------------------------------------------------------------------ weights */

static int mdlrt_default_sidecar(const mdlrt_model *m, char *path, size_t n, char *err) {
    char here[4096] = "";
#ifndef MDLRT_EXECUTABLE
    Dl_info info;
    if (dladdr((const void *)m, &info) && info.dli_fname && strchr(info.dli_fname, '/'))
        snprintf(here, sizeof here, "%s", info.dli_fname);
#endif
    if (!here[0]) {
        ssize_t len = readlink("/proc/self/exe", here, sizeof here - 1);
        here[len > 0 ? len : 0] = 0;
    }
    char *slash = strrchr(here, '/');
    if (!slash) {
        mdlrt_fail(err, "E0501: cannot find the folder of this artifact to read `%s` from; "
                        "pass the weights path to create", m->sidecar_name);
        return MDLRT_ERR_WEIGHTS;
    }
    slash[1] = 0;
    if ((size_t)snprintf(path, n, "%s%s", here, m->sidecar_name) >= n) {
        mdlrt_fail(err, "E0501: the path of `%s` is too long", m->sidecar_name);
        return MDLRT_ERR_WEIGHTS;
    }
    return MDLRT_OK;
}

static void mdlrt_hex(char *out, const unsigned char *digest) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static int mdlrt_map_sidecar(mdlrt_ctx *c, const char *given) {
    const mdlrt_model *m = c->m;
    char path[4096];
    if (given) {
        snprintf(path, sizeof path, "%s", given);
    } else {
        int rc = mdlrt_default_sidecar(m, path, sizeof path, c->error);
        if (rc) return rc;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mdlrt_fail(c->error, "E0501: cannot open weights `%s`: %s", path, strerror(errno));
        return MDLRT_ERR_WEIGHTS;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        mdlrt_fail(c->error, "E0501: weights `%s` is not a regular file", path);
        close(fd);
        return MDLRT_ERR_WEIGHTS;
    }
    if ((int64_t)st.st_size != m->sidecar_size) {
        mdlrt_fail(c->error,
                   "E0502: weights `%s` has %lld bytes, expected %lld: not the file this model "
                   "was built with",
                   path, (long long)st.st_size, (long long)m->sidecar_size);
        close(fd);
        return MDLRT_ERR_WEIGHTS;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        mdlrt_fail(c->error, "E0501: cannot map weights `%s`: %s", path, strerror(errno));
        return MDLRT_ERR_WEIGHTS;
    }
    c->map = map;
    c->map_len = (size_t)st.st_size;
    unsigned char digest[32];
    mdlrt_sha256((const unsigned char *)map, c->map_len, digest);
    if (memcmp(digest, m->sidecar_sha256, 32) != 0) {
        char got[65], want[65];
        mdlrt_hex(got, digest);
        mdlrt_hex(want, m->sidecar_sha256);
        mdlrt_fail(c->error,
                   "E0502: weights `%s` are not the ones this model was built with "
                   "(SHA-256 %.16s..., expected %.16s...)",
                   path, got, want);
        return MDLRT_ERR_WEIGHTS;
    }
    return MDLRT_OK;
}

/* ------------------------------------------------------------------ arena */

/* byte offsets of the temporaries under c->syms; total in *size. Temporaries share
 * slots by liveness (planned at compile time, backend/memplan.py): a slot is as
 * large as its largest member, the slots lie one after the other, 64-aligned. */
static int mdlrt_layout(mdlrt_ctx *c, size_t *size, size_t *offsets) {
    const mdlrt_model *m = c->m;
    size_t slot_bytes[m->num_slots + 1];
    for (int s = 0; s < m->num_slots; s++) slot_bytes[s] = 0;
    for (int b = 0; b < m->num_buffers; b++) {
        if (m->buffers[b].role != MDLRT_TEMP) continue;
        int overflow = 0;
        int64_t numel;
        size_t bytes;
        m->shape(b, c->syms, c->dims, &overflow);
        if (overflow ||
            mdlrt_size(c->dims, m->buffers[b].rank, mdlrt_itemsize(m->buffers[b].dtype), &numel,
                       &bytes))
            return 1;
        int s = m->buffers[b].slot;
        if (bytes > slot_bytes[s]) slot_bytes[s] = bytes;
    }
    size_t total = 0;
    for (int s = 0; s < m->num_slots; s++) {
        size_t start = total;
        size_t padded = (slot_bytes[s] + MDLRT_ALIGN - 1) / MDLRT_ALIGN * MDLRT_ALIGN;
        if (padded < slot_bytes[s] || total + padded < total) return 1;
        total += padded;
        slot_bytes[s] = start; /* from here on: the slot's offset */
    }
    if (offsets)
        for (int b = 0; b < m->num_buffers; b++)
            if (m->buffers[b].role == MDLRT_TEMP) offsets[b] = slot_bytes[m->buffers[b].slot];
    *size = total;
    return 0;
}

static int mdlrt_reserve(mdlrt_ctx *c, size_t size) {
    if (size <= c->arena_size && c->arena) return MDLRT_OK;
    void *p = NULL;
    if (posix_memalign(&p, MDLRT_ALIGN, size ? size : MDLRT_ALIGN) != 0) {
        mdlrt_fail(c->error, "cannot allocate %zu bytes for the model's temporaries", size);
        return MDLRT_ERR_NOMEM;
    }
    free(c->arena);
    c->arena = (unsigned char *)p;
    c->arena_size = size;
    return MDLRT_OK;
}

/* ------------------------------------------------------------------ create/destroy */

static void mdlrt_destroy(mdlrt_ctx *c) {
    if (!c) return;
    if (c->pool) c->m->pool_destroy(c->pool);
    if (c->m) c->m->scratch_release(); /* NULL when create failed before setting it */
    if (c->map) munmap(c->map, c->map_len);
    free(c->arena);
    free(c->bufs);
    free(c->syms);
    free(c->dims);
    free(c);
}

static int mdlrt_create(const mdlrt_model *m, const char *weights_path, int threads,
                        mdlrt_ctx **out) {
    mdlrt_create_error[0] = 0;
    if (!out) {
        mdlrt_fail(mdlrt_create_error, "create: the `out` argument is NULL");
        return MDLRT_ERR_ARGUMENT;
    }
    *out = NULL;
    if (threads < 0) {
        mdlrt_fail(mdlrt_create_error, "create: threads must be 0 (all cores) or more, got %d",
                   threads);
        return MDLRT_ERR_ARGUMENT;
    }
    if (weights_path && !m->sidecar) {
        mdlrt_fail(mdlrt_create_error,
                   "create: model `%s` embeds its weights; pass NULL as the weights path",
                   m->name);
        return MDLRT_ERR_ARGUMENT;
    }
    mdlrt_ctx *c = (mdlrt_ctx *)calloc(1, sizeof *c);
    if (c) {
        c->bufs = (void **)calloc((size_t)m->num_buffers + 1, sizeof *c->bufs);
        c->syms = (int64_t *)calloc((size_t)m->num_symbols + 1, sizeof *c->syms);
        c->dims = (int64_t *)calloc((size_t)m->max_rank + 1, sizeof *c->dims);
    }
    if (!c || !c->bufs || !c->syms || !c->dims) {
        mdlrt_destroy(c);
        mdlrt_fail(mdlrt_create_error, "create: out of memory");
        return MDLRT_ERR_NOMEM;
    }
    c->m = m;
    if (threads == 0) { /* the cores this process may run on */
        cpu_set_t set;
        long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                             : sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    c->threads = threads;
    c->pool = m->pool_create(threads); /* NULL: one thread, or none could start */
    int rc = m->sidecar ? mdlrt_map_sidecar(c, weights_path) : MDLRT_OK;
    for (int b = 0; rc == MDLRT_OK && b < m->num_buffers; b++) {
        const mdlrt_buffer *buf = &m->buffers[b];
        if (buf->role == MDLRT_PARAM && m->sidecar)
            c->bufs[b] = (unsigned char *)c->map + buf->offset;
        else if (buf->role == MDLRT_PARAM || buf->role == MDLRT_CONST)
            c->bufs[b] = (void *)(m->blob + buf->offset);
    }
    /* the arena starts at the size for every symbolic dim = 1 and grows on demand */
    for (int s = 0; s < m->num_symbols; s++) c->syms[s] = 1;
    size_t size = 0;
    if (rc == MDLRT_OK && mdlrt_layout(c, &size, NULL) == 0) rc = mdlrt_reserve(c, size);
    if (rc != MDLRT_OK) {
        memcpy(mdlrt_create_error, c->error, MDLRT_ERROR_LEN);
        mdlrt_destroy(c);
        return rc;
    }
    *out = c;
    return MDLRT_OK;
}

static const char *mdlrt_last_error(const mdlrt_ctx *c) {
    return c ? c->error : mdlrt_create_error;
}

/* ------------------------------------------------------------------ shapes */

/* check the input dims and bind the symbols; every buffer's dims must then be valid */
static int mdlrt_bind(mdlrt_ctx *c, const int64_t *const *input_dims) {
    const mdlrt_model *m = c->m;
    if (m->num_inputs && !input_dims) {
        mdlrt_fail(c->error, "input_dims is NULL (model `%s` takes %d inputs)", m->name,
                   m->num_inputs);
        return MDLRT_ERR_ARGUMENT;
    }
    for (int i = 0; i < m->num_inputs; i++) {
        const mdlrt_port *in = &m->inputs[i];
        if (in->rank && !input_dims[i]) {
            mdlrt_fail(c->error, "input_dims[%d] (the dims of input `%s`, %s) is NULL", i,
                       in->name, in->type);
            return MDLRT_ERR_ARGUMENT;
        }
        for (int a = 0; a < in->rank; a++)
            if (input_dims[i][a] < 0) {
                mdlrt_fail(c->error, "E0605: input `%s` has size %lld on axis %d: a size cannot be "
                                     "negative",
                           in->name, (long long)input_dims[i][a], a);
                return MDLRT_ERR_SHAPE;
            }
    }
    int rc = m->bind(input_dims, c->syms, c->error, MDLRT_ERROR_LEN);
    if (rc) return rc;
    for (int b = 0; b < m->num_buffers; b++) {
        const mdlrt_buffer *buf = &m->buffers[b];
        if (buf->role == MDLRT_PARAM || buf->role == MDLRT_CONST) continue;
        int overflow = 0;
        int64_t numel;
        size_t bytes;
        m->shape(b, c->syms, c->dims, &overflow);
        int negative = 0;
        for (int a = 0; a < buf->rank; a++) negative |= c->dims[a] < 0;
        if (negative) {
            char dims[256];
            mdlrt_dims_text(dims, sizeof dims, c->dims, buf->rank);
            mdlrt_fail(c->error, "E0605: the inputs' sizes make `%s` %s: a negative dimension (an "
                                 "input is too small for a window or slice)",
                       buf->name, dims);
            return MDLRT_ERR_SHAPE;
        }
        if (overflow || mdlrt_size(c->dims, buf->rank, mdlrt_itemsize(buf->dtype), &numel, &bytes)) {
            mdlrt_fail(c->error, "E0605: the inputs' sizes make `%s` too large to address",
                       buf->name);
            return MDLRT_ERR_SHAPE;
        }
    }
    return MDLRT_OK;
}

static int mdlrt_acquire(mdlrt_ctx *c) {
    return c && !__atomic_exchange_n(&c->busy, 1, __ATOMIC_ACQUIRE);
}

static void mdlrt_release(mdlrt_ctx *c) { __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE); }

static int mdlrt_output_dims_locked(mdlrt_ctx *c, const int64_t *const *input_dims,
                                    int64_t *const *output_dims) {
    const mdlrt_model *m = c->m;
    int rc = mdlrt_bind(c, input_dims);
    if (rc) return rc;
    if (m->num_outputs && !output_dims) {
        mdlrt_fail(c->error, "output_dims is NULL (model `%s` has %d outputs)", m->name,
                   m->num_outputs);
        return MDLRT_ERR_ARGUMENT;
    }
    for (int o = 0; o < m->num_outputs; o++) {
        if (m->outputs[o].rank && !output_dims[o]) {
            mdlrt_fail(c->error, "output_dims[%d] (output `%s`) is NULL", o, m->outputs[o].name);
            return MDLRT_ERR_ARGUMENT;
        }
        int overflow = 0;
        m->shape(m->outputs[o].buffer, c->syms, c->dims, &overflow);
        if (m->outputs[o].rank)
            memcpy(output_dims[o], c->dims, sizeof(int64_t) * (size_t)m->outputs[o].rank);
    }
    return MDLRT_OK;
}

static int mdlrt_output_dims(mdlrt_ctx *c, const int64_t *const *input_dims,
                             int64_t *const *output_dims) {
    if (!c) return MDLRT_ERR_ARGUMENT;
    if (!mdlrt_acquire(c)) return MDLRT_ERR_BUSY;
    c->error[0] = 0;
    int rc = mdlrt_output_dims_locked(c, input_dims, output_dims);
    mdlrt_release(c);
    return rc;
}

/* ------------------------------------------------------------------ run */

static int mdlrt_check_range(mdlrt_ctx *c, int i, const void *data, int64_t numel,
                             const int64_t *dims) {
    const mdlrt_model *m = c->m;
    const mdlrt_port *in = &m->inputs[i];
    int64_t lo, hi;
    int overflow = 0;
    if (!m->range || !m->range(i, c->syms, &lo, &hi, &overflow) || numel == 0) return MDLRT_OK;
    for (int64_t k = 0; k < numel; k++) {
        int64_t v = in->dtype == MDLRT_I64 ? ((const int64_t *)data)[k]
                                           : (int64_t)((const int32_t *)data)[k];
        if (v >= lo && v < hi) continue;
        int64_t pos[in->rank + 1];
        int64_t rest = k;
        for (int a = in->rank - 1; a >= 0; a--) {
            pos[a] = dims[a] ? rest % dims[a] : 0;
            rest = dims[a] ? rest / dims[a] : 0;
        }
        char where[256];
        mdlrt_dims_text(where, sizeof where, pos, in->rank);
        mdlrt_fail(c->error, "E0606: input `%s` has value %lld at %s, outside its declared range "
                             "%lld..%lld",
                   in->name, (long long)v, where, (long long)lo, (long long)hi);
        return MDLRT_ERR_RANGE;
    }
    return MDLRT_OK;
}

static int mdlrt_overlap(const void *a, size_t na, const void *b, size_t nb) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return na && nb && x < y + nb && y < x + na;
}

static int mdlrt_run_locked(mdlrt_ctx *c, const void *const *inputs,
                            const int64_t *const *input_dims, void *const *outputs,
                            const int64_t *output_capacity, int64_t *const *output_dims) {
    const mdlrt_model *m = c->m;
    int rc = mdlrt_bind(c, input_dims);
    if (rc) return rc;
    if (m->num_inputs && !inputs) {
        mdlrt_fail(c->error, "inputs is NULL (model `%s` takes %d inputs)", m->name, m->num_inputs);
        return MDLRT_ERR_ARGUMENT;
    }
    size_t in_bytes[m->num_inputs + 1];
    for (int i = 0; i < m->num_inputs; i++) {
        const mdlrt_port *in = &m->inputs[i];
        int size = mdlrt_itemsize(in->dtype);
        int64_t numel;
        mdlrt_size(input_dims[i], in->rank, size, &numel, &in_bytes[i]); /* bind checked it */
        if (numel && !inputs[i]) {
            mdlrt_fail(c->error, "input `%s` (%s) is NULL", in->name, in->type);
            return MDLRT_ERR_ARGUMENT;
        }
        if ((uintptr_t)inputs[i] % (uintptr_t)size) {
            mdlrt_fail(c->error, "input `%s` is misaligned: address %p is not a multiple of %d",
                       in->name, inputs[i], size);
            return MDLRT_ERR_ARGUMENT;
        }
        rc = mdlrt_check_range(c, i, inputs[i], numel, input_dims[i]);
        if (rc) return rc;
        c->bufs[in->buffer] = (void *)inputs[i];
    }
    if (m->num_outputs && (!outputs || !output_capacity)) {
        mdlrt_fail(c->error, "%s is NULL (model `%s` has %d outputs)",
                   outputs ? "output_capacity" : "outputs", m->name, m->num_outputs);
        return MDLRT_ERR_ARGUMENT;
    }
    size_t out_bytes[m->num_outputs + 1];
    for (int o = 0; o < m->num_outputs; o++) {
        const mdlrt_port *out = &m->outputs[o];
        int size = mdlrt_itemsize(out->dtype);
        int overflow = 0;
        int64_t numel;
        m->shape(out->buffer, c->syms, c->dims, &overflow);
        mdlrt_size(c->dims, out->rank, size, &numel, &out_bytes[o]); /* bind checked it */
        if (numel > output_capacity[o]) {
            char dims[256];
            mdlrt_dims_text(dims, sizeof dims, c->dims, out->rank);
            mdlrt_fail(c->error, "output `%s` needs %lld elements (%s), its buffer holds %lld",
                       out->name, (long long)numel, dims, (long long)output_capacity[o]);
            return MDLRT_ERR_CAPACITY;
        }
        if (numel && !outputs[o]) {
            mdlrt_fail(c->error, "output `%s` (%s) is NULL", out->name, out->type);
            return MDLRT_ERR_ARGUMENT;
        }
        if ((uintptr_t)outputs[o] % (uintptr_t)size) {
            mdlrt_fail(c->error, "output `%s` is misaligned: address %p is not a multiple of %d",
                       out->name, outputs[o], size);
            return MDLRT_ERR_ARGUMENT;
        }
        for (int i = 0; i < m->num_inputs; i++)
            if (mdlrt_overlap(outputs[o], out_bytes[o], inputs[i], in_bytes[i])) {
                mdlrt_fail(c->error, "output `%s` overlaps input `%s`", out->name,
                           m->inputs[i].name);
                return MDLRT_ERR_ARGUMENT;
            }
        for (int p = 0; p < o; p++)
            if (mdlrt_overlap(outputs[o], out_bytes[o], outputs[p], out_bytes[p])) {
                mdlrt_fail(c->error, "output `%s` overlaps output `%s`", out->name,
                           m->outputs[p].name);
                return MDLRT_ERR_ARGUMENT;
            }
        if (output_dims && out->rank && output_dims[o])
            memcpy(output_dims[o], c->dims, sizeof(int64_t) * (size_t)out->rank);
        c->bufs[out->buffer] = outputs[o];
    }
    size_t offsets[m->num_buffers + 1], size = 0;
    if (mdlrt_layout(c, &size, offsets)) {
        mdlrt_fail(c->error, "E0605: the inputs' sizes make the temporaries too large to address");
        return MDLRT_ERR_SHAPE;
    }
    rc = mdlrt_reserve(c, size);
    if (rc) return rc;
    for (int b = 0; b < m->num_buffers; b++)
        if (m->buffers[b].role == MDLRT_TEMP) c->bufs[b] = c->arena + offsets[b];
    int64_t info[MDLRT_ERRINFO] = {0};
    int32_t code = m->entry(c->syms, c->bufs, info, c->pool);
    if (code) {
        if (code > 0 && code <= m->num_errors) {
            mdlrt_format(c->error, MDLRT_ERROR_LEN, m->errors[code - 1], info);
            /* a parallel loop could not allocate its scratch */
            if (strncmp(m->errors[code - 1], "E0609", 5) == 0) return MDLRT_ERR_NOMEM;
        } else
            mdlrt_fail(c->error, "E0901: the model failed with unknown code %d", (int)code);
        return MDLRT_ERR_RUN;
    }
    return MDLRT_OK;
}

static int mdlrt_run(mdlrt_ctx *c, const void *const *inputs, const int64_t *const *input_dims,
                     void *const *outputs, const int64_t *output_capacity,
                     int64_t *const *output_dims) {
    if (!c) return MDLRT_ERR_ARGUMENT;
    if (!mdlrt_acquire(c)) return MDLRT_ERR_BUSY;
    c->error[0] = 0;
    int rc = mdlrt_run_locked(c, inputs, input_dims, outputs, output_capacity, output_dims);
    mdlrt_release(c);
    return rc;
}
