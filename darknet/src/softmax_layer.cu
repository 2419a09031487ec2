/*
 * softmax_layer.cu - [softmax] and its cross-entropy loss on the device,
 * with softmax_layer.c's formulas (max subtracted, sums in double, the cost
 * from the log-sum-exp form).
 *
 * forward   one block per image, its groups in turn: p, and with the loss
 *           the image's cost into l->cost_gpu[b] and, in training, the
 *           gradient (p S - t) / T into loss_grad
 * backward  one block per (image, group): d in += (1/T) p (g - p.g), plus
 *           loss_grad after a training forward of the loss
 * With [net] output_activation=sigmoid (the last layer) both kernels take
 * softmax_layer.c's sigmoid branch: p = sigmoid(x/T) / sum, Keras'
 * clipped categorical cross-entropy, and the factor 1 - sigmoid(x/T).
 */
#include <stdlib.h>

#include "blas_gpu.h"
#include "softmax_layer.h"

#define THREADS 256

typedef struct softmax_gpu {
    float *loss_grad; /* [batch, inputs] */
    int grad_ready;
} softmax_gpu;

/* One group of n, output_activation=sigmoid (softmax_layer.c): p, and
 * with t the cost -sum t log clip(p) (returned, valid in thread 0) and,
 * with grad, (1 - y)(M p - u t) / T. */
__device__ double sigmoid_group(const float *xr, float *pr, const float *t,
                                float *grad, long n, float T)
{
    const float lo = DN_SIGMOID_CE_EPS, hi = 1.0f - DN_SIGMOID_CE_EPS;
    double sum = 0;
    for (long i = threadIdx.x; i < n; i += blockDim.x)
        sum += 1.0 / (1.0 + exp(-(double)xr[i] / T));
    sum = dn_block_sum(sum);
    for (long i = threadIdx.x; i < n; i += blockDim.x)
        pr[i] = sum > 0 ? (float)(1.0 / (1.0 + exp(-(double)xr[i] / T)) / sum)
                        : 1.0f / (float)n;
    if (!t)
        return 0;
    double c = 0, M = 0;
    for (long i = threadIdx.x; i < n; i += blockDim.x)
        if (t[i] != 0) {
            const float v = pr[i] < lo ? lo : pr[i] > hi ? hi : pr[i];
            c -= t[i] * log((double)v);
            if (pr[i] >= lo && pr[i] <= hi)
                M += t[i];
        }
    c = dn_block_sum(c);
    M = dn_block_sum(M);
    if (grad)
        for (long i = threadIdx.x; i < n; i += blockDim.x) {
            const double y = 1.0 / (1.0 + exp(-(double)xr[i] / T));
            const double ut = pr[i] >= lo && pr[i] <= hi ? t[i] : 0;
            grad[i] = sum > 0 ? (float)((1 - y) * (M * pr[i] - ut) / T) : 0;
        }
    return c;
}

__global__ void softmax_forward_kernel(const float *x, float *p,
                                       const float *truth, float *grad,
                                       float *cost, long inputs, int groups,
                                       float T, int sigmoid)
{
    const long n = inputs / groups;
    double image_cost = 0;
    for (int g = 0; g < groups; g++) {
        if (sigmoid) {
            const long off = blockIdx.x * inputs + g * n;
            image_cost += sigmoid_group(x + off, p + off,
                                        truth ? truth + off : NULL,
                                        grad ? grad + off : NULL, n, T);
            continue;
        }
        const long off = blockIdx.x * inputs + g * n;
        const float *xr = x + off;
        float *pr = p + off;
        float max = -3.402823466e38f;
        for (long i = threadIdx.x; i < n; i += blockDim.x)
            max = xr[i] > max ? xr[i] : max;
        max = dn_block_max(max);
        double sum = 0;
        for (long i = threadIdx.x; i < n; i += blockDim.x) {
            pr[i] = expf((xr[i] - max) / T);
            sum += pr[i];
        }
        sum = dn_block_sum(sum);
        const float inv = (float)(1.0 / sum);
        for (long i = threadIdx.x; i < n; i += blockDim.x)
            pr[i] *= inv;
        if (!truth)
            continue;
        const float *t = truth + off;
        const double log_sum = log(sum);
        double c = 0, S = 0;
        for (long i = threadIdx.x; i < n; i += blockDim.x) {
            S += t[i];
            if (t[i] != 0)
                c -= t[i] * ((double)(xr[i] - max) / T - log_sum);
        }
        c = dn_block_sum(c);
        S = dn_block_sum(S);
        image_cost += c;
        if (grad)
            for (long i = threadIdx.x; i < n; i += blockDim.x)
                grad[off + i] = (pr[i] * (float)S - t[i]) / T;
    }
    if (cost && threadIdx.x == 0)
        cost[blockIdx.x] = (float)image_cost;
}

__global__ void softmax_backward_kernel(const float *y, const float *dy,
                                        const float *loss_grad, const float *x,
                                        float *dx, long n, float invT,
                                        int sigmoid)
{
    const long off = (long)blockIdx.x * n;
    double dot = 0;
    for (long i = threadIdx.x; i < n; i += blockDim.x)
        dot += (double)y[off + i] * dy[off + i];
    const float d = (float)dn_block_sum(dot);
    for (long i = threadIdx.x; i < n; i += blockDim.x) {
        /* sigmoid: the sigmoid's own derivative, 1 - sigmoid */
        const float s = sigmoid ? 1.0f / (1.0f + expf(x[off + i] * invT)) : 1;
        float v = dx[off + i] + invT * s * y[off + i] * (dy[off + i] - d);
        if (loss_grad)
            v += loss_grad[off + i];
        dx[off + i] = v;
    }
}

static int softmax_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    softmax_gpu *g = (softmax_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    g->loss_grad = dn_gpu_floats((size_t)l->batch * l->inputs, err);
    return g->loss_grad ? 0 : -1;
}

static void softmax_forward_gpu(dn_layer *l, dn_net *net)
{
    const softmax *p = (const softmax *)l->priv;
    softmax_gpu *g = (softmax_gpu *)l->priv_gpu;
    const int loss = dn_softmax_loss_active(l, net);
    if (l->is_loss && !loss) /* a loss layer that is not last: cost 0 */
        DN_GPU_CUDA(net, cudaMemsetAsync(l->cost_gpu, 0,
                                         sizeof(float) * l->batch,
                                         dn_gpu_stream(net)));
    softmax_forward_kernel<<<l->batch, THREADS, 0, dn_gpu_stream(net)>>>(
        net->input_gpu, l->output_gpu, loss ? net->truth_gpu : NULL,
        loss && net->train ? g->loss_grad : NULL, loss ? l->cost_gpu : NULL,
        l->inputs, p->groups, p->temperature, dn_softmax_is_sigmoid(l, net));
    DN_GPU_LAUNCHED(net);
    g->grad_ready = loss && net->train;
}

static void softmax_backward_gpu(dn_layer *l, dn_net *net)
{
    if (!net->delta_gpu)
        return;
    const softmax *p = (const softmax *)l->priv;
    softmax_gpu *g = (softmax_gpu *)l->priv_gpu;
    const long n = l->inputs / p->groups;
    const int add_loss = g->grad_ready && net->train;
    softmax_backward_kernel<<<l->batch * p->groups, THREADS, 0,
                              dn_gpu_stream(net)>>>(
        l->output_gpu, l->delta_gpu, add_loss ? g->loss_grad : NULL,
        net->input_gpu, net->delta_gpu, n, 1.0f / p->temperature,
        dn_softmax_is_sigmoid(l, net));
    DN_GPU_LAUNCHED(net);
}

static void softmax_free_gpu(dn_layer *l)
{
    softmax_gpu *g = (softmax_gpu *)l->priv_gpu;
    if (g)
        dn_gpu_free(g->loss_grad);
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_softmax (softmax_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_softmax_gpu = {
    softmax_make_gpu, softmax_forward_gpu, softmax_backward_gpu, softmax_free_gpu,
};
