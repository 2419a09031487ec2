/*
 * route_layer.cu - [route] on the device: each source is one strided copy
 * (forward: its [batch, n] block into its channel slice of the output) and
 * one strided add (backward: the slice of d out into the source's delta).
 * The source `input` is the network's input (and input_delta, if any).
 */
#include "blas_gpu.h"
#include "route_layer.h"

static float *source_output(dn_net *net, int j)
{
    return j == ROUTE_INPUT ? net->input_data_gpu : net->layers[j].output_gpu;
}

static float *source_delta(dn_net *net, int j)
{
    return j == ROUTE_INPUT ? net->input_delta_gpu : net->layers[j].delta_gpu;
}

static void route_forward_gpu(dn_layer *l, dn_net *net)
{
    const route *r = (const route *)l->priv;
    long offset = 0;
    for (int i = 0; i < r->n; i++) {
        const long n = r->size[i];
        const size_t f = sizeof(float);
        DN_GPU_CUDA(net, cudaMemcpy2DAsync(
                             l->output_gpu + offset, l->outputs * f,
                             source_output(net, r->src[i]), n * f, n * f,
                             l->batch, cudaMemcpyDeviceToDevice,
                             dn_gpu_stream(net)));
        offset += n;
    }
}

static void route_backward_gpu(dn_layer *l, dn_net *net)
{
    const route *r = (const route *)l->priv;
    long offset = 0;
    for (int i = 0; i < r->n; i++) {
        float *dsrc = source_delta(net, r->src[i]);
        const long n = r->size[i];
        if (dsrc)
            dn_gpu_add_strided(net, dsrc, n, l->delta_gpu + offset, l->outputs,
                               n, l->batch);
        offset += n;
    }
}

/* the twin of dn_layer_route (route_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_route_gpu = {
    dn_gpu_make_stateless, route_forward_gpu, route_backward_gpu, dn_gpu_free_stateless,
};
