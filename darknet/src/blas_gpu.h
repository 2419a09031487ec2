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

/* activations.cu: dn_activate_backward on the device (the forward is fused
 * into dn_gpu_bias_activate) */
void dn_gpu_activate_backward(dn_net *net, const float *x, const float *y,
                              float *delta, long n, dn_activation a);

#ifdef __cplusplus
}
#endif

#if defined(__CUDACC__) || defined(DN_EMU_DEVICE_CODE)
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
    v = (int)threadIdx.x < warps ? partial[threadIdx.x] : (T)0;
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
        v = (int)threadIdx.x < warps ? partial[threadIdx.x] : partial[0];
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
#include "activation_math.h"
#endif /* __CUDACC__ */

#endif /* DN_GPU */
#endif
