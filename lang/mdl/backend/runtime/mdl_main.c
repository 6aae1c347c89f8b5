/* `main` of an executable built by `mdlc build --emit exe`:
 *
 *     ./model [--out DIR] INPUT.npy...
 *
 * reads the inputs in declared order, runs the model (every check of the
 * context API: dtype, rank, dims, index ranges), writes DIR/<output>.npy and
 * prints `name dtype[shape]` per output. Exit 0 ok, 1 bad input (one line on
 * stderr), 2 bad usage. Included last into the generated model.c, after the
 * descriptor `mdl_model`.
 */
#include <sys/stat.h>

static void mdlrt_usage(const char *prog, FILE *to) {
    fprintf(to, "usage: %s [--out DIR]", prog);
    for (int i = 0; i < mdl_model.num_inputs; i++) fprintf(to, " %s.npy", mdl_model.inputs[i].name);
    fprintf(to, "\n");
}

static int mdlrt_usage_error(const char *prog, const char *fmt, const char *arg) {
    fprintf(stderr, "%s: error: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    mdlrt_usage(prog, stderr);
    return 2;
}

/* `E0605: message` -> `prog: error[E0605]: message` */
static int mdlrt_report(const char *prog, const char *msg) {
    if (msg[0] == 'E' && strlen(msg) > 6 && msg[5] == ':' && msg[6] == ' ')
        fprintf(stderr, "%s: error[%.5s]: %s\n", prog, msg, msg + 7);
    else
        fprintf(stderr, "%s: error: %s\n", prog, msg);
    return 1;
}

int main(int argc, char **argv) {
    const mdlrt_model *m = &mdl_model;
    const char *prog = argc > 0 ? argv[0] : m->name;
    const char *out_dir = ".";
    const char **files = (const char **)calloc((size_t)argc + 1, sizeof *files);
    int n = 0, options = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && !strcmp(a, "--")) {
            options = 0;
        } else if (options && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            mdlrt_usage(prog, stdout);
            printf("runs model `%s`: inputs", m->name);
            for (int k = 0; k < m->num_inputs; k++)
                printf("%s %s: %s", k ? "," : "", m->inputs[k].name, m->inputs[k].type);
            printf("; writes DIR/<output>.npy (DIR defaults to .) for");
            for (int k = 0; k < m->num_outputs; k++)
                printf("%s %s: %s", k ? "," : "", m->outputs[k].name, m->outputs[k].type);
            printf("\n");
            return 0;
        } else if (options && !strcmp(a, "--out")) {
            if (i + 1 >= argc) return mdlrt_usage_error(prog, "%s needs a folder", a);
            out_dir = argv[++i];
        } else if (options && !strncmp(a, "--out=", 6)) {
            out_dir = a + 6;
        } else if (options && a[0] == '-' && a[1]) {
            return mdlrt_usage_error(prog, "unknown option `%s`", a);
        } else {
            files[n++] = a;
        }
    }
    if (n != m->num_inputs) {
        char why[128];
        snprintf(why, sizeof why, "expected %d input file%s, got %d", m->num_inputs,
                 m->num_inputs == 1 ? "" : "s", n);
        return mdlrt_usage_error(prog, "%s", why);
    }
    if (!out_dir[0]) return mdlrt_usage_error(prog, "%s", "--out needs a folder");

    mdlrt_ctx *ctx = NULL;
    if (mdlrt_create(m, NULL, 0, &ctx)) return mdlrt_report(prog, mdlrt_last_error(NULL));
    char err[MDLRT_ERROR_LEN];
    mdlrt_npy *headers = (mdlrt_npy *)calloc((size_t)m->num_inputs + 1, sizeof *headers);
    const void **inputs = (const void **)calloc((size_t)m->num_inputs + 1, sizeof *inputs);
    const int64_t **dims = (const int64_t **)calloc((size_t)m->num_inputs + 1, sizeof *dims);
    void **outputs = (void **)calloc((size_t)m->num_outputs + 1, sizeof *outputs);
    int64_t **out_dims = (int64_t **)calloc((size_t)m->num_outputs + 1, sizeof *out_dims);
    int64_t *capacity = (int64_t *)calloc((size_t)m->num_outputs + 1, sizeof *capacity);
    size_t *out_bytes = (size_t *)calloc((size_t)m->num_outputs + 1, sizeof *out_bytes);
    if (!headers || !inputs || !dims || !outputs || !out_dims || !capacity || !out_bytes)
        return mdlrt_report(prog, "out of memory");
    for (int i = 0; i < m->num_inputs; i++) {
        void *data;
        if (mdlrt_npy_read(files[i], &m->inputs[i], &headers[i], &data, err))
            return mdlrt_report(prog, err);
        inputs[i] = data;
        dims[i] = headers[i].dims;
    }
    for (int o = 0; o < m->num_outputs; o++) {
        out_dims[o] = (int64_t *)calloc((size_t)m->outputs[o].rank + 1, sizeof(int64_t));
        if (!out_dims[o]) return mdlrt_report(prog, "out of memory");
    }
    if (mdlrt_output_dims(ctx, dims, out_dims)) return mdlrt_report(prog, mdlrt_last_error(ctx));
    for (int o = 0; o < m->num_outputs; o++) {
        const mdlrt_port *out = &m->outputs[o];
        if (mdlrt_size(out_dims[o], out->rank, mdlrt_itemsize(out->dtype), &capacity[o],
                       &out_bytes[o]) ||
            posix_memalign(&outputs[o], MDLRT_ALIGN, out_bytes[o] ? out_bytes[o] : 1) != 0)
            return mdlrt_report(prog, "out of memory for the outputs");
    }
    if (mdlrt_run(ctx, inputs, dims, outputs, capacity, out_dims))
        return mdlrt_report(prog, mdlrt_last_error(ctx));
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, sizeof err, "E0702: cannot create folder `%s`: %s", out_dir, strerror(errno));
        return mdlrt_report(prog, err);
    }
    for (int o = 0; o < m->num_outputs; o++) {
        const mdlrt_port *out = &m->outputs[o];
        size_t len = strlen(out_dir) + strlen(out->name) + 8;
        char *path = (char *)malloc(len);
        if (!path) return mdlrt_report(prog, "out of memory");
        snprintf(path, len, "%s/%s.npy", out_dir, out->name);
        if (mdlrt_npy_write(path, out->dtype, out_dims[o], out->rank, outputs[o], out_bytes[o], err))
            return mdlrt_report(prog, err);
        free(path);
        char shape[256];
        mdlrt_dims_text(shape, sizeof shape, out_dims[o], out->rank);
        printf("%s %s%s\n", out->name, mdlrt_dtype_name(out->dtype), shape);
    }
    mdlrt_destroy(ctx);
    return 0;
}
