/*
 * emu_cudnn.cc - the cuDNN calls of tests/gpu/emu/cudnn.h on the CPU.
 *
 * Convolution (cross-correlation, groups G, NCHW, filter [K, C/G, R, S]):
 *   y[n,k,p,q] = sum_{c in group(k), r, s} x[n,c, p*u - pad_h + r*dil_h,
 *                                             q*v - pad_w + s*dil_w] w[k,c',r,s]
 * and its two adjoints, each blended as out = alpha * result + beta * out
 * (beta = 0: out is not read, as cuDNN does not read it).
 * Batch norm, spatial: per channel over N*H*W values, mean m and biased
 * variance v; y = alpha (scale (x - m) / sqrt(v + eps) + bias) + beta y;
 * running = (1 - factor) running + factor (m, and v N/(N-1));
 * saved: m and 1/sqrt(v + eps). Backward uses the saved values.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "cudnn.h"

struct dn_emu_cudnn {
    cudaStream_t stream;
};

struct dn_emu_tensor {
    int n, c, h, w;
    int set;
};

struct dn_emu_conv {
    int pad_h, pad_w, u, v, dil_h, dil_w, groups;
    cudnnConvolutionMode_t mode;
    cudnnMathType_t math;
    int set;
};

static void enqueue(cudnnHandle_t h, std::function<void()> body)
{
    dn_emu_enqueue_library_call(h->stream, std::move(body));
}

static cudnnStatus_t bad(const char *call, const char *why)
{
    fprintf(stderr, "CUDA emulator: %s: %s\n", call, why);
    return CUDNN_STATUS_BAD_PARAM;
}

static long count(const dn_emu_tensor *t) { return (long)t->n * t->c * t->h * t->w; }

static void need_device(const char *call, const char *what, const void *p, long floats)
{
    if (!dn_emu_is_device(p, (size_t)floats * sizeof(float)))
        dn_emu_die("%s: %s (%p, %ld floats) is not inside one device allocation",
                   call, what, p, floats);
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
    *h = new dn_emu_cudnn{NULL};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h)
{
    dn_emu_drain();
    delete h;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

const char *cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    default: return "CUDNN_STATUS_UNKNOWN";
    }
}

/* ------------------------------------------------------- descriptors */

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d)
{
    *d = new dn_emu_tensor();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d,
                                         cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c,
                                         int h, int w)
{
    if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT)
        return bad("cudnnSetTensor4dDescriptor", "only NCHW float is emulated");
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return bad("cudnnSetTensor4dDescriptor", "a dimension is not positive");
    *d = dn_emu_tensor{n, c, h, w, 1};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d)
{
    return cudnnCreateTensorDescriptor(d);
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d)
{
    return cudnnDestroyTensorDescriptor(d);
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d,
                                         cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k,
                                         int c, int h, int w)
{
    return cudnnSetTensor4dDescriptor(d, format, type, k, c, h, w);
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d)
{
    *d = new dn_emu_conv();
    (*d)->groups = 1;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d,
                                              int pad_h, int pad_w, int u,
                                              int v, int dilation_h,
                                              int dilation_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute)
{
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 ||
        dilation_w <= 0 || compute != CUDNN_DATA_FLOAT)
        return bad("cudnnSetConvolution2dDescriptor", "bad padding, stride, dilation or type");
    if (mode != CUDNN_CROSS_CORRELATION)
        return bad("cudnnSetConvolution2dDescriptor", "only cross-correlation is emulated");
    d->pad_h = pad_h, d->pad_w = pad_w, d->u = u, d->v = v;
    d->dil_h = dilation_h, d->dil_w = dilation_w, d->mode = mode, d->set = 1;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups)
{
    if (groups < 1)
        return bad("cudnnSetConvolutionGroupCount", "groups < 1");
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math)
{
    d->math = math;
    return CUDNN_STATUS_SUCCESS;
}

static int out_dim(int in, int pad, int k, int dil, int stride)
{
    return (in + 2 * pad - ((k - 1) * dil + 1)) / stride + 1;
}

static cudnnStatus_t output_dims(const dn_emu_conv *conv, const dn_emu_tensor *x,
                                 const dn_emu_tensor *w, int *n, int *c, int *h, int *wd)
{
    if (!conv->set || !x->set || !w->set)
        return bad("cudnnGetConvolution2dForwardOutputDim", "a descriptor is not set");
    if (x->c != w->c * conv->groups || w->n % conv->groups)
        return bad("cudnnGetConvolution2dForwardOutputDim",
                   "input channels != filter channels x groups, or filters not divisible by groups");
    *n = x->n, *c = w->n;
    *h = out_dim(x->h, conv->pad_h, w->h, conv->dil_h, conv->u);
    *wd = out_dim(x->w, conv->pad_w, w->w, conv->dil_w, conv->v);
    return *h > 0 && *wd > 0 ? CUDNN_STATUS_SUCCESS
                             : bad("cudnnGetConvolution2dForwardOutputDim", "empty output");
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t x,
    const cudnnFilterDescriptor_t w, int *n, int *c, int *h, int *wd)
{
    return output_dims(conv, x, w, n, c, h, wd);
}

/* The shapes of one convolution agree with each other. */
static cudnnStatus_t check_shapes(const char *call, const dn_emu_conv *cv,
                                  const dn_emu_tensor *x, const dn_emu_tensor *w,
                                  const dn_emu_tensor *y)
{
    int n, c, h, wd;
    cudnnStatus_t s = output_dims(cv, x, w, &n, &c, &h, &wd);
    if (s)
        return s;
    if (y->n != n || y->c != c || y->h != h || y->w != wd) {
        fprintf(stderr, "CUDA emulator: %s: output descriptor %dx%dx%dx%d, the "
                "convolution gives %dx%dx%dx%d\n", call, y->n, y->c, y->h, y->w,
                n, c, h, wd);
        return CUDNN_STATUS_BAD_PARAM;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* ----------------------------------------------------- convolutions */

enum direction { FORWARD, BACKWARD_DATA, BACKWARD_FILTER };

/* One pass over every (x, w, y) product of the convolution: forward
 * accumulates y += x w, backward-data dx += dy w, backward-filter
 * dw += x dy; acc has the size of the output of the direction. */
static void convolve(enum direction dir, const dn_emu_conv cv, const dn_emu_tensor X,
                     const dn_emu_tensor W, const dn_emu_tensor Y, const float *x,
                     const float *w, const float *y, std::vector<double> &acc)
{
    const int G = cv.groups, Kg = W.n / G, Cg = W.c;
    for (int n = 0; n < X.n; n++)
        for (int k = 0; k < W.n; k++) {
            const int g = k / Kg;
            for (int p = 0; p < Y.h; p++)
                for (int q = 0; q < Y.w; q++) {
                    const long yi = (((long)n * Y.c + k) * Y.h + p) * Y.w + q;
                    for (int c = 0; c < Cg; c++)
                        for (int r = 0; r < W.h; r++) {
                            const int ih = p * cv.u - cv.pad_h + r * cv.dil_h;
                            if (ih < 0 || ih >= X.h)
                                continue;
                            for (int s = 0; s < W.w; s++) {
                                const int iw = q * cv.v - cv.pad_w + s * cv.dil_w;
                                if (iw < 0 || iw >= X.w)
                                    continue;
                                const long xi = (((long)n * X.c + g * Cg + c) * X.h + ih) * X.w + iw;
                                const long wi = (((long)k * Cg + c) * W.h + r) * W.w + s;
                                if (dir == FORWARD)
                                    acc[yi] += (double)x[xi] * w[wi];
                                else if (dir == BACKWARD_DATA)
                                    acc[xi] += (double)y[yi] * w[wi];
                                else
                                    acc[wi] += (double)x[xi] * y[yi];
                            }
                        }
                }
        }
}

static cudnnStatus_t run_conv(const char *call, enum direction dir, cudnnHandle_t h,
                              const void *alpha, const void *beta,
                              const dn_emu_conv *cv, const dn_emu_tensor *X,
                              const dn_emu_tensor *W, const dn_emu_tensor *Y,
                              const float *x, const float *w, const float *y,
                              float *out)
{
    cudnnStatus_t s = check_shapes(call, cv, X, W, Y);
    if (s)
        return s;
    need_device(call, "x", x ? x : (const float *)out, count(X));
    need_device(call, "w", w ? w : (const float *)out, count(W));
    need_device(call, "y", y ? y : (const float *)out, count(Y));
    const float a = *(const float *)alpha, b = *(const float *)beta;
    const dn_emu_conv c = *cv;
    const dn_emu_tensor xs = *X, ws = *W, ys = *Y;
    const long n = dir == FORWARD ? count(Y) : dir == BACKWARD_DATA ? count(X) : count(W);
    enqueue(h, [=]() {
        std::vector<double> acc(n, 0.0);
        convolve(dir, c, xs, ws, ys, x, w, y, acc);
        for (long i = 0; i < n; i++)
            out[i] = b == 0 ? (float)(a * acc[i]) : (float)(a * acc[i] + b * out[i]);
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(
    cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xDesc,
    const void *x, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
    void *ws, size_t ws_bytes, const void *beta,
    const cudnnTensorDescriptor_t yDesc, void *y)
{
    return run_conv("cudnnConvolutionForward", FORWARD, h, alpha, beta, convDesc,
                    xDesc, wDesc, yDesc, (const float *)x, (const float *)w,
                    NULL, (float *)y);
}

cudnnStatus_t cudnnConvolutionBackwardData(
    cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t wDesc,
    const void *w, const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_bytes,
    const void *beta, const cudnnTensorDescriptor_t dxDesc, void *dx)
{
    return run_conv("cudnnConvolutionBackwardData", BACKWARD_DATA, h, alpha,
                    beta, convDesc, dxDesc, wDesc, dyDesc, NULL,
                    (const float *)w, (const float *)dy, (float *)dx);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(
    cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xDesc,
    const void *x, const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes,
    const void *beta, const cudnnFilterDescriptor_t dwDesc, void *dw)
{
    return run_conv("cudnnConvolutionBackwardFilter", BACKWARD_FILTER, h, alpha,
                    beta, convDesc, xDesc, dwDesc, dyDesc, (const float *)x,
                    NULL, (const float *)dy, (float *)dw);
}

/* The searches: one algorithm, no workspace, the descriptor's math type.
 * Like cuDNN's, they run the convolution (writing the output buffer). */
template <typename Perf>
static cudnnStatus_t found(const char *call, cudnnStatus_t ran, int requested,
                           int *returned, Perf *perf, cudnnMathType_t math)
{
    if (ran)
        return ran;
    if (requested < 1)
        return bad(call, "requested fewer than one algorithm");
    memset(perf, 0, sizeof *perf);
    perf[0].status = CUDNN_STATUS_SUCCESS;
    perf[0].determinism = CUDNN_DETERMINISTIC;
    perf[0].mathType = math == CUDNN_DEFAULT_MATH ? CUDNN_FMA_MATH : math;
    *returned = 1;
    return CUDNN_STATUS_SUCCESS;
}

static const float one = 1, zero = 0;

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t h, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t yDesc, void *y, const int requested,
    int *returned, cudnnConvolutionFwdAlgoPerf_t *perf, void *ws, size_t ws_bytes)
{
    const char *call = "cudnnFindConvolutionForwardAlgorithmEx";
    return found(call, run_conv(call, FORWARD, h, &one, &zero, convDesc, xDesc,
                                wDesc, yDesc, (const float *)x, (const float *)w,
                                NULL, (float *)y),
                 requested, returned, perf, convDesc->math);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t h, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t dxDesc, void *dx, const int requested,
    int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf, void *ws, size_t ws_bytes)
{
    const char *call = "cudnnFindConvolutionBackwardDataAlgorithmEx";
    return found(call, run_conv(call, BACKWARD_DATA, h, &one, &zero, convDesc,
                                dxDesc, wDesc, dyDesc, NULL, (const float *)w,
                                (const float *)dy, (float *)dx),
                 requested, returned, perf, convDesc->math);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t h, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc,
    const cudnnFilterDescriptor_t dwDesc, void *dw, const int requested,
    int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf, void *ws, size_t ws_bytes)
{
    const char *call = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
    return found(call, run_conv(call, BACKWARD_FILTER, h, &one, &zero, convDesc,
                                xDesc, dwDesc, dyDesc, (const float *)x, NULL,
                                (const float *)dy, (float *)dw),
                 requested, returned, perf, convDesc->math);
}

/* -------------------------------------------------------- batch norm */

static cudnnStatus_t check_bn(const char *call, cudnnBatchNormMode_t mode,
                              const dn_emu_tensor *x, const dn_emu_tensor *y,
                              const dn_emu_tensor *p)
{
    if (mode != CUDNN_BATCHNORM_SPATIAL)
        return bad(call, "only CUDNN_BATCHNORM_SPATIAL is emulated");
    if (y->n != x->n || y->c != x->c || y->h != x->h || y->w != x->w)
        return bad(call, "x and y descriptors differ");
    if (p->n != 1 || p->c != x->c || p->h != 1 || p->w != 1)
        return bad(call, "the parameter descriptor is not 1xCx1x1");
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t h, cudnnBatchNormMode_t mode, const void *alpha,
    const void *beta, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t yDesc, void *y,
    const cudnnTensorDescriptor_t paramDesc, const void *scale,
    const void *bias, double factor, void *running_mean, void *running_var,
    double epsilon, void *save_mean, void *save_inv_var)
{
    const char *call = "cudnnBatchNormalizationForwardTraining";
    cudnnStatus_t s = check_bn(call, mode, xDesc, yDesc, paramDesc);
    if (s)
        return s;
    const int C = xDesc->c;
    const long S = (long)xDesc->h * xDesc->w, N = xDesc->n * S;
    need_device(call, "x", x, count(xDesc));
    need_device(call, "y", y, count(yDesc));
    need_device(call, "scale", scale, C);
    need_device(call, "bias", bias, C);
    if ((running_mean == NULL) != (running_var == NULL) ||
        (save_mean == NULL) != (save_inv_var == NULL))
        return bad(call, "running (or saved) mean and variance must be given together");
    if (running_mean) {
        need_device(call, "running mean", running_mean, C);
        need_device(call, "running variance", running_var, C);
    }
    if (save_mean) {
        need_device(call, "saved mean", save_mean, C);
        need_device(call, "saved inverse variance", save_inv_var, C);
    }
    const float a = *(const float *)alpha, b = *(const float *)beta;
    const int B = xDesc->n;
    enqueue(h, [=]() {
        const float *xf = (const float *)x, *sc = (const float *)scale,
                    *bi = (const float *)bias;
        float *yf = (float *)y;
        for (int c = 0; c < C; c++) {
            double sum = 0, sq = 0;
            for (int n = 0; n < B; n++)
                for (long i = 0; i < S; i++)
                    sum += xf[((long)n * C + c) * S + i];
            const double m = sum / N;
            for (int n = 0; n < B; n++)
                for (long i = 0; i < S; i++) {
                    const double d = xf[((long)n * C + c) * S + i] - m;
                    sq += d * d;
                }
            const double v = sq / N, inv = 1.0 / sqrt(v + epsilon);
            for (int n = 0; n < B; n++)
                for (long i = 0; i < S; i++) {
                    const long k = ((long)n * C + c) * S + i;
                    const double r = sc[c] * (xf[k] - m) * inv + bi[c];
                    yf[k] = b == 0 ? (float)(a * r) : (float)(a * r + b * yf[k]);
                }
            if (running_mean) {
                float *rm = (float *)running_mean, *rv = (float *)running_var;
                const double unbiased = N > 1 ? v * N / (N - 1) : v;
                rm[c] = (float)((1 - factor) * rm[c] + factor * m);
                rv[c] = (float)((1 - factor) * rv[c] + factor * unbiased);
            }
            if (save_mean) {
                ((float *)save_mean)[c] = (float)m;
                ((float *)save_inv_var)[c] = (float)inv;
            }
        }
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t h, cudnnBatchNormMode_t mode, const void *alphaData,
    const void *betaData, const void *alphaParam, const void *betaParam,
    const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnTensorDescriptor_t dxDesc, void *dx,
    const cudnnTensorDescriptor_t paramDesc, const void *scale, void *dscale,
    void *dbias, double epsilon, const void *save_mean, const void *save_inv_var)
{
    const char *call = "cudnnBatchNormalizationBackward";
    cudnnStatus_t s = check_bn(call, mode, xDesc, dyDesc, paramDesc);
    if (!s)
        s = check_bn(call, mode, xDesc, dxDesc, paramDesc);
    if (s)
        return s;
    if ((save_mean == NULL) != (save_inv_var == NULL))
        return bad(call, "saved mean and inverse variance must be given together");
    const int C = xDesc->c, B = xDesc->n;
    const long S = (long)xDesc->h * xDesc->w, N = B * S;
    need_device(call, "x", x, count(xDesc));
    need_device(call, "dy", dy, count(xDesc));
    need_device(call, "dx", dx, count(xDesc));
    need_device(call, "scale", scale, C);
    need_device(call, "dscale", dscale, C);
    need_device(call, "dbias", dbias, C);
    if (save_mean) {
        need_device(call, "saved mean", save_mean, C);
        need_device(call, "saved inverse variance", save_inv_var, C);
    }
    const float ad = *(const float *)alphaData, bd = *(const float *)betaData;
    const float ap = *(const float *)alphaParam, bp = *(const float *)betaParam;
    enqueue(h, [=]() {
        const float *xf = (const float *)x, *dyf = (const float *)dy,
                    *sc = (const float *)scale;
        float *dxf = (float *)dx, *ds = (float *)dscale, *db = (float *)dbias;
        for (int c = 0; c < C; c++) {
            double m, inv;
            if (save_mean) {
                m = ((const float *)save_mean)[c];
                inv = ((const float *)save_inv_var)[c];
            } else { /* recomputed from x */
                double sum = 0, sq = 0;
                for (int n = 0; n < B; n++)
                    for (long i = 0; i < S; i++)
                        sum += xf[((long)n * C + c) * S + i];
                m = sum / N;
                for (int n = 0; n < B; n++)
                    for (long i = 0; i < S; i++) {
                        const double d = xf[((long)n * C + c) * S + i] - m;
                        sq += d * d;
                    }
                inv = 1.0 / sqrt(sq / N + epsilon);
            }
            double sum_dy = 0, sum_dy_xh = 0;
            for (int n = 0; n < B; n++)
                for (long i = 0; i < S; i++) {
                    const long k = ((long)n * C + c) * S + i;
                    sum_dy += dyf[k];
                    sum_dy_xh += dyf[k] * (xf[k] - m) * inv;
                }
            for (int n = 0; n < B; n++)
                for (long i = 0; i < S; i++) {
                    const long k = ((long)n * C + c) * S + i;
                    const double xh = (xf[k] - m) * inv;
                    const double g = sc[c] * inv * (dyf[k] - sum_dy / N - xh * sum_dy_xh / N);
                    dxf[k] = bd == 0 ? (float)(ad * g) : (float)(ad * g + bd * dxf[k]);
                }
            ds[c] = bp == 0 ? (float)(ap * sum_dy_xh) : (float)(ap * sum_dy_xh + bp * ds[c]);
            db[c] = bp == 0 ? (float)(ap * sum_dy) : (float)(ap * sum_dy + bp * db[c]);
        }
    });
    return CUDNN_STATUS_SUCCESS;
}
