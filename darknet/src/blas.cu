/*
 * blas.cu - the device twins of blas.c: GEMM through cuBLAS, im2col and
 * col2im, and the small element-wise helpers of the GPU layers (see
 * blas_gpu.h for the contracts).
 */
#include "blas_gpu.h"

static cublasOperation_t op(int trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

static void set_math(dn_net *net)
{
    /* DEFAULT keeps fp32 arithmetic for SGEMM; TF32 only when allowed */
    DN_GPU_CUBLAS(net, cublasSetMathMode(dn_gpu_blas(net),
                                         net->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                   : CUBLAS_DEFAULT_MATH));
}

extern "C" void dn_gpu_gemm(dn_net *net, int trans_a, int trans_b, int m,
                            int n, int k, float alpha, const float *a, int lda,
                            const float *b, int ldb, float beta, float *c,
                            int ldc)
{
    set_math(net);
    DN_GPU_CUBLAS(net, cublasSgemm(dn_gpu_blas(net), op(trans_b), op(trans_a),
                                   n, m, k, &alpha, b, ldb, a, lda, &beta, c,
                                   ldc));
}

extern "C" void dn_gpu_gemm_batched(dn_net *net, int trans_a, int trans_b,
                                    int m, int n, int k, float alpha,
                                    const float *a, int lda, long stride_a,
                                    const float *b, int ldb, long stride_b,
                                    float beta, float *c, int ldc,
                                    long stride_c, int count)
{
    set_math(net);
    DN_GPU_CUBLAS(net, cublasSgemmStridedBatched(
                           dn_gpu_blas(net), op(trans_b), op(trans_a), n, m, k,
                           &alpha, b, ldb, stride_b, a, lda, stride_a, &beta,
                           c, ldc, stride_c, count));
}

extern "C" void dn_gpu_copy(dn_net *net, float *dst, const float *src, long n)
{
    if (n <= 0 || dst == src)
        return;
    DN_GPU_CUDA(net, cudaMemcpyAsync(dst, src, n * sizeof(float),
                                     cudaMemcpyDeviceToDevice,
                                     dn_gpu_stream(net)));
}

__global__ void axpy_kernel(long n, float a, const float *x, const float *mask,
                            float *y)
{
    DN_GRID_LOOP(i, n)
    y[i] += a * x[i] * (mask ? mask[i] : 1.0f);
}

extern "C" void dn_gpu_axpy(dn_net *net, long n, float a, const float *x,
                            float *y)
{
    dn_gpu_axpy_mask(net, n, a, x, NULL, y);
}

extern "C" void dn_gpu_axpy_mask(dn_net *net, long n, float a, const float *x,
                                 const float *mask, float *y)
{
    if (n <= 0)
        return;
    axpy_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(n, a, x, mask, y);
    DN_GPU_LAUNCHED(net);
}

__global__ void bias_activate_kernel(float *x, const float *bias, float *pre,
                                     long n, int channels, long spatial,
                                     dn_activation a)
{
    DN_GRID_LOOP(i, n)
    {
        float v = bias ? x[i] + bias[(i / spatial) % channels] : x[i];
        if (pre)
            pre[i] = v;
        x[i] = dn_act(v, a);
    }
}

extern "C" void dn_gpu_bias_activate(dn_net *net, float *x, const float *bias,
                                     float *pre, int batch, int channels,
                                     long spatial, dn_activation a)
{
    const long n = (long)batch * channels * spatial;
    bias_activate_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        x, bias, pre, n, channels, spatial, a);
    DN_GPU_LAUNCHED(net);
}

/* one block per channel */
__global__ void bias_backward_kernel(float *grad, const float *delta,
                                     int batch, int channels, long spatial)
{
    const int c = blockIdx.x;
    const long n = (long)batch * spatial;
    double sum = 0;
    for (long j = threadIdx.x; j < n; j += blockDim.x) {
        const long b = j / spatial, s = j % spatial;
        sum += delta[(b * channels + c) * spatial + s];
    }
    sum = dn_block_sum(sum);
    if (threadIdx.x == 0)
        grad[c] += (float)sum;
}

extern "C" void dn_gpu_bias_backward(dn_net *net, float *grad,
                                     const float *delta, int batch,
                                     int channels, long spatial)
{
    bias_backward_kernel<<<channels, 256, 0, dn_gpu_stream(net)>>>(
        grad, delta, batch, channels, spatial);
    DN_GPU_LAUNCHED(net);
}

__global__ void fill_rows_kernel(float *x, const float *v, long rows, long n)
{
    DN_GRID_LOOP(i, rows * n)
    x[i] = v[i / n];
}

extern "C" void dn_gpu_fill_rows(dn_net *net, float *x, const float *v,
                                 int rows, long n)
{
    fill_rows_kernel<<<dn_blocks((long)rows * n), 256, 0, dn_gpu_stream(net)>>>(
        x, v, rows, n);
    DN_GPU_LAUNCHED(net);
}

/* one block per row */
__global__ void row_sums_kernel(float *v, const float *x, long n)
{
    const float *row = x + (long)blockIdx.x * n;
    float sum = 0;
    for (long j = threadIdx.x; j < n; j += blockDim.x)
        sum += row[j];
    sum = dn_block_sum(sum);
    if (threadIdx.x == 0)
        v[blockIdx.x] += sum;
}

extern "C" void dn_gpu_add_row_sums(dn_net *net, float *v, const float *x,
                                    int rows, long n)
{
    row_sums_kernel<<<rows, 256, 0, dn_gpu_stream(net)>>>(v, x, n);
    DN_GPU_LAUNCHED(net);
}

__global__ void add_strided_kernel(float *dst, long dst_stride,
                                   const float *src, long src_stride,
                                   long width, long rows)
{
    DN_GRID_LOOP(i, rows * width)
    {
        const long r = i / width, j = i % width;
        dst[r * dst_stride + j] += src[r * src_stride + j];
    }
}

extern "C" void dn_gpu_add_strided(dn_net *net, float *dst, long dst_stride,
                                   const float *src, long src_stride,
                                   long width, int rows)
{
    const long n = width * rows;
    if (n <= 0)
        return;
    add_strided_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(
        dst, dst_stride, src, src_stride, width, rows);
    DN_GPU_LAUNCHED(net);
}

/* one thread per col entry: row (c, ky, kx), column (oy, ox) */
__global__ void im2col_kernel(const float *im, dn_conv_geom g, float *col)
{
    const long cols = (long)g.out_h * g.out_w;
    const long n = (long)g.c * g.size * g.size * cols;
    DN_GRID_LOOP(i, n)
    {
        const long row = i / cols, p = i % cols;
        const int kx = row % g.size, ky = (row / g.size) % g.size;
        const int c = row / (g.size * g.size);
        const int oy = p / g.out_w, ox = p % g.out_w;
        const int y = oy * g.stride - g.pad + ky * g.dilation;
        const int x = ox * g.stride - g.pad + kx * g.dilation;
        col[i] = (y >= 0 && y < g.h && x >= 0 && x < g.w)
                     ? im[((long)c * g.h + y) * g.w + x]
                     : 0.0f;
    }
}

/* one thread per image pixel, gathering the col entries read from it (no
 * atomics: each pixel is written by one thread) */
__global__ void col2im_kernel(const float *col, dn_conv_geom g, float *im)
{
    const long cols = (long)g.out_h * g.out_w;
    const long n = (long)g.c * g.h * g.w;
    DN_GRID_LOOP(i, n)
    {
        const int x = i % g.w, y = (i / g.w) % g.h, c = i / ((long)g.w * g.h);
        float sum = 0;
        for (int ky = 0; ky < g.size; ky++) {
            const int ty = y + g.pad - ky * g.dilation;
            if (ty < 0 || ty % g.stride)
                continue;
            const int oy = ty / g.stride;
            if (oy >= g.out_h)
                continue;
            for (int kx = 0; kx < g.size; kx++) {
                const int tx = x + g.pad - kx * g.dilation;
                if (tx < 0 || tx % g.stride)
                    continue;
                const int ox = tx / g.stride;
                if (ox >= g.out_w)
                    continue;
                const long row = ((long)c * g.size + ky) * g.size + kx;
                sum += col[row * cols + (long)oy * g.out_w + ox];
            }
        }
        im[i] += sum;
    }
}

extern "C" void dn_gpu_im2col(dn_net *net, const float *im,
                              const dn_conv_geom *g, float *col)
{
    const long n = (long)g->c * g->size * g->size * g->out_h * g->out_w;
    im2col_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(im, *g, col);
    DN_GPU_LAUNCHED(net);
}

extern "C" void dn_gpu_col2im(dn_net *net, const float *col,
                              const dn_conv_geom *g, float *im)
{
    const long n = (long)g->c * g->h * g->w;
    col2im_kernel<<<dn_blocks(n), 256, 0, dn_gpu_stream(net)>>>(col, *g, im);
    DN_GPU_LAUNCHED(net);
}
