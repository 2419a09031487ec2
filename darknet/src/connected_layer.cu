/*
 * connected_layer.cu - [connected] on the device: cuBLAS with
 * connected_layer.c's GEMM shapes (B = batch, I = inputs, O = outputs),
 * then the output stage (batchnorm_gpu.h):
 *   forward          out[B, O]    = in[B, I] x W[O, I]^T
 *   weight gradient  dW[O, I]    += delta[B, O]^T x in[B, I]
 *   input gradient   d_in[B, I]  += delta[B, O] x W[O, I]
 * Workspace: the output stage's scratch (batch norm's input gradient).
 */
#include <stdlib.h>

#include "batchnorm_gpu.h"
#include "blas_gpu.h"
#include "connected_layer.h"

typedef struct connected_gpu {
    dn_post_gpu post;
    float *weights, *biases;                        /* twins */
    float *weights_grad, *biases_grad, *scales_grad; /* twins */
} connected_gpu;

static int connected_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    connected *fc = (connected *)l->priv;
    connected_gpu *g = (connected_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    g->weights = dn_gpu_twin(l, fc->weights);
    g->biases = dn_gpu_twin(l, fc->biases);
    g->weights_grad = dn_gpu_param(l, fc->weights)->grad_gpu;
    g->biases_grad = dn_gpu_param(l, fc->biases)->grad_gpu;
    if (fc->post.batch_normalize)
        g->scales_grad = dn_gpu_param(l, fc->post.bn.scales)->grad_gpu;
    if (dn_post_gpu_init(&g->post, &fc->post, l, err))
        return -1;
    l->workspace_gpu = dn_post_gpu_scratch_bytes(&g->post);
    return 0;
}

static void connected_forward_gpu(dn_layer *l, dn_net *net)
{
    connected_gpu *g = (connected_gpu *)l->priv_gpu;
    const int B = l->batch, I = (int)l->inputs, O = (int)l->outputs;
    dn_gpu_gemm(net, 0, 1, B, O, I, 1, net->input_gpu, I, g->weights, I, 0,
                dn_post_gpu_input(&g->post, l->output_gpu), O);
    dn_post_gpu_forward(net, &g->post, l->output_gpu, g->biases, net->train);
}

static void connected_backward_gpu(dn_layer *l, dn_net *net)
{
    connected_gpu *g = (connected_gpu *)l->priv_gpu;
    const int B = l->batch, I = (int)l->inputs, O = (int)l->outputs;
    const float *d = dn_post_gpu_backward(
        net, &g->post, l->output_gpu, l->delta_gpu,
        (float *)net->workspace_gpu, g->biases_grad, g->scales_grad,
        net->train);
    dn_gpu_gemm(net, 1, 0, O, I, B, 1, d, O, net->input_gpu, I, 1,
                g->weights_grad, I);
    if (net->delta_gpu)
        dn_gpu_gemm(net, 0, 0, B, I, O, 1, d, O, g->weights, I, 1,
                    net->delta_gpu, I);
}

static void connected_free_gpu(dn_layer *l)
{
    connected_gpu *g = (connected_gpu *)l->priv_gpu;
    if (g)
        dn_post_gpu_free(&g->post);
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_connected (connected_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_connected_gpu = {
    connected_make_gpu, connected_forward_gpu, connected_backward_gpu, connected_free_gpu,
};
