/*
 * train_bench.c - training throughput of this framework on a cfg: random
 * inputs and labels, warm-up batches, then timed batches of forward +
 * backward + update. Prints the median batch time as images/s and achieved
 * GFLOP/s (training counted as 3x the forward FLOPs: forward, input
 * gradients and weight gradients), the parameter count (darknet summary's
 * total), the peak resident memory of the process (getrusage's ru_maxrss)
 * and the OpenMP waiting policy it ran with (passive unless OMP_WAIT_POLICY
 * or GOMP_SPINCOUNT is set, as bin/darknet: wait_policy.h).
 *
 *   train_bench CFG BATCH [TIMED] [WARMUP] [-gpus 0[,1,...]] [-set KEY=VALUE]...
 *
 * With -gpus (a GPU build) the network trains on the device and each timed
 * batch ends when the device has finished it (dn_net_sync), as a PyTorch
 * loop timed with torch.cuda.synchronize(). The cfg's tf32 key applies
 * (default 1: TF32 tensor cores allowed). -set changes a [net] key as the
 * darknet command's -set does (e.g. -set conv_backend=im2col).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"

#include "cli/cli.h"
#include "darknet.h"
#include "wait_policy.h"


/* Peak resident memory of this process so far, in MiB (Linux: KiB units). */
static double peak_rss_mib(void)
{
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) ? 0 : u.ru_maxrss / 1024.0;
}

int main(int argc, char **argv)
{
    dn_default_wait_policy(argv); /* first: see wait_policy.h */
    dn_error err;
    dn_devices dev = {0};
    /* -gpus LIST and -set K=V anywhere; the rest are positional */
    const char *sets[16];
    int n = 0, n_sets = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-set") == 0) {
            if (i + 1 == argc || n_sets == 16) {
                fprintf(stderr, "train_bench: -set %s\n", i + 1 == argc
                        ? "needs KEY=VALUE" : "given more than 16 times");
                return 2;
            }
            sets[n_sets++] = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "-gpus") == 0 && i + 1 < argc) {
            if (dn_devices_parse(argv[++i], &dev, &err)) {
                fprintf(stderr, "train_bench: %s\n", err.msg);
                return 2;
            }
            continue;
        }
        argv[++n] = argv[i];
    }
    argc = n + 1;
    if (argc < 3) {
        fprintf(stderr, "usage: train_bench CFG BATCH [TIMED] [WARMUP] "
                        "[-gpus 0[,1,...]] [-set KEY=VALUE]...\n");
        return 2;
    }
    int timed = argc > 3 ? atoi(argv[3]) : 20, warmup = argc > 4 ? atoi(argv[4]) : 3;
    dn_cfg *cfg;
    dn_net *net;
    char set[64];
    snprintf(set, sizeof set, "batch=%s", argv[2]);
    int bad = dn_cfg_load(argv[1], &cfg, &err);
    for (int i = 0; !bad && i < n_sets; i++)
        bad = dn_cfg_set(cfg, sets[i], &err);
    if (bad || dn_cfg_set(cfg, set, &err) ||
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
    if (dn_net_use_devices(net, &dev, &err)) {
        fprintf(stderr, "train_bench: %s\n", err.msg);
        dn_net_free(net);
        return 1;
    }
    double *t = malloc(sizeof *t * (timed > 0 ? timed : 1));
    for (int i = 0; i < warmup + timed; i++) {
        double t0 = bench_now();
        dn_net_forward(net, 1);
        dn_net_backward(net);
        dn_net_update(net, 0.01);
        net->seen += net->batch;
        if (dn_net_sync(net, &err)) { /* the device has finished the batch */
            fprintf(stderr, "train_bench: %s\n", err.msg);
            free(t);
            dn_net_free(net);
            return 1;
        }
        if (i >= warmup)
            t[i - warmup] = bench_now() - t0;
    }
    double med = bench_median(t, timed);
    double flops = 3 * dn_net_flops(net) * net->batch;
    const char *policy = getenv("OMP_WAIT_POLICY");
    printf("images/s %.1f  GFLOP/s %.1f  median batch %.3f s  params %ld  peak RSS %.0f MiB  "
           "(batch %d, %d timed, %.3f GFLOP/image training, OMP_WAIT_POLICY=%s)%s%s\n",
           net->batch / med, flops / med / 1e9, med, dn_net_param_count(net), peak_rss_mib(),
           net->batch, timed, 3 * dn_net_flops(net) / 1e9, policy ? policy : "unset",
           dev.n ? " on " : "", dev.n ? dn_net_device_name(net) : "");
    free(t);
    dn_net_free(net);
    return 0;
}
