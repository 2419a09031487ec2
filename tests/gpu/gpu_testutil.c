/* gpu_testutil.c - see gpu_testutil.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_testutil.h"

int gt_no_device(const char *program)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0)
        return 0;
    printf("%s: %s: no CUDA device (cudaGetDeviceCount: %s, %d "
           "devices)\n", program, getenv("DN_REQUIRE_GPU") ? "FAILED" : "skipped",
           e == cudaSuccess ? "ok" : cudaGetErrorString(e), n);
    if (getenv("DN_REQUIRE_GPU")) /* a check meant for a GPU must not pass without one */
        exit(1);
    return 1;
}

dn_net *gt_build(const char *text, const char *name)
{
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    if (dn_cfg_parse_string(text, name, &cfg, &err)) {
        print_error("%s: %s\n", name, err.msg);
        fail();
    }
    if (dn_net_make(cfg, NULL, &net, &err)) {
        dn_cfg_free(cfg);
        print_error("%s: %s\n", name, err.msg);
        fail();
    }
    return net;
}

void gt_to_gpu(dn_net *net)
{
    dn_error err;
    dn_devices dev = {.n = 1, .ids = {0}};
    if (dn_net_use_devices(net, &dev, &err)) {
        print_error("to GPU 0: %s\n", err.msg);
        fail();
    }
}

static int is_param(const dn_layer *l, const float *w)
{
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].w == w)
            return 1;
    return 0;
}

void gt_random_batch(dn_net *net, uint64_t seed)
{
    dn_rng rng;
    dn_rng_seed(&rng, seed);
    for (long i = 0; i < (long)net->batch * net->inputs; i++)
        net->input_data[i] = (float)(2 * dn_rng_uniform(&rng) - 1);
    memset(net->truth, 0, sizeof(float) * net->batch * net->truths);
    for (int b = 0; b < net->batch; b++)
        net->truth[b * net->truths + (long)(dn_rng_u64(&rng) % net->truths)] = 1;
}

void gt_randomize(dn_net *net, uint64_t seed)
{
    dn_rng rng;
    dn_rng_seed(&rng, seed ^ 0x5eed);
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        for (int p = 0; p < l->n_params; p++)
            for (long j = 0; j < l->params[p].n; j++)
                l->params[p].w[j] = (float)(0.5 * dn_rng_normal(&rng));
        for (int k = 0; k < l->n_saved; k++)
            if (!is_param(l, l->saved[k]))
                for (long j = 0; j < l->saved_n[k]; j++)
                    l->saved[k][j] = (float)(0.5 + dn_rng_uniform(&rng));
    }
    gt_random_batch(net, seed);
}

double gt_error(const float *cpu, const float *gpu, long n)
{
    double diff = 0, scale = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)gpu[i] - cpu[i]);
        if (!(d <= diff)) /* NaN counts as infinitely wrong */
            diff = isnan(d) ? INFINITY : d;
        if (fabs(cpu[i]) > scale)
            scale = fabs(cpu[i]);
    }
    return diff / fmax(scale, 1e-6);
}

int gt_check(const char *what, const float *cpu, const float *gpu, long n,
             double bound)
{
    double e = gt_error(cpu, gpu, n);
    int ok = e <= bound;
    printf("  %-44s err %.2e  (bound %.0e)%s\n", what, e, bound,
           ok ? "" : "  FAIL");
    return ok;
}
