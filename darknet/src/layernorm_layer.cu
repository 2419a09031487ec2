/*
 * layernorm_layer.cu - [layernorm] on the device (layernorm_layer.c's
 * formulas). Each position of each image normalises over its C channels,
 * which lie N floats apart: one thread per (image, position), so that the
 * threads of a warp read neighbouring positions of the same channel.
 *
 * backward  parameter gradients: one block per channel, over every image
 *           and position; input gradient: one thread per (image, position)
 */
#include <stdlib.h>

#include "blas_gpu.h"
#include "layernorm_layer.h"

#define LAYERNORM_EPS 1e-5f

typedef struct layernorm_gpu {
    float *xhat;    /* [batch, C, N] */
    float *inv_std; /* [batch, N] */
} layernorm_gpu;

__global__ void layernorm_forward_kernel(const float *x, float *out,
                                         float *xhat, float *r,
                                         const float *scales,
                                         const float *biases, int batch, int C,
                                         long N)
{
    DN_GRID_LOOP(t, (long)batch * N)
    {
        const long b = t / N, i = t % N, base = b * C * N + i;
        float mean = 0, var = 0;
        for (int c = 0; c < C; c++)
            mean += x[base + c * N];
        mean /= (float)C;
        for (int c = 0; c < C; c++) {
            const float d = x[base + c * N] - mean;
            var += d * d;
        }
        const float inv = 1.0f / sqrtf(var / (float)C + LAYERNORM_EPS);
        r[t] = inv;
        for (int c = 0; c < C; c++) {
            const long j = base + c * N;
            xhat[j] = (x[j] - mean) * inv;
            out[j] = scales[c] * xhat[j] + biases[c];
        }
    }
}

/* one block per channel c */
__global__ void layernorm_param_grad_kernel(const float *G, const float *xhat,
                                            float *gb, float *gs, int batch,
                                            int C, long N)
{
    const int c = blockIdx.x;
    float sum_g = 0, sum_gx = 0;
    for (long t = threadIdx.x; t < (long)batch * N; t += blockDim.x) {
        const long j = (t / N) * C * N + (long)c * N + t % N;
        sum_g += G[j];
        sum_gx += G[j] * xhat[j];
    }
    sum_g = dn_block_sum(sum_g);
    sum_gx = dn_block_sum(sum_gx);
    if (threadIdx.x == 0) {
        gb[c] += sum_g;
        gs[c] += sum_gx;
    }
}

__global__ void layernorm_input_grad_kernel(const float *G, const float *xhat,
                                            const float *r,
                                            const float *scales, float *din,
                                            int batch, int C, long N)
{
    DN_GRID_LOOP(t, (long)batch * N)
    {
        const long base = (t / N) * C * N + t % N;
        float mean_g = 0, mean_gx = 0;
        for (int c = 0; c < C; c++) {
            const long j = base + c * N;
            const float g = G[j] * scales[c];
            mean_g += g;
            mean_gx += g * xhat[j];
        }
        mean_g /= (float)C, mean_gx /= (float)C;
        for (int c = 0; c < C; c++) {
            const long j = base + c * N;
            const float g = G[j] * scales[c];
            din[j] += r[t] * (g - mean_g - xhat[j] * mean_gx);
        }
    }
}

static int layernorm_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    layernorm_gpu *g = (layernorm_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    const size_t N = (size_t)l->h * l->w;
    if (!(g->xhat = dn_gpu_floats((size_t)l->batch * l->c * N, err)) ||
        !(g->inv_std = dn_gpu_floats((size_t)l->batch * N, err)))
        return -1;
    return 0;
}

static void layernorm_forward_gpu(dn_layer *l, dn_net *net)
{
    const layernorm *ln = (const layernorm *)l->priv;
    layernorm_gpu *g = (layernorm_gpu *)l->priv_gpu;
    const long N = (long)l->h * l->w;
    layernorm_forward_kernel<<<dn_blocks(l->batch * N), 256, 0,
                               dn_gpu_stream(net)>>>(
        net->input_gpu, l->output_gpu, g->xhat, g->inv_std,
        dn_gpu_twin(l, ln->scales), dn_gpu_twin(l, ln->biases), l->batch, l->c,
        N);
    DN_GPU_LAUNCHED(net);
}

static void layernorm_backward_gpu(dn_layer *l, dn_net *net)
{
    const layernorm *ln = (const layernorm *)l->priv;
    layernorm_gpu *g = (layernorm_gpu *)l->priv_gpu;
    const long N = (long)l->h * l->w;
    cudaStream_t s = dn_gpu_stream(net);
    layernorm_param_grad_kernel<<<l->c, 256, 0, s>>>(
        l->delta_gpu, g->xhat, dn_gpu_param(l, ln->biases)->grad_gpu,
        dn_gpu_param(l, ln->scales)->grad_gpu, l->batch, l->c, N);
    DN_GPU_LAUNCHED(net);
    if (!net->delta_gpu)
        return;
    layernorm_input_grad_kernel<<<dn_blocks(l->batch * N), 256, 0, s>>>(
        l->delta_gpu, g->xhat, g->inv_std, dn_gpu_twin(l, ln->scales),
        net->delta_gpu, l->batch, l->c, N);
    DN_GPU_LAUNCHED(net);
}

static void layernorm_free_gpu(dn_layer *l)
{
    layernorm_gpu *g = (layernorm_gpu *)l->priv_gpu;
    if (g) {
        dn_gpu_free(g->xhat);
        dn_gpu_free(g->inv_std);
    }
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_layernorm (layernorm_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_layernorm_gpu = {
    layernorm_make_gpu, layernorm_forward_gpu, layernorm_backward_gpu, layernorm_free_gpu,
};
