/*
 * maxpool_layer.cu - [maxpool] on the device (maxpool_layer.c's rules:
 * windows start at -padding/2, positions outside never win, ties go to the
 * first in row-major window order).
 *
 * forward   one thread per output: the window's maximum and its index
 * backward  one thread per input pixel, gathering the deltas of the
 *           outputs whose winner it is (no atomics; windows may overlap)
 */
#include <stdlib.h>

#include "blas_gpu.h"
#include "maxpool_layer.h"

typedef struct maxpool_gpu {
    int *argmax; /* [batch, outputs], as the CPU's */
} maxpool_gpu;

typedef struct pool_shape {
    int h, w, out_h, out_w, size, stride, offset;
} pool_shape;

static pool_shape shape_of(const dn_layer *l)
{
    const maxpool *p = (const maxpool *)l->priv;
    pool_shape s = {l->h, l->w, l->out_h, l->out_w, p->size, p->stride,
                    -(p->padding / 2)};
    return s;
}

__global__ void maxpool_forward_kernel(const float *in, float *out, int *arg,
                                       long n, pool_shape s)
{
    DN_GRID_LOOP(o, n)
    {
        const int j = o % s.out_w, i = (o / s.out_w) % s.out_h;
        const long plane = o / ((long)s.out_w * s.out_h);
        const float *im = in + plane * s.h * s.w;
        float best = -3.402823466e38f;
        int best_k = -1;
        for (int dy = 0; dy < s.size; dy++) {
            const int y = s.offset + i * s.stride + dy;
            if (y < 0 || y >= s.h)
                continue;
            for (int dx = 0; dx < s.size; dx++) {
                const int x = s.offset + j * s.stride + dx;
                if (x < 0 || x >= s.w)
                    continue;
                const int k = y * s.w + x;
                if (best_k < 0 || im[k] > best)
                    best = im[k], best_k = k;
            }
        }
        out[o] = best;
        arg[o] = best_k;
    }
}

__global__ void maxpool_backward_kernel(float *din, const float *dout,
                                        const int *arg, long n, pool_shape s)
{
    DN_GRID_LOOP(p, n)
    {
        const int x = p % s.w, y = (p / s.w) % s.h;
        const long plane = p / ((long)s.w * s.h);
        const int k = y * s.w + x;
        /* outputs i with offset + i*stride <= y < offset + i*stride + size */
        const int lo_y = y - s.offset - s.size + 1, lo_x = x - s.offset - s.size + 1;
        const int i0 = lo_y <= 0 ? 0 : (lo_y + s.stride - 1) / s.stride;
        const int j0 = lo_x <= 0 ? 0 : (lo_x + s.stride - 1) / s.stride;
        const int i1 = min((y - s.offset) / s.stride, s.out_h - 1);
        const int j1 = min((x - s.offset) / s.stride, s.out_w - 1);
        const long base = plane * s.out_h * s.out_w;
        float sum = 0;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++) {
                const long o = base + (long)i * s.out_w + j;
                if (arg[o] == k)
                    sum += dout[o];
            }
        din[p] += sum;
    }
}

static int maxpool_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    maxpool_gpu *g = (maxpool_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    g->argmax = (int *)dn_gpu_bytes(sizeof(int) * l->batch * l->outputs, err);
    return g->argmax ? 0 : -1;
}

static void maxpool_forward_gpu(dn_layer *l, dn_net *net)
{
    maxpool_gpu *g = (maxpool_gpu *)l->priv_gpu;
    const long n = (long)l->batch * l->outputs;
    maxpool_forward_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        net->input_gpu, l->output_gpu, g->argmax, n, shape_of(l));
    DN_GPU_LAUNCHED(net);
}

static void maxpool_backward_gpu(dn_layer *l, dn_net *net)
{
    if (!net->delta_gpu)
        return;
    maxpool_gpu *g = (maxpool_gpu *)l->priv_gpu;
    const long n = (long)l->batch * l->inputs;
    maxpool_backward_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        net->delta_gpu, l->delta_gpu, g->argmax, n, shape_of(l));
    DN_GPU_LAUNCHED(net);
}

static void maxpool_free_gpu(dn_layer *l)
{
    maxpool_gpu *g = (maxpool_gpu *)l->priv_gpu;
    if (g)
        dn_gpu_free(g->argmax);
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_maxpool (maxpool_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_maxpool_gpu = {
    maxpool_make_gpu, maxpool_forward_gpu, maxpool_backward_gpu, maxpool_free_gpu,
};
