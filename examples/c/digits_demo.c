/* digits_demo.c: the digits model from C through its shared library and header.
 *
 * Two threads each create their own context and run the model many times
 * at once (batch 3 and batch 5), checking every run gives the same bits;
 * then the program prints each thread's probabilities and shows the error
 * path (an input with the wrong size). Build and run: see README.md.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"

#define RUNS 200
#define PIXELS 64
#define CLASSES 10

typedef struct {
    int id;
    int64_t batch;
    float *x;
    float *probs;
    int identical;
    int status;
    char error[512];
} job;

/* a fixed, thread-dependent input: pixel values k/16 for k in 0..16 */
static void fill_input(float *x, int id, int64_t batch) {
    for (int64_t i = 0; i < batch; i++)
        for (int64_t j = 0; j < PIXELS; j++)
            x[i * PIXELS + j] = (float)(((id + 1) * (i + 3) * (j + 7) + i * i) % 17) / 16.0f;
}

static void *worker(void *arg) {
    job *w = (job *)arg;
    digits_ctx *ctx = NULL;
    w->status = digits_create(NULL, 1, &ctx);
    if (w->status != MDL_OK) {
        snprintf(w->error, sizeof w->error, "%s", digits_last_error(NULL));
        return NULL;
    }
    const int64_t dims[2] = {w->batch, PIXELS};
    const void *inputs[DIGITS_NUM_INPUTS] = {w->x};
    const int64_t *input_dims[DIGITS_NUM_INPUTS] = {dims};

    /* ask the library how big the output is, then allocate it */
    int64_t out_dims[2];
    int64_t *output_dims[DIGITS_NUM_OUTPUTS] = {out_dims};
    w->status = digits_output_dims(ctx, input_dims, output_dims);
    if (w->status != MDL_OK) goto fail;
    int64_t capacity[DIGITS_NUM_OUTPUTS] = {out_dims[0] * out_dims[1]};
    w->probs = (float *)calloc((size_t)capacity[0], sizeof(float));
    float *again = (float *)calloc((size_t)capacity[0], sizeof(float));
    void *outputs[DIGITS_NUM_OUTPUTS] = {w->probs};
    w->status = digits_run(ctx, inputs, input_dims, outputs, capacity, NULL);
    if (w->status != MDL_OK) goto fail;
    w->identical = 1;
    outputs[0] = again;
    for (int r = 1; r < RUNS; r++) {
        w->status = digits_run(ctx, inputs, input_dims, outputs, capacity, NULL);
        if (w->status != MDL_OK) goto fail;
        w->identical &= memcmp(again, w->probs, sizeof(float) * (size_t)capacity[0]) == 0;
    }
    free(again);
    digits_destroy(ctx);
    return NULL;
fail:
    snprintf(w->error, sizeof w->error, "%s", digits_last_error(ctx));
    digits_destroy(ctx);
    return NULL;
}

int main(void) {
    printf("model input %s: %s; output %s: %s\n", digits_input_name(0), digits_input_type(0),
           digits_output_name(0), digits_output_type(0));
    job jobs[2] = {{.id = 0, .batch = 3}, {.id = 1, .batch = 5}};
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) {
        jobs[t].x = (float *)malloc(sizeof(float) * (size_t)(jobs[t].batch * PIXELS));
        fill_input(jobs[t].x, jobs[t].id, jobs[t].batch);
        pthread_create(&threads[t], NULL, worker, &jobs[t]);
    }
    int failed = 0;
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    for (int t = 0; t < 2; t++) {
        job *w = &jobs[t];
        if (w->status != MDL_OK) {
            fprintf(stderr, "thread %d failed (status %d): %s\n", t, w->status, w->error);
            failed = 1;
            continue;
        }
        printf("thread %d: batch %" PRId64 ", %d runs, %s\n", t, w->batch, RUNS,
               w->identical ? "identical" : "DIFFERENT");
        for (int64_t i = 0; i < w->batch; i++) {
            printf("%d %" PRId64, t, i);
            for (int c = 0; c < CLASSES; c++) printf(" %.9g", (double)w->probs[i * CLASSES + c]);
            printf("\n");
        }
        failed |= !w->identical;
    }

    /* the error path: 63 pixels where the model declares 64 */
    digits_ctx *ctx = NULL;
    if (digits_create(NULL, 0, &ctx) != MDL_OK) {
        fprintf(stderr, "create failed: %s\n", digits_last_error(NULL));
        return 1;
    }
    float x[63] = {0};
    float y[CLASSES];
    const int64_t bad[2] = {1, 63};
    const void *inputs[1] = {x};
    const int64_t *input_dims[1] = {bad};
    void *outputs[1] = {y};
    const int64_t capacity[1] = {CLASSES};
    int status = digits_run(ctx, inputs, input_dims, outputs, capacity, NULL);
    printf("bad input: status %d: %s\n", status, digits_last_error(ctx));
    digits_destroy(ctx);
    return failed || status != MDL_ERR_SHAPE;
}
