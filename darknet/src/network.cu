/*
 * network.cu - the optimiser on the device: dn_net_update (network.c) over
 * the parameter arenas, one kernel for every parameter of the network.
 *
 * Block i takes chunk i of the chunk table (a run of at most DN_GPU_CHUNK
 * floats inside one dn_param, so one decay flag). The arithmetic is the
 * CPU loop's, line for line, in fp32:
 *   SGD:  u = m + g + d*B*w;  w -= lr/B * u;  m = momentum * u
 *   Adam: g' = g/B + d*w;  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;
 *         w -= lr * (m / c1) / (sqrt(v / c2) + eps)
 * and the gradient is cleared for the next batch.
 */
#include "cuda.h"

__global__ void sgd_kernel(const dn_gpu_chunk *chunks, float *w, float *g,
                           float *m, float step, float images, float decay,
                           float momentum)
{
    const dn_gpu_chunk c = chunks[blockIdx.x];
    const float d = c.decay ? decay : 0.0f;
    for (int j = threadIdx.x; j < c.n; j += blockDim.x) {
        const long i = c.offset + j;
        const float u = m[i] + g[i] + d * images * w[i];
        w[i] -= step * u;
        m[i] = momentum * u;
        g[i] = 0;
    }
}

__global__ void adam_kernel(const dn_gpu_chunk *chunks, float *w, float *g,
                            float *m, float *v, dn_gpu_update_args a)
{
    const dn_gpu_chunk c = chunks[blockIdx.x];
    const float d = c.decay ? a.decay : 0.0f;
    for (int j = threadIdx.x; j < c.n; j += blockDim.x) {
        const long i = c.offset + j;
        const float gj = g[i] / a.images + d * w[i];
        m[i] = a.b1 * m[i] + (1 - a.b1) * gj;
        v[i] = a.b2 * v[i] + (1 - a.b2) * gj * gj;
        w[i] -= a.lr * (m[i] / a.c1) / (sqrtf(v[i] / a.c2) + a.eps);
        g[i] = 0;
    }
}

extern "C" void dn_gpu_update(dn_net *net, const dn_gpu_update_args *a)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (g->n_chunks == 0)
        return;
    cudaStream_t s = dn_gpu_stream(net);
    if (!a->adam)
        sgd_kernel<<<g->n_chunks, 256, 0, s>>>(g->chunks, g->w, g->grad, g->m,
                                               a->lr / a->images, a->images,
                                               a->decay, a->momentum);
    else
        adam_kernel<<<g->n_chunks, 256, 0, s>>>(g->chunks, g->w, g->grad, g->m,
                                                g->v, *a);
    DN_GPU_LAUNCHED(net);
}
