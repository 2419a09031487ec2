/*
 * avgpool_layer.cu - [avgpool] (global average) on the device.
 *
 * forward   one warp per plane [b, k]: the mean of its h*w values, summed
 *           in double as on the CPU
 * backward  one thread per input value: d in += d out[plane] / (h w)
 */
#include "layer_util.h"
#include "blas_gpu.h"

__global__ void avgpool_forward_kernel(const float *in, float *out,
                                       long planes, long spatial)
{
    const long warp = ((long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (warp >= planes) /* whole warps leave together */
        return;
    const float *x = in + warp * spatial;
    double sum = 0;
    for (long i = lane; i < spatial; i += 32)
        sum += x[i];
    for (int o = 16; o > 0; o >>= 1)
        sum += __shfl_down_sync(0xffffffffu, sum, o);
    if (lane == 0)
        out[warp] = (float)(sum / (double)spatial);
}

__global__ void avgpool_backward_kernel(float *din, const float *dout, long n,
                                        long spatial, float scale)
{
    DN_GRID_LOOP(i, n)
    din[i] += dout[i / spatial] * scale;
}

static void avgpool_forward_gpu(dn_layer *l, dn_net *net)
{
    const long planes = (long)l->batch * l->c, spatial = (long)l->h * l->w;
    avgpool_forward_kernel<<<dn_blocks(planes * 32), 256, 0,
                             dn_gpu_stream(net)>>>(net->input_gpu,
                                                   l->output_gpu, planes,
                                                   spatial);
    DN_GPU_LAUNCHED(net);
}

static void avgpool_backward_gpu(dn_layer *l, dn_net *net)
{
    if (!net->delta_gpu)
        return;
    const long spatial = (long)l->h * l->w, n = (long)l->batch * l->inputs;
    avgpool_backward_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        net->delta_gpu, l->delta_gpu, n, spatial, 1.0f / (float)spatial);
    DN_GPU_LAUNCHED(net);
}

/* the twin of dn_layer_avgpool (avgpool_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_avgpool_gpu = {
    dn_gpu_make_stateless, avgpool_forward_gpu, avgpool_backward_gpu, dn_gpu_free_stateless,
};
