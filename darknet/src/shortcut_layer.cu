/*
 * shortcut_layer.cu - [shortcut] on the device, each pass one fused kernel:
 * forward   out = act(alpha in + beta add)        (pre keeps the sum when
 *           the activation's derivative needs it)
 * backward  g = d out * act'(.) (kept in l->delta, as on the CPU);
 *           d in += alpha g;  layers[from].delta += beta g
 * When from is the previous layer both adds land in the same array, one
 * after the other in the same thread.
 */
#include <stdlib.h>

#include "blas_gpu.h"
#include "shortcut_layer.h"

typedef struct shortcut_gpu {
    float *pre; /* [batch, outputs] or NULL */
} shortcut_gpu;

__global__ void shortcut_forward_kernel(const float *in, const float *add,
                                        float *out, float *pre, long n,
                                        float alpha, float beta,
                                        dn_activation a)
{
    DN_GRID_LOOP(i, n)
    {
        const float s = alpha * in[i] + beta * add[i];
        if (pre)
            pre[i] = s;
        out[i] = dn_act(s, a);
    }
}

__global__ void shortcut_backward_kernel(const float *pre, const float *y,
                                         float *delta, float *din,
                                         float *dadd, long n, float alpha,
                                         float beta, dn_activation a)
{
    DN_GRID_LOOP(i, n)
    {
        const float g = delta[i] * dn_act_grad(pre ? pre[i] : 0.0f, y[i], a);
        delta[i] = g;
        if (din)
            din[i] += alpha * g;
        dadd[i] += beta * g;
    }
}

static int shortcut_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    const shortcut *p = (const shortcut *)l->priv;
    shortcut_gpu *g = (shortcut_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    if (p->pre && !(g->pre = dn_gpu_floats((size_t)l->batch * l->outputs, err)))
        return -1;
    return 0;
}

static void shortcut_forward_gpu(dn_layer *l, dn_net *net)
{
    const shortcut *p = (const shortcut *)l->priv;
    shortcut_gpu *g = (shortcut_gpu *)l->priv_gpu;
    const long n = (long)l->batch * l->outputs;
    shortcut_forward_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        net->input_gpu, net->layers[p->from].output_gpu, l->output_gpu, g->pre,
        n, p->alpha, p->beta, p->activation);
    DN_GPU_LAUNCHED(net);
}

static void shortcut_backward_gpu(dn_layer *l, dn_net *net)
{
    const shortcut *p = (const shortcut *)l->priv;
    shortcut_gpu *g = (shortcut_gpu *)l->priv_gpu;
    const long n = (long)l->batch * l->outputs;
    shortcut_backward_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        g->pre, l->output_gpu, l->delta_gpu, net->delta_gpu,
        net->layers[p->from].delta_gpu, n, p->alpha, p->beta, p->activation);
    DN_GPU_LAUNCHED(net);
}

static void shortcut_free_gpu(dn_layer *l)
{
    shortcut_gpu *g = (shortcut_gpu *)l->priv_gpu;
    if (g)
        dn_gpu_free(g->pre);
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_shortcut (shortcut_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_shortcut_gpu = {
    shortcut_make_gpu, shortcut_forward_gpu, shortcut_backward_gpu, shortcut_free_gpu,
};
