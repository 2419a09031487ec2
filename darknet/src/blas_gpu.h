/*
 * blas_gpu.h - the device kernels the GPU layers share: the twins of
 * blas.h (GEMM through cuBLAS, im2col and col2im, bias helpers) in blas.cu,
 * and of the activations in activations.cu. GPU builds only.
 *
 * Every function queues work on the network's stream and notes a failure
 * in the network (cuda.h); none waits. Layouts are blas.h's.
 */
#ifndef DN_BLAS_GPU_H
#define DN_BLAS_GPU_H

#ifdef DN_GPU

#include "cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "blas.h"
#include "layer_util.h"

/*
 * C[m, n] = alpha op(A) op(B) + beta C, row-major as dn_gemm. cuBLAS is
 * column-major, and a row-major matrix read column-major is its transpose,
 * so this computes C^T = op(B)^T op(A)^T: the same call with A and B
 * swapped. TF32 tensor cores when net->tf32, else strict fp32.
 */
void dn_gpu_gemm(dn_net *net, int trans_a, int trans_b, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
/* count products at once: A_i = a + i*stride_a (stride 0: one shared
 * matrix), and so on. */
void dn_gpu_gemm_batched(dn_net *net, int trans_a, int trans_b, int m, int n,
                         int k, float alpha, const float *a, int lda,
                         long stride_a, const float *b, int ldb, long stride_b,
                         float beta, float *c, int ldc, long stride_c,
                         int count);

void dn_gpu_fill(dn_net *net, float *x, long n, float value);
void dn_gpu_copy(dn_net *net, float *dst, const float *src, long n);
/* y += a * x */
void dn_gpu_axpy(dn_net *net, long n, float a, const float *x, float *y);
/* y += a * x * mask (mask may be NULL: 1) */
void dn_gpu_axpy_mask(dn_net *net, long n, float a, const float *x,
                      const float *mask, float *y);

/* x [batch, channels, spatial] in place: x = act(x + bias[c]) (bias may
 * be NULL: none); pre (when not NULL) keeps x + bias[c] for backward. */
void dn_gpu_bias_activate(dn_net *net, float *x, const float *bias,
                          float *pre, int batch, int channels, long spatial,
                          dn_activation a);
/* grad[c] += sum over b, s of delta[b, c, s] */
void dn_gpu_bias_backward(dn_net *net, float *grad, const float *delta,
                          int batch, int channels, long spatial);
/* x[r, :] = v[r] for x [rows, n]; v[r] += sum_j x[r, j] */
void dn_gpu_fill_rows(dn_net *net, float *x, const float *v, int rows, long n);
void dn_gpu_add_row_sums(dn_net *net, float *v, const float *x, int rows,
                         long n);
/* dst[r*dst_stride + j] += src[r*src_stride + j] for j < width, r < rows */
void dn_gpu_add_strided(dn_net *net, float *dst, long dst_stride,
                        const float *src, long src_stride, long width,
                        int rows);

/* One image: col [c*size*size, out_h*out_w] from im [c, h, w]; col2im
 * ADDS every entry back into the pixel it came from. */
void dn_gpu_im2col(dn_net *net, const float *im, const dn_conv_geom *g,
                   float *col);
void dn_gpu_col2im(dn_net *net, const float *col, const dn_conv_geom *g,
                   float *im);

/* activations.cu: dn_activate and dn_activate_backward on the device */
void dn_gpu_activate(dn_net *net, float *x, long n, dn_activation a);
void dn_gpu_activate_backward(dn_net *net, const float *x, const float *y,
                              float *delta, long n, dn_activation a);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
/* ------------------------------------------------ device-side helpers */

/* Blocks for n items at `threads` per block, for grid-stride loops. */
static inline unsigned dn_blocks(long n, int threads = 256)
{
    long b = (n + threads - 1) / threads;
    if (b > (1L << 20))
        b = 1L << 20;
    return (unsigned)(b > 0 ? b : 1);
}

#define DN_GRID_LOOP(i, n)                                                   \
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);      \
         i += (long)gridDim.x * blockDim.x)

/* Sum of v over the block (every thread gets it); blockDim.x a multiple of
 * 32, at most 1024. */
template <typename T> __device__ inline T dn_block_sum(T v)
{
    __shared__ T partial[32];
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* partial may still be read by a previous call */
    if (lane == 0)
        partial[warp] = v;
    __syncthreads();
    const int warps = (blockDim.x + 31) >> 5;
    v = threadIdx.x < warps ? partial[threadIdx.x] : (T)0;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0)
        partial[0] = v;
    __syncthreads();
    return partial[0];
}

template <typename T> __device__ inline T dn_block_max(T v)
{
    __shared__ T partial[32];
    for (int o = 16; o > 0; o >>= 1) {
        T w = __shfl_down_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0)
        partial[warp] = v;
    __syncthreads();
    const int warps = (blockDim.x + 31) >> 5;
    if (warp == 0) {
        v = threadIdx.x < warps ? partial[threadIdx.x] : partial[0];
        for (int o = 16; o > 0; o >>= 1) {
            T w = __shfl_down_sync(0xffffffffu, v, o);
            v = w > v ? w : v;
        }
    }
    if (threadIdx.x == 0)
        partial[0] = v;
    __syncthreads();
    return partial[0];
}

/* The activations of activations.c, element by element. */
#define DN_SELU_L 1.0507009873554805f
#define DN_SELU_A 1.6732632423543772f

__device__ inline float dn_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ inline float dn_softplus(float x)
{
    return x > 20.0f ? x : log1pf(expf(x));
}

__device__ inline float dn_act(float x, dn_activation a)
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

/* f'(x) from the pre-activation x and/or y = f(x) */
__device__ inline float dn_act_grad(float x, float y, dn_activation a)
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
#endif /* __CUDACC__ */

#endif /* DN_GPU */
#endif
