/*
 * train_bench.c - training throughput of this framework on a cfg: random
 * inputs and labels, warm-up batches, then timed batches of forward +
 * backward + update. Prints the median batch time as images/s and achieved
 * GFLOP/s (training counted as 3x the forward FLOPs: forward, input
 * gradients and weight gradients).
 *
 *   train_bench CFG BATCH [TIMED] [WARMUP]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "darknet.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: train_bench CFG BATCH [TIMED] [WARMUP]\n");
        return 2;
    }
    int timed = argc > 3 ? atoi(argv[3]) : 20, warmup = argc > 4 ? atoi(argv[4]) : 3;
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    char set[64];
    snprintf(set, sizeof set, "batch=%s", argv[2]);
    if (dn_cfg_load(argv[1], &cfg, &err) || dn_cfg_set(cfg, set, &err) ||
        dn_cfg_set(cfg, "subdivisions=1", &err) ||
        dn_net_make(cfg, NULL, &net, &err)) {
        fprintf(stderr, "train_bench: %s\n", err.msg);
        return 1;
    }
    dn_rng r;
    dn_rng_seed(&r, 1);
    for (long i = 0; i < (long)net->batch * net->inputs; i++)
        net->input_data[i] = (float)dn_rng_uniform(&r);
    for (int b = 0; b < net->batch; b++)
        net->truth[b * net->truths + b % net->truths] = 1;
    double *t = malloc(sizeof *t * (timed > 0 ? timed : 1));
    for (int i = 0; i < warmup + timed; i++) {
        double t0 = now();
        dn_net_forward(net, 1);
        dn_net_backward(net);
        dn_net_update(net, 0.01);
        net->seen += net->batch;
        if (i >= warmup)
            t[i - warmup] = now() - t0;
    }
    qsort(t, timed, sizeof *t, cmp);
    double med = t[timed / 2];
    double flops = 3 * dn_net_flops(net) * net->batch;
    printf("images/s %.1f  GFLOP/s %.1f  median batch %.3f s  (batch %d, %d timed, "
           "%.3f GFLOP/image training)\n", net->batch / med, flops / med / 1e9, med,
           net->batch, timed, 3 * dn_net_flops(net) / 1e9);
    free(t);
    dn_net_free(net);
    return 0;
}
