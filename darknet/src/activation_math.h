/*
 * activation_math.h - the activation functions and their derivatives, one
 * definition for the CPU (activations.c) and the GPU (blas_gpu.h, compiled
 * by nvcc as __host__ __device__), so the two backends cannot drift apart.
 * Formulas and sources: activations.c.
 */
#ifndef DN_ACTIVATION_MATH_H
#define DN_ACTIVATION_MATH_H

#include <math.h>

#include "layer_util.h"

#if defined(__CUDACC__) || defined(DN_EMU_DEVICE_CODE)
#define DN_HD __host__ __device__ inline
#else
#define DN_HD static inline
#endif

#define DN_SELU_L 1.0507009873554805f
#define DN_SELU_A 1.6732632423543772f

DN_HD float dn_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

DN_HD float dn_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

DN_HD float dn_act(float x, dn_activation a)
{
    switch (a) {
    case DN_LINEAR: return x;
    case DN_RELU: return x > 0 ? x : 0;
    case DN_LEAKY: return x > 0 ? x : 0.1f * x;
    case DN_LOGISTIC: return dn_sigmoid(x);
    case DN_TANH: return tanhf(x);
    case DN_ELU: return x > 0 ? x : expm1f(x);
    case DN_SELU: return x > 0 ? DN_SELU_L * x : DN_SELU_L * DN_SELU_A * expm1f(x);
    case DN_MISH: return x * tanhf(dn_softplus(x));
    case DN_SWISH: return x * dn_sigmoid(x);
    case DN_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    default: return x;
    }
}

/* f'(x), from the pre-activation x and/or y = f(x) */
DN_HD float dn_act_grad(float x, float y, dn_activation a)
{
    switch (a) {
    case DN_LINEAR: return 1;
    case DN_RELU: return y > 0 ? 1.0f : 0.0f;
    case DN_LEAKY: return y > 0 ? 1.0f : 0.1f;
    case DN_LOGISTIC: return y * (1 - y);
    case DN_TANH: return 1 - y * y;
    case DN_ELU: return y > 0 ? 1.0f : y + 1.0f;
    case DN_SELU: return y > 0 ? DN_SELU_L : y + DN_SELU_L * DN_SELU_A;
    case DN_MISH: {
        float t = tanhf(dn_softplus(x));
        return t + x * (1 - t * t) * dn_sigmoid(x);
    }
    case DN_SWISH: {
        float s = dn_sigmoid(x);
        return s + x * s * (1 - s);
    }
    case DN_GELU:
        return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) +
               x * expf(-0.5f * x * x) * 0.3989422804014327f;
    default: return 1;
    }
}

#endif
