/* .npy files for the executable: read an input (format v1, v2 or v3,
 * little-endian, C order) and write an output (v1). Never unpickles: only
 * the plain numeric dtypes a model can take are recognised. numpy has no
 * bfloat16: np.save writes an ml_dtypes.bfloat16 array as 2-byte void ('<V2'),
 * so a bf16 input is read from a 2-byte void array and a bf16 output written
 * as one (np.load(path).view(ml_dtypes.bfloat16) gives it back).
 * Included into the generated model.c of an executable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MDLRT_NPY_MAX_RANK 64

typedef struct {
    char descr[32];
    int fortran;
    int rank;
    int64_t dims[MDLRT_NPY_MAX_RANK];
} mdlrt_npy;

static const char *mdlrt_descr(int dtype) {
    switch (dtype) {
    case MDLRT_F32:
        return "<f4";
    case MDLRT_F64:
        return "<f8";
    case MDLRT_I32:
        return "<i4";
    case MDLRT_I64:
        return "<i8";
    case MDLRT_F16:
        return "<f2";
    case MDLRT_BF16:
        return "<V2";
    default:
        return "|b1";
    }
}

static const char *mdlrt_dtype_name(int dtype) {
    switch (dtype) {
    case MDLRT_F32:
        return "f32";
    case MDLRT_F64:
        return "f64";
    case MDLRT_I32:
        return "i32";
    case MDLRT_I64:
        return "i64";
    case MDLRT_F16:
        return "f16";
    case MDLRT_BF16:
        return "bf16";
    default:
        return "bool";
    }
}

/* numpy's name of a descr, for messages: `<f8` -> `float64` */
static const char *mdlrt_descr_name(const char *d) {
    static const char *const table[][2] = {
        {"<f2", "float16"}, {"<f4", "float32"}, {"<f8", "float64"}, {"<i1", "int8"},
        {"|i1", "int8"},    {"<i2", "int16"},   {"<i4", "int32"},   {"<i8", "int64"},
        {"|u1", "uint8"},   {"<u2", "uint16"},  {"<u4", "uint32"},  {"<u8", "uint64"},
        {"|b1", "bool"},    {">f4", "big-endian float32"},          {">f8", "big-endian float64"},
        {">i4", "big-endian int32"},            {">i8", "big-endian int64"},
        {"<V2", "2-byte void, as np.save writes bfloat16"},
        {"|V2", "2-byte void, as np.save writes bfloat16"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(d, table[i][0])) return table[i][1];
    return d;
}

static const char *mdlrt_skip(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* the header dict `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 64), }` */
static int mdlrt_npy_parse(const char *p, mdlrt_npy *h) {
    int seen = 0;
    p = mdlrt_skip(p);
    if (*p++ != '{') return 1;
    for (;;) {
        p = mdlrt_skip(p);
        if (*p == '}') break;
        char q = *p++;
        if (q != '\'' && q != '"') return 1;
        const char *key = p;
        while (*p && *p != q) p++;
        if (!*p) return 1;
        size_t key_len = (size_t)(p - key);
        p = mdlrt_skip(p + 1);
        if (*p++ != ':') return 1;
        p = mdlrt_skip(p);
        if (key_len == 5 && !strncmp(key, "descr", 5)) {
            char vq = *p++;
            if (vq != '\'' && vq != '"') return 1;
            size_t n = 0;
            while (*p && *p != vq && n + 1 < sizeof h->descr) h->descr[n++] = *p++;
            h->descr[n] = 0;
            if (*p++ != vq) return 1;
            seen |= 1;
        } else if (key_len == 13 && !strncmp(key, "fortran_order", 13)) {
            if (!strncmp(p, "True", 4)) {
                h->fortran = 1;
                p += 4;
            } else if (!strncmp(p, "False", 5)) {
                h->fortran = 0;
                p += 5;
            } else {
                return 1;
            }
            seen |= 2;
        } else if (key_len == 5 && !strncmp(key, "shape", 5)) {
            if (*p++ != '(') return 1;
            h->rank = 0;
            for (;;) {
                p = mdlrt_skip(p);
                if (*p == ')') break;
                if (*p < '0' || *p > '9' || h->rank >= MDLRT_NPY_MAX_RANK) return 1;
                int64_t v = 0;
                while (*p >= '0' && *p <= '9') {
                    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
                        return 1;
                    p++;
                }
                if (*p == 'L') p++; /* files written by Python 2 */
                h->dims[h->rank++] = v;
                p = mdlrt_skip(p);
                if (*p == ',') p++;
                else if (*p != ')') return 1;
            }
            p++;
            seen |= 4;
        } else {
            return 1;
        }
        p = mdlrt_skip(p);
        if (*p == ',') p++;
        else if (*p != '}') return 1;
    }
    return seen == 7 ? 0 : 1;
}

/* read input `name` of type `type` from `path`: *data (64-aligned, free()) and its header */
static int mdlrt_npy_read(const char *path, const mdlrt_port *in, mdlrt_npy *h, void **data,
                          char *err) {
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        mdlrt_fail(err, "E0701: cannot read `%s` (input `%s`): %s", path, in->name,
                   strerror(errno));
        return 1;
    }
    unsigned char pre[12];
    char *text = NULL;
    int rc = 1;
    size_t got = fread(pre, 1, 8, f);
    if (got < 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        mdlrt_fail(err, "E0608: input `%s`: `%s` is not a .npy file", in->name, path);
        goto done;
    }
    uint32_t hlen;
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) goto truncated;
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 8, 1, 4, f) != 4) goto truncated;
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 |
               (uint32_t)pre[11] << 24;
    } else {
        mdlrt_fail(err, "E0608: input `%s`: `%s` is .npy format version %d, expected 1, 2 or 3",
                   in->name, path, pre[6]);
        goto done;
    }
    if (hlen > (1u << 24)) {
        mdlrt_fail(err, "E0608: input `%s`: `%s` has a %u-byte header", in->name, path, hlen);
        goto done;
    }
    text = (char *)malloc((size_t)hlen + 1);
    if (!text) goto nomem;
    if (fread(text, 1, hlen, f) != hlen) goto truncated;
    text[hlen] = 0;
    memset(h, 0, sizeof *h);
    if (mdlrt_npy_parse(text, h)) {
        mdlrt_fail(err, "E0608: input `%s`: `%s` has a malformed .npy header", in->name, path);
        goto done;
    }
    const char *want = mdlrt_descr(in->dtype);
    if (strcmp(h->descr, want) != 0 &&
        !(in->dtype == MDLRT_BOOL && !strcmp(h->descr, "<b1")) &&
        !(in->dtype == MDLRT_BF16 && !strcmp(h->descr, "|V2"))) {
        mdlrt_fail(err, "E0603: input `%s` (`%s`) has dtype %s (%s), expected %s (%s)", in->name,
                   path, mdlrt_descr_name(h->descr), h->descr, mdlrt_dtype_name(in->dtype), want);
        goto done;
    }
    if (h->fortran && h->rank > 1) {
        mdlrt_fail(err, "E0608: input `%s` (`%s`) is in Fortran order, expected C order (save "
                        "numpy.ascontiguousarray(x))",
                   in->name, path);
        goto done;
    }
    if (h->rank != in->rank) {
        char dims[256];
        mdlrt_dims_text(dims, sizeof dims, h->dims, h->rank);
        mdlrt_fail(err, "E0604: input `%s` (`%s`) has rank %d (shape %s), expected rank %d (%s)",
                   in->name, path, h->rank, dims, in->rank, in->type);
        goto done;
    }
    int64_t numel;
    size_t bytes;
    if (mdlrt_size(h->dims, h->rank, mdlrt_itemsize(in->dtype), &numel, &bytes)) {
        mdlrt_fail(err, "E0608: input `%s` (`%s`) is too large", in->name, path);
        goto done;
    }
    if (posix_memalign(data, MDLRT_ALIGN, bytes ? bytes : 1) != 0) goto nomem;
    got = fread(*data, 1, bytes, f);
    if (got != bytes) {
        mdlrt_fail(err, "E0608: input `%s` (`%s`) is truncated: %zu bytes of data, expected %zu",
                   in->name, path, got, bytes);
        goto done;
    }
    if (fgetc(f) != EOF) {
        mdlrt_fail(err, "E0608: input `%s` (`%s`) has extra bytes after its %zu bytes of data",
                   in->name, path, bytes);
        goto done;
    }
    rc = 0;
    goto done;
truncated:
    mdlrt_fail(err, "E0608: input `%s` (`%s`) is truncated inside its .npy header", in->name, path);
    goto done;
nomem:
    mdlrt_fail(err, "input `%s` (`%s`): out of memory", in->name, path);
done:
    free(text);
    fclose(f);
    if (rc) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

static int mdlrt_npy_write(const char *path, int dtype, const int64_t *dims, int rank,
                           const void *data, size_t bytes, char *err) {
    char dict[64 + 24 * MDLRT_NPY_MAX_RANK];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                mdlrt_descr(dtype));
    for (int a = 0; a < rank; a++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, a ? ", %lld" : "%lld", (long long)dims[a]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, rank == 1 ? ",), }" : "), }");
    size_t total = 10 + n + 1;
    size_t pad = (64 - total % 64) % 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = n + pad + 1;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    FILE *f = fopen(path, "wb");
    if (!f) {
        mdlrt_fail(err, "E0702: cannot write `%s`: %s", path, strerror(errno));
        return 1;
    }
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, n, f) == n;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, 1, bytes, f) == bytes;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        mdlrt_fail(err, "E0702: cannot write `%s`: %s", path, strerror(errno));
        return 1;
    }
    return 0;
}
