/*
 * logistic_layer.cu - [logistic] and its binary cross-entropy on the
 * device, with logistic_layer.c's stable form of the cost:
 *     max(x, 0) - x t + log(1 + e^-|x|)
 *
 * forward   element-wise sigmoid; with the loss, one block per image sums
 *           its cost (double) and, in training, writes p - t
 * backward  d in += p (1 - p) d out (+ p - t after a training forward)
 */
#include <stdlib.h>

#include "blas_gpu.h"
#include "logistic_layer.h"

#define THREADS 256

typedef struct logistic_gpu {
    float *loss_grad; /* [batch, inputs] */
    int grad_ready;
} logistic_gpu;

__global__ void sigmoid_kernel(const float *x, float *y, long n)
{
    DN_GRID_LOOP(i, n)
    y[i] = 1.0f / (1.0f + expf(-x[i]));
}

__global__ void logistic_cost_kernel(const float *x, const float *y,
                                     const float *t, float *grad, float *cost,
                                     long inputs)
{
    const long off = (long)blockIdx.x * inputs;
    double c = 0;
    for (long i = threadIdx.x; i < inputs; i += blockDim.x) {
        const double xi = x[off + i];
        c += fmax(xi, 0.0) - xi * t[off + i] + log1p(exp(-fabs(xi)));
        if (grad)
            grad[off + i] = y[off + i] - t[off + i];
    }
    c = dn_block_sum(c);
    if (threadIdx.x == 0)
        cost[blockIdx.x] = (float)c;
}

__global__ void logistic_backward_kernel(const float *y, const float *dy,
                                         const float *loss_grad, float *dx,
                                         long n)
{
    DN_GRID_LOOP(i, n)
    {
        float v = dx[i] + y[i] * (1 - y[i]) * dy[i];
        if (loss_grad)
            v += loss_grad[i];
        dx[i] = v;
    }
}

static int logistic_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    logistic_gpu *g = (logistic_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    g->loss_grad = dn_gpu_floats((size_t)l->batch * l->inputs, err);
    return g->loss_grad ? 0 : -1;
}

static void logistic_forward_gpu(dn_layer *l, dn_net *net)
{
    logistic_gpu *g = (logistic_gpu *)l->priv_gpu;
    const long n = (long)l->batch * l->inputs;
    cudaStream_t s = dn_gpu_stream(net);
    sigmoid_kernel<<<dn_blocks(n), THREADS, 0, s>>>(net->input_gpu,
                                                    l->output_gpu, n);
    DN_GPU_LAUNCHED(net);
    g->grad_ready = 0;
    if (!dn_logistic_loss_active(l, net)) {
        if (l->is_loss)
            DN_GPU_CUDA(net, cudaMemsetAsync(l->cost_gpu, 0,
                                             sizeof(float) * l->batch, s));
        return;
    }
    logistic_cost_kernel<<<l->batch, THREADS, 0, s>>>(
        net->input_gpu, l->output_gpu, net->truth_gpu,
        net->train ? g->loss_grad : NULL, l->cost_gpu, l->inputs);
    DN_GPU_LAUNCHED(net);
    g->grad_ready = net->train;
}

static void logistic_backward_gpu(dn_layer *l, dn_net *net)
{
    if (!net->delta_gpu)
        return;
    logistic_gpu *g = (logistic_gpu *)l->priv_gpu;
    const long n = (long)l->batch * l->inputs;
    logistic_backward_kernel<<<dn_blocks(n), THREADS, 0, dn_gpu_stream(net)>>>(
        l->output_gpu, l->delta_gpu,
        g->grad_ready && net->train ? g->loss_grad : NULL, net->delta_gpu, n);
    DN_GPU_LAUNCHED(net);
}

static void logistic_free_gpu(dn_layer *l)
{
    logistic_gpu *g = (logistic_gpu *)l->priv_gpu;
    if (g)
        dn_gpu_free(g->loss_grad);
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_logistic (logistic_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_logistic_gpu = {
    logistic_make_gpu, logistic_forward_gpu, logistic_backward_gpu, logistic_free_gpu,
};
