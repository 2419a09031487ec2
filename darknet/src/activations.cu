/*
 * activations.cu - dn_activate_backward (activations.c) on the device; the
 * formulas are the device functions of blas_gpu.h (the forward is fused
 * with the bias: dn_gpu_bias_activate, blas.cu).
 */
#include "blas_gpu.h"

__global__ void activate_backward_kernel(const float *x, const float *y,
                                         float *delta, long n, dn_activation a)
{
    DN_GRID_LOOP(i, n)
    delta[i] *= dn_act_grad(x ? x[i] : 0.0f, y[i], a);
}

extern "C" void dn_gpu_activate_backward(dn_net *net, const float *x,
                                         const float *y, float *delta, long n,
                                         dn_activation a)
{
    if (a == DN_LINEAR || n <= 0)
        return;
    activate_backward_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        x, y, delta, n, a);
    DN_GPU_LAUNCHED(net);
}
