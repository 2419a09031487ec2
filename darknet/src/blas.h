/*
 * blas.h - the dense kernels the weighted layers share: a row-major GEMM over
 * the CBLAS interface (OpenBLAS by default, BLIS with BLAS=blis), im2col and
 * col2im with stride, padding and dilation, and a few element-wise kernels.
 *
 * Layouts: an image is [c, h, w]; a batch is [n, c, h, w]. A "col" matrix has
 * one row per (channel, ky, kx) of the kernel window, in that order (the
 * order of a convolution's weights [filters, c, size, size]), and one column
 * per output position. Several images may sit side by side in one col
 * matrix: image i owns columns [i*out_h*out_w, (i+1)*out_h*out_w) and `ld`
 * is the row stride (n*out_h*out_w), so one GEMM covers them all.
 */
#ifndef DN_BLAS_H
#define DN_BLAS_H

/*
 * C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C, all row-major;
 * op(X) is X^T when trans_x is set. lda/ldb/ldc are the row strides of A, B
 * and C as stored. A large product is split across the OpenMP threads, each
 * calling the BLAS library single-threaded (linking blas.o sets OpenBLAS to
 * one thread: the framework's one thread count is OpenMP's, [net] threads=).
 * Inside a parallel region it runs on the calling thread.
 */
void dn_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
             const float *a, int lda, const float *b, int ldb, float beta,
             float *c, int ldc);

/* The geometry of one image through a convolution window. */
typedef struct dn_conv_geom {
    int c, h, w;                      /* input image [c, h, w] */
    int size, stride, pad, dilation;  /* square kernel, symmetric padding */
    int out_h, out_w;
} dn_conv_geom;

/*
 * Output length along one axis (AlexeyAB's form, which reduces to Darknet's
 * when dilation = 1):  out = (in + 2*pad - dilation*(size-1) - 1)/stride + 1.
 * Returns a value < 1 when the window does not fit.
 */
int dn_conv_out_size(int in, int size, int stride, int pad, int dilation);
/* Fills g (out_h, out_w included). */
void dn_conv_geom_set(dn_conv_geom *g, int c, int h, int w, int size,
                      int stride, int pad, int dilation);

/*
 * im:  n images, image i at im + i*im_stride, each [c, h, w]
 * col: [c*size*size, ld], image i in columns i*out_h*out_w onwards.
 * Positions outside the image read as zero.
 */
void dn_im2col(const float *im, long im_stride, int n, const dn_conv_geom *g,
               float *col, long ld);
/* The adjoint of dn_im2col: ADDS every column entry into the image pixel it
 * was read from (padding entries are dropped). */
void dn_col2im(const float *col, long ld, int n, const dn_conv_geom *g,
               float *im, long im_stride);

/* [n, rows, len] (batch-major) -> [rows, n*len] (images side by side) */
void dn_batch_to_rows(const float *src, int n, int rows, long len, float *dst);
/* [rows, n*len] -> [n, rows, len] */
void dn_rows_to_batch(const float *src, int n, int rows, long len, float *dst);

/* x[b, c, s] += bias[c] for x [batch, channels, spatial] */
void dn_add_bias(float *x, const float *bias, int batch, int channels,
                 long spatial);
/* grad[c] += sum over b, s of delta[b, c, s] */
void dn_bias_backward(float *grad, const float *delta, int batch, int channels,
                      long spatial);

#endif
