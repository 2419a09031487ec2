/*
 * batchnorm_layer.cu - batch normalisation on the device (batchnorm_gpu.h):
 * the helpers [convolutional] and [connected] share, and the [batchnorm]
 * layer. The twin of batchnorm_layer.c.
 *
 * Own kernels, one block per channel for the reductions:
 *   statistics  mean and biased variance of the channel's N = batch*spatial
 *               values, summed in double around the channel's first value
 *               (as the CPU), then the rolling update with the unbiased one
 *   normalise   y = scales (x - mean) inv_std + biases
 *   backward    sum(dy) and sum(dy x_hat) per channel, then
 *               dx = scales inv_std (dy - mean(dy) - x_hat mean(dy x_hat))
 * x_hat is recomputed from x, so nothing of [batch, channels, spatial] is
 * kept besides the input. With CUDNN=1 the training passes are cuDNN's.
 */
#include <stdlib.h>
#include <string.h>

#include "batchnorm_gpu.h"
#include "batchnorm_layer.h"
#include "blas_gpu.h"

#define THREADS 512

/* ------------------------------------------------------------- kernels */

__global__ void bn_stats_kernel(const float *x, int batch, int channels,
                                long spatial, float *mean, float *inv_std,
                                float *rolling_mean, float *rolling_variance,
                                float momentum)
{
    const int c = blockIdx.x;
    const long n = (long)batch * spatial;
    const float shift = x[(long)c * spatial];
    double sum = 0, sq = 0;
    for (long j = threadIdx.x; j < n; j += blockDim.x) {
        const long b = j / spatial, s = j % spatial;
        const double d = (double)x[(b * channels + c) * spatial + s] - shift;
        sum += d;
        sq += d * d;
    }
    sum = dn_block_sum(sum);
    sq = dn_block_sum(sq);
    if (threadIdx.x != 0)
        return;
    const double N = (double)n, m = sum / N;
    double var = sq / N - m * m;
    if (var < 0)
        var = 0;
    mean[c] = (float)(m + shift);
    inv_std[c] = (float)(1.0 / sqrt(var + DN_BN_EPS));
    const double unbiased = N > 1 ? var * N / (N - 1) : var;
    rolling_mean[c] = (float)((1 - momentum) * rolling_mean[c] +
                              momentum * (m + shift));
    rolling_variance[c] = (float)((1 - momentum) * rolling_variance[c] +
                                  momentum * unbiased);
}

__global__ void bn_rolling_kernel(const float *rolling_mean,
                                  const float *rolling_variance, float *mean,
                                  float *inv_std, int channels)
{
    DN_GRID_LOOP(c, channels)
    {
        mean[c] = rolling_mean[c];
        inv_std[c] = 1.0f / sqrtf(rolling_variance[c] + DN_BN_EPS);
    }
}

__global__ void bn_normalize_kernel(const float *x, float *y,
                                    const float *mean, const float *inv_std,
                                    const float *scales, const float *biases,
                                    long n, int channels, long spatial)
{
    DN_GRID_LOOP(i, n)
    {
        const int c = (int)((i / spatial) % channels);
        const float v = (x[i] - mean[c]) * inv_std[c];
        y[i] = scales[c] * v + biases[c];
    }
}

__global__ void bn_backward_reduce_kernel(const float *x, const float *dy,
                                          const float *mean,
                                          const float *inv_std, int batch,
                                          int channels, long spatial,
                                          float *scales_grad,
                                          float *biases_grad, float *sums,
                                          int train)
{
    const int c = blockIdx.x;
    const long n = (long)batch * spatial;
    const float m = mean[c], is = inv_std[c];
    double sum = 0, sum_x = 0;
    for (long j = threadIdx.x; j < n; j += blockDim.x) {
        const long i = (j / spatial * channels + c) * spatial + j % spatial;
        const float xh = (x[i] - m) * is;
        sum += dy[i];
        sum_x += (double)dy[i] * xh;
    }
    sum = dn_block_sum(sum);
    sum_x = dn_block_sum(sum_x);
    if (threadIdx.x != 0)
        return;
    biases_grad[c] += (float)sum;
    scales_grad[c] += (float)sum_x;
    sums[c] = train ? (float)(sum / (double)n) : 0.0f;
    sums[channels + c] = train ? (float)(sum_x / (double)n) : 0.0f;
}

__global__ void bn_backward_dx_kernel(const float *x, const float *dy,
                                      float *dx, const float *mean,
                                      const float *inv_std,
                                      const float *scales, const float *sums,
                                      long n, int channels, long spatial,
                                      int accumulate)
{
    DN_GRID_LOOP(i, n)
    {
        const int c = (int)((i / spatial) % channels);
        const float k = scales[c] * inv_std[c];
        const float xh = (x[i] - mean[c]) * inv_std[c];
        const float v = k * (dy[i] - sums[c] - xh * sums[channels + c]);
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

/* ------------------------------------------------------------ dn_bn_gpu */

extern "C" int dn_bn_gpu_init(dn_bn_gpu *g, const dn_bn *bn, const dn_layer *l,
                              dn_error *err)
{
    memset(g, 0, sizeof *g);
    g->batch = bn->batch, g->channels = bn->channels, g->spatial = bn->spatial;
    g->momentum = bn->momentum;
    g->scales = dn_gpu_twin(l, bn->scales);
    g->rolling_mean = dn_gpu_twin(l, bn->rolling_mean);
    g->rolling_variance = dn_gpu_twin(l, bn->rolling_variance);
    if (!g->scales || !g->rolling_mean || !g->rolling_variance)
        return dn_fail(err, "batch norm: scales or rolling statistics are not "
                       "among the layer's saved tensors");
    if (!(g->mean = dn_gpu_floats(bn->channels, err)) ||
        !(g->inv_std = dn_gpu_floats(bn->channels, err)) ||
        !(g->sums = dn_gpu_floats(2L * bn->channels, err)))
        return -1;
#ifdef DN_CUDNN
    if (DN_CUDNN_OK(cudnnCreateTensorDescriptor(&g->x_desc), err) ||
        DN_CUDNN_OK(cudnnCreateTensorDescriptor(&g->param_desc), err) ||
        DN_CUDNN_OK(cudnnSetTensor4dDescriptor(g->x_desc, CUDNN_TENSOR_NCHW,
                                               CUDNN_DATA_FLOAT, bn->batch,
                                               bn->channels, (int)bn->spatial,
                                               1), err) ||
        DN_CUDNN_OK(cudnnSetTensor4dDescriptor(g->param_desc,
                                               CUDNN_TENSOR_NCHW,
                                               CUDNN_DATA_FLOAT, 1,
                                               bn->channels, 1, 1), err))
        return -1;
#endif
    return 0;
}

extern "C" void dn_bn_gpu_free(dn_bn_gpu *g)
{
    dn_gpu_free(g->mean);
    dn_gpu_free(g->inv_std);
    dn_gpu_free(g->sums);
#ifdef DN_CUDNN
    if (g->x_desc)
        cudnnDestroyTensorDescriptor(g->x_desc);
    if (g->param_desc)
        cudnnDestroyTensorDescriptor(g->param_desc);
#endif
    memset(g, 0, sizeof *g);
}

extern "C" void dn_bn_gpu_forward(dn_net *net, dn_bn_gpu *g, const float *x,
                                  float *y, const float *biases, int train)
{
    cudaStream_t s = dn_gpu_stream(net);
    const int C = g->channels;
    const long n = (long)g->batch * C * g->spatial;
#ifdef DN_CUDNN
    if (train) {
        const float one = 1, zero = 0;
        DN_GPU_CUDNN(net, cudnnBatchNormalizationForwardTraining(
                              dn_gpu_dnn(net), CUDNN_BATCHNORM_SPATIAL, &one,
                              &zero, g->x_desc, x, g->x_desc, y, g->param_desc,
                              g->scales, biases, g->momentum,
                              g->rolling_mean, g->rolling_variance, DN_BN_EPS,
                              g->mean, g->inv_std));
        return;
    }
#endif
    if (train)
        bn_stats_kernel<<<C, THREADS, 0, s>>>(x, g->batch, C, g->spatial,
                                              g->mean, g->inv_std,
                                              g->rolling_mean,
                                              g->rolling_variance, g->momentum);
    else
        bn_rolling_kernel<<<dn_blocks(C), 256, 0, s>>>(
            g->rolling_mean, g->rolling_variance, g->mean, g->inv_std, C);
    DN_GPU_LAUNCHED(net);
    bn_normalize_kernel<<<dn_blocks(n), 256, 0, s>>>(
        x, y, g->mean, g->inv_std, g->scales, biases, n, C, g->spatial);
    DN_GPU_LAUNCHED(net);
}

extern "C" void dn_bn_gpu_backward(dn_net *net, dn_bn_gpu *g, const float *x,
                                   const float *dy, float *dx, int accumulate,
                                   float *scales_grad, float *biases_grad,
                                   int train)
{
    cudaStream_t s = dn_gpu_stream(net);
    const int C = g->channels;
    const long n = (long)g->batch * C * g->spatial;
#ifdef DN_CUDNN
    if (train && dx) {
        const float one = 1, zero = 0;
        DN_GPU_CUDNN(net, cudnnBatchNormalizationBackward(
                              dn_gpu_dnn(net), CUDNN_BATCHNORM_SPATIAL, &one,
                              accumulate ? &one : &zero, &one, &one, g->x_desc,
                              x, g->x_desc, dy, g->x_desc, dx, g->param_desc,
                              g->scales, scales_grad, biases_grad, DN_BN_EPS,
                              g->mean, g->inv_std));
        return;
    }
#endif
    bn_backward_reduce_kernel<<<C, THREADS, 0, s>>>(
        x, dy, g->mean, g->inv_std, g->batch, C, g->spatial, scales_grad,
        biases_grad, g->sums, train);
    DN_GPU_LAUNCHED(net);
    if (!dx)
        return;
    bn_backward_dx_kernel<<<dn_blocks(n), 256, 0, s>>>(
        x, dy, dx, g->mean, g->inv_std, g->scales, g->sums, n, C, g->spatial,
        accumulate);
    DN_GPU_LAUNCHED(net);
}

/* ---------------------------------------------------------- dn_post_gpu */

extern "C" int dn_post_gpu_init(dn_post_gpu *p, const dn_post *host,
                                const dn_layer *l, dn_error *err)
{
    memset(p, 0, sizeof *p);
    p->host = host;
    const size_t n = (size_t)host->batch * host->channels * host->spatial;
    if (host->batch_normalize &&
        (dn_bn_gpu_init(&p->bn, &host->bn, l, err) ||
         !(p->x = dn_gpu_floats(n, err))))
        return -1;
    if (host->pre && !(p->pre = dn_gpu_floats(n, err)))
        return -1;
    return 0;
}

extern "C" void dn_post_gpu_free(dn_post_gpu *p)
{
    dn_bn_gpu_free(&p->bn);
    dn_gpu_free(p->x);
    dn_gpu_free(p->pre);
    p->x = p->pre = NULL;
}

extern "C" float *dn_post_gpu_input(dn_post_gpu *p, float *out)
{
    return p->host->batch_normalize ? p->x : out;
}

extern "C" void dn_post_gpu_forward(dn_net *net, dn_post_gpu *p, float *out,
                                    const float *biases, int train)
{
    const dn_post *h = p->host;
    if (h->batch_normalize) {
        dn_bn_gpu_forward(net, &p->bn, p->x, out, biases, train);
        if (h->activation != DN_LINEAR || p->pre) /* pre = BN(x), act */
            dn_gpu_bias_activate(net, out, NULL, p->pre, h->batch,
                                 h->channels, h->spatial, h->activation);
    } else { /* out = act(out + biases), one pass */
        dn_gpu_bias_activate(net, out, biases, p->pre, h->batch, h->channels,
                             h->spatial, h->activation);
    }
}

extern "C" size_t dn_post_gpu_scratch_bytes(const dn_post_gpu *p)
{
    const dn_post *h = p->host;
    return h->batch_normalize
               ? dn_gpu_align(sizeof(float) * h->batch * h->channels *
                              h->spatial)
               : 0;
}

extern "C" float *dn_post_gpu_backward(dn_net *net, dn_post_gpu *p,
                                       const float *y, float *delta,
                                       float *scratch, float *biases_grad,
                                       float *scales_grad, int train)
{
    const dn_post *h = p->host;
    const long n = (long)h->batch * h->channels * h->spatial;
    dn_gpu_activate_backward(net, p->pre, y, delta, n, h->activation);
    if (!h->batch_normalize) {
        dn_gpu_bias_backward(net, biases_grad, delta, h->batch, h->channels,
                             h->spatial);
        return delta;
    }
    dn_bn_gpu_backward(net, &p->bn, p->x, delta, scratch, 0, scales_grad,
                       biases_grad, train);
    return scratch;
}

/* ---------------------------------------------------- [batchnorm] layer */

typedef struct batchnorm_gpu {
    dn_bn_gpu bn;
    float *biases, *scales_grad, *biases_grad; /* twins */
} batchnorm_gpu;

static int batchnorm_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    batchnorm *p = (batchnorm *)l->priv;
    batchnorm_gpu *g = (batchnorm_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    g->biases = dn_gpu_twin(l, p->biases);
    g->scales_grad = dn_gpu_param(l, p->bn.scales)->grad_gpu;
    g->biases_grad = dn_gpu_param(l, p->biases)->grad_gpu;
    return dn_bn_gpu_init(&g->bn, &p->bn, l, err);
}

/* in: net->input_gpu [batch, c, h, w], kept for backward (a layer's output
 * is not changed by the layers after it) */
static void batchnorm_forward_gpu(dn_layer *l, dn_net *net)
{
    batchnorm_gpu *g = (batchnorm_gpu *)l->priv_gpu;
    dn_bn_gpu_forward(net, &g->bn, net->input_gpu, l->output_gpu, g->biases,
                      net->train);
}

static void batchnorm_backward_gpu(dn_layer *l, dn_net *net)
{
    batchnorm_gpu *g = (batchnorm_gpu *)l->priv_gpu;
    dn_bn_gpu_backward(net, &g->bn, net->input_gpu, l->delta_gpu,
                       net->delta_gpu, 1, g->scales_grad, g->biases_grad,
                       net->train);
}

static void batchnorm_free_gpu(dn_layer *l)
{
    batchnorm_gpu *g = (batchnorm_gpu *)l->priv_gpu;
    if (g)
        dn_bn_gpu_free(&g->bn);
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_batchnorm (batchnorm_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_batchnorm_gpu = {
    batchnorm_make_gpu, batchnorm_forward_gpu, batchnorm_backward_gpu, batchnorm_free_gpu,
};
