/*
 * dropout_layer.cu - [dropout] on the device, with the CPU's masks: element
 * i of a forward batch is dropped when
 *     unit(dn_hash3(seed, seen, layer index), i) < p
 * where unit takes the top 53 bits of dn_hash3(key, i, 0) (rng.c's
 * splitmix64, computed here on the device). A replica of a data-parallel
 * network numbers its elements from its first image (net->image_offset),
 * so the masks do not depend on how the batch was split.
 */
#include <stdlib.h>

#include "blas_gpu.h"
#include "dropout_layer.h"

typedef struct dropout_gpu {
    float *mask; /* [batch, inputs] */
} dropout_gpu;

__device__ inline uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

__device__ inline uint64_t hash3(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ a;
    h = splitmix64(&x);
    x = h ^ b;
    return splitmix64(&x);
}

__global__ void dropout_forward_kernel(const float *in, float *out,
                                       float *mask, long n, uint64_t key,
                                       uint64_t first, double p, float scale)
{
    DN_GRID_LOOP(i, n)
    {
        const double u = (double)(hash3(key, first + i, 0) >> 11) * 0x1.0p-53;
        mask[i] = u < p ? 0.0f : scale;
        out[i] = in[i] * mask[i];
    }
}

static int dropout_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    dropout_gpu *g = (dropout_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    g->mask = dn_gpu_floats((size_t)l->batch * l->inputs, err);
    return g->mask ? 0 : -1;
}

static void dropout_forward_gpu(dn_layer *l, dn_net *net)
{
    const long n = (long)l->batch * l->inputs;
    if (!net->train) {
        dn_gpu_copy(net, l->output_gpu, net->input_gpu, n);
        return;
    }
    const dropout *d = (const dropout *)l->priv;
    dropout_gpu *g = (dropout_gpu *)l->priv_gpu;
    const uint64_t key = dn_hash3(net->seed, net->seen, (uint64_t)l->index);
    const uint64_t first = (uint64_t)net->image_offset * (uint64_t)l->inputs;
    dropout_forward_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        net->input_gpu, l->output_gpu, g->mask, n, key, first,
        (double)d->probability, d->scale);
    DN_GPU_LAUNCHED(net);
}

static void dropout_backward_gpu(dn_layer *l, dn_net *net)
{
    if (!net->delta_gpu)
        return;
    dropout_gpu *g = (dropout_gpu *)l->priv_gpu;
    const long n = (long)l->batch * l->inputs;
    dn_gpu_axpy_mask(net, n, 1.0f, l->delta_gpu, net->train ? g->mask : NULL,
                     net->delta_gpu);
}

static void dropout_free_gpu(dn_layer *l)
{
    dropout_gpu *g = (dropout_gpu *)l->priv_gpu;
    if (g)
        dn_gpu_free(g->mask);
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_dropout (dropout_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_dropout_gpu = {
    dropout_make_gpu, dropout_forward_gpu, dropout_backward_gpu, dropout_free_gpu,
};
