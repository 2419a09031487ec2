/*
 * activations.cu - dn_activate and dn_activate_backward (activations.c) on
 * the device; the formulas are the device functions of blas_gpu.h.
 */
#include "blas_gpu.h"

__global__ void activate_kernel(float *x, long n, dn_activation a)
{
    DN_GRID_LOOP(i, n)
    x[i] = dn_act(x[i], a);
}

__global__ void activate_backward_kernel(const float *x, const float *y,
                                         float *delta, long n, dn_activation a)
{
    DN_GRID_LOOP(i, n)
    delta[i] *= dn_act_grad(x ? x[i] : 0.0f, y[i], a);
}

extern "C" void dn_gpu_activate(dn_net *net, float *x, long n, dn_activation a)
{
    if (a == DN_LINEAR || n <= 0)
        return;
    activate_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(x, n, a);
    DN_GPU_LAUNCHED(net);
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
