/*
 * blas.c - GEMM through CBLAS, im2col/col2im, element-wise kernels. See
 * blas.h for the layouts.
 *
 * The loops are OpenMP-parallel over independent output blocks (an image's
 * channel plane, or one row of col) so that no two threads write the same
 * float; small problems stay serial (the `if` clauses), where forking costs
 * more than it saves. Inside a parallel region (the convolution gives each
 * thread whole images) every function here runs on the calling thread.
 */
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <cblas.h>

#include "blas.h"

/* below this many floats touched, a loop runs on one thread */
#define PARALLEL_MIN 32768L
/* below this many FLOPs, a GEMM runs on one thread */
#define GEMM_PARALLEL_MIN 2e6

/*
 * One thread pool. OpenBLAS's pthread build keeps its own threads, which
 * busy-wait after each call just as OpenMP's do after each loop; on a small
 * machine the two pools then steal each other's cores and a convolution runs
 * several times slower than its GEMMs. So the BLAS library runs on the
 * calling thread and dn_gemm splits a large product across OpenMP threads
 * itself. (BLIS is single-threaded unless BLIS_NUM_THREADS says otherwise.)
 */
__attribute__((constructor)) static void blas_on_one_thread(void)
{
#ifdef DN_BLAS_OPENBLAS
    openblas_set_num_threads(1);
#endif
}

static void sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                  const float *a, int lda, const float *b, int ldb, float beta,
                  float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
                ldb, beta, c, ldc);
}

void dn_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
             const float *a, int lda, const float *b, int ldb, float beta,
             float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        /* BLAS leaves C alone only when beta = 1; make the k = 0 case exact */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(long)i * ldc + j] *= beta;
        return;
    }
    int threads = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && 2.0 * m * n * k >= GEMM_PARALLEL_MIN)
        threads = omp_get_max_threads();
#endif
    if (threads <= 1) {
        sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* Split the longer side of C into one block per thread, in multiples of
     * 16 so each block keeps whole vector widths. */
    const int split_n = n >= m, len = split_n ? n : m;
#pragma omp parallel num_threads(threads)
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int t = 0, nt = 1;
#endif
        const int chunk = ((len + nt - 1) / nt + 15) / 16 * 16;
        const int lo = t * chunk, hi = lo + chunk < len ? lo + chunk : len;
        if (lo < hi && split_n) /* C[:, lo:hi] = op(A) op(B)[:, lo:hi] */
            sgemm(trans_a, trans_b, m, hi - lo, k, alpha, a, lda,
                  trans_b ? b + (long)lo * ldb : b + lo, ldb, beta, c + lo, ldc);
        else if (lo < hi) /* C[lo:hi, :] = op(A)[lo:hi, :] op(B) */
            sgemm(trans_a, trans_b, hi - lo, n, k, alpha,
                  trans_a ? a + lo : a + (long)lo * lda, lda, b, ldb, beta,
                  c + (long)lo * ldc, ldc);
    }
}

int dn_conv_out_size(int in, int size, int stride, int pad, int dilation)
{
    long span = (long)dilation * (size - 1) + 1; /* extent of the window */
    long room = (long)in + 2L * pad - span;
    if (room < 0)
        return 0;
    return (int)(room / stride + 1);
}

void dn_conv_geom_set(dn_conv_geom *g, int c, int h, int w, int size,
                      int stride, int pad, int dilation)
{
    g->c = c, g->h = h, g->w = w;
    g->size = size, g->stride = stride, g->pad = pad, g->dilation = dilation;
    g->out_h = dn_conv_out_size(h, size, stride, pad, dilation);
    g->out_w = dn_conv_out_size(w, size, stride, pad, dilation);
}

/*
 * For a kernel column offset `off` (= kx*dilation - pad), the output columns
 * ox whose input column ox*stride + off lies in [0, w): [*x0, *x1).
 */
static void valid_range(int off, int stride, int w, int out_w, int *x0, int *x1)
{
    int lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int hi = w - off <= 0 ? 0 : (w - off + stride - 1) / stride;
    if (hi > out_w)
        hi = out_w;
    if (lo > hi)
        lo = hi;
    *x0 = lo, *x1 = hi;
}

/*
 * Two ways through a channel plane. A small plane (at most PADDED_MAX floats
 * once padded: CIFAR-sized maps) is first copied into a zero-padded plane on
 * the stack, so every tap reads whole output rows with no bounds checks;
 * that matters when rows are 4 or 8 values long. A large plane goes tap by
 * tap, clipping each output row to the valid input columns.
 */
#define PADDED_MAX 4096 /* floats: 16 KiB of stack */

/* Rows of 4 or 8 floats copy twice as fast inline as through memcpy, which
 * GCC would otherwise make of the copy loop below. */
#if defined(__GNUC__) && !defined(__clang__)
#define INLINE_COPIES __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define INLINE_COPIES
#endif

static int padded_fits(const dn_conv_geom *g)
{
    /* (out-1)*stride + dilation*(size-1) <= in + 2*pad - 1: every read lies
     * in the (h + 2 pad) x (w + 2 pad) padded plane */
    return (long)(g->h + 2 * g->pad) * (g->w + 2 * g->pad) <= PADDED_MAX;
}

/* col rows of channel plane `src` (one image): dst[tap*ld + oy*ow + ox] */
INLINE_COPIES static void im2col_padded(const float *src,
                                        const dn_conv_geom *g, float *dst,
                                        long ld)
{
    float pad[PADDED_MAX];
    const int pw = g->w + 2 * g->pad, ph = g->h + 2 * g->pad;
    const int s = g->stride, d = g->dilation, ow = g->out_w, oh = g->out_h;
    memset(pad, 0, sizeof *pad * ph * pw);
    for (int y = 0; y < g->h; y++)
        memcpy(pad + (long)(y + g->pad) * pw + g->pad, src + (long)y * g->w,
               sizeof *pad * g->w);
    for (int ky = 0; ky < g->size; ky++)
        for (int kx = 0; kx < g->size; kx++, dst += ld) {
            const float *base = pad + (long)ky * d * pw + kx * d;
            float *out = dst;
            for (int oy = 0; oy < oh; oy++, out += ow) {
                const float *row = base + (long)oy * s * pw;
                for (int ox = 0; ox < ow; ox++)
                    out[ox] = row[ox * s];
            }
        }
}

/* One row of col: kernel tap (ky, kx) of channel plane `src`. */
static void im2col_row(const float *src, const dn_conv_geom *g, int ky, int kx,
                       float *dst)
{
    const int oy_off = ky * g->dilation - g->pad;
    const int ox_off = kx * g->dilation - g->pad;
    const int s = g->stride, ow = g->out_w;
    int x0, x1;
    valid_range(ox_off, s, g->w, ow, &x0, &x1);
    for (int oy = 0; oy < g->out_h; oy++, dst += ow) {
        const int iy = oy * s + oy_off;
        if (iy < 0 || iy >= g->h) {
            memset(dst, 0, sizeof *dst * ow);
            continue;
        }
        const float *line = src + (long)iy * g->w;
        memset(dst, 0, sizeof *dst * x0);
        if (s == 1) {
            memcpy(dst + x0, line + x0 + ox_off, sizeof *dst * (x1 - x0));
        } else {
            for (int ox = x0; ox < x1; ox++)
                dst[ox] = line[ox * s + ox_off];
        }
        memset(dst + x1, 0, sizeof *dst * (ow - x1));
    }
}

void dn_im2col(const float *im, long im_stride, int n, const dn_conv_geom *g,
               float *col, long ld)
{
    const int k2 = g->size * g->size;
    const long rows = (long)g->c * k2, hw = (long)g->out_h * g->out_w;
    if (padded_fits(g)) {
        const long planes = (long)n * g->c;
#pragma omp parallel for schedule(static) if (rows * n * hw > PARALLEL_MIN)
        for (long t = 0; t < planes; t++) {
            const int i = (int)(t / g->c), ch = (int)(t % g->c);
            im2col_padded(im + i * im_stride + (long)ch * g->h * g->w, g,
                          col + (long)ch * k2 * ld + i * hw, ld);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (rows * n * hw > PARALLEL_MIN)
    for (long t = 0; t < rows * n; t++) {
        const long r = t / n;
        const int i = (int)(t % n), ch = (int)(r / k2), tap = (int)(r % k2);
        const float *src = im + i * im_stride + (long)ch * g->h * g->w;
        im2col_row(src, g, tap / g->size, tap % g->size, col + r * ld + i * hw);
    }
}

/* The adjoint of im2col_padded: channel plane dst += the taps' rows of col */
static void col2im_padded(const float *src, long ld, const dn_conv_geom *g,
                          float *dst)
{
    float pad[PADDED_MAX];
    const int pw = g->w + 2 * g->pad, ph = g->h + 2 * g->pad;
    const int s = g->stride, d = g->dilation, ow = g->out_w, oh = g->out_h;
    memset(pad, 0, sizeof *pad * ph * pw);
    for (int ky = 0; ky < g->size; ky++)
        for (int kx = 0; kx < g->size; kx++, src += ld) {
            float *base = pad + (long)ky * d * pw + kx * d;
            const float *in = src;
            for (int oy = 0; oy < oh; oy++, in += ow) {
                float *row = base + (long)oy * s * pw;
                for (int ox = 0; ox < ow; ox++)
                    row[ox * s] += in[ox];
            }
        }
    for (int y = 0; y < g->h; y++) {
        const float *p = pad + (long)(y + g->pad) * pw + g->pad;
        float *line = dst + (long)y * g->w;
        for (int x = 0; x < g->w; x++)
            line[x] += p[x];
    }
}

/* The adjoint of im2col_row: dst (a channel plane) += scattered src. */
static void col2im_row(const float *src, const dn_conv_geom *g, int ky, int kx,
                       float *dst)
{
    const int oy_off = ky * g->dilation - g->pad;
    const int ox_off = kx * g->dilation - g->pad;
    const int s = g->stride, ow = g->out_w;
    int x0, x1;
    valid_range(ox_off, s, g->w, ow, &x0, &x1);
    if (x0 == x1)
        return; /* this tap only ever reads padding */
    for (int oy = 0; oy < g->out_h; oy++, src += ow) {
        const int iy = oy * s + oy_off;
        if (iy < 0 || iy >= g->h)
            continue;
        float *line = dst + (long)iy * g->w + x0 * s + ox_off;
        if (s == 1) {
            for (int ox = x0; ox < x1; ox++)
                line[ox - x0] += src[ox];
        } else {
            for (int ox = x0; ox < x1; ox++)
                line[(ox - x0) * s] += src[ox];
        }
    }
}

void dn_col2im(const float *col, long ld, int n, const dn_conv_geom *g,
               float *im, long im_stride)
{
    const int k2 = g->size * g->size;
    const long hw = (long)g->out_h * g->out_w;
    const long planes = (long)n * g->c;
    const int padded = padded_fits(g);
    /* one task per (image, channel) plane: its taps write only that plane */
#pragma omp parallel for schedule(static) if (planes * k2 * hw > PARALLEL_MIN)
    for (long t = 0; t < planes; t++) {
        const int i = (int)(t / g->c), ch = (int)(t % g->c);
        float *dst = im + i * im_stride + (long)ch * g->h * g->w;
        const float *src = col + (long)ch * k2 * ld + i * hw;
        if (padded) {
            col2im_padded(src, ld, g, dst);
            continue;
        }
        for (int tap = 0; tap < k2; tap++, src += ld)
            col2im_row(src, g, tap / g->size, tap % g->size, dst);
    }
}

void dn_batch_to_rows(const float *src, int n, int rows, long len, float *dst)
{
#pragma omp parallel for schedule(static) if ((long)n * rows * len > PARALLEL_MIN)
    for (long t = 0; t < (long)n * rows; t++) {
        const long i = t / rows, r = t % rows;
        memcpy(dst + r * n * len + i * len, src + t * len, sizeof *dst * len);
    }
}

void dn_rows_to_batch(const float *src, int n, int rows, long len, float *dst)
{
#pragma omp parallel for schedule(static) if ((long)n * rows * len > PARALLEL_MIN)
    for (long t = 0; t < (long)n * rows; t++) {
        const long i = t / rows, r = t % rows;
        memcpy(dst + t * len, src + r * n * len + i * len, sizeof *dst * len);
    }
}

void dn_add_bias(float *x, const float *bias, int batch, int channels,
                 long spatial)
{
    const long planes = (long)batch * channels;
#pragma omp parallel for schedule(static) if (planes * spatial > PARALLEL_MIN)
    for (long t = 0; t < planes; t++) {
        const float b = bias[t % channels];
        float *p = x + t * spatial;
        for (long s = 0; s < spatial; s++)
            p[s] += b;
    }
}

void dn_bias_backward(float *grad, const float *delta, int batch, int channels,
                      long spatial)
{
#pragma omp parallel for schedule(static) \
    if ((long)batch * channels * spatial > PARALLEL_MIN)
    for (int c = 0; c < channels; c++) {
        double sum = 0;
        for (int b = 0; b < batch; b++) {
            const float *p = delta + ((long)b * channels + c) * spatial;
            float part = 0;
#pragma omp simd reduction(+ : part)
            for (long s = 0; s < spatial; s++)
                part += p[s];
            sum += part;
        }
        grad[c] += (float)sum;
    }
}
