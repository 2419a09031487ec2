/*
 * convolutional_layer.cu - [convolutional] on the device, groups and
 * dilation included, then the output stage (bias or batch norm, and the
 * activation: batchnorm_gpu.h).
 *
 * With CUDNN=1: cuDNN's convolutions (cross-correlation, as Darknet's),
 * forward, backward-data and backward-filter, each with the algorithm
 * cudnnFind*AlgorithmEx measured fastest on this layer's shapes when the
 * network moved to the device (results are shared by layers of the same
 * shape: ResNet repeats a handful). With tf32=1 the search may pick tensor
 * core (TF32) algorithms; with tf32=0 only fp32 (FMA) ones. Gradients
 * accumulate (beta = 1), as the CPU's.
 *
 * Without cuDNN: im2col on the device, then cuBLAS, image by image and
 * group by group, with convolutional_layer.c's GEMM shapes:
 *   forward          out[F, hw]  = W[F, K] x col[K, hw]
 *   weight gradient  dW[F, K]   += delta[F, hw] x col[K, hw]^T
 *   input gradient   dcol[K, hw] = W[F, K]^T x delta[F, hw], then col2im
 *
 * Workspace (shared, bytes): [the convolution's scratch | the output
 * stage's scratch (batch norm's input gradient)].
 */
#include <stdlib.h>
#include <string.h>

#include "batchnorm_gpu.h"
#include "blas_gpu.h"
#include "convolutional_layer.h"

typedef struct conv_gpu {
    dn_post_gpu post;
    float *weights, *biases;                        /* twins */
    float *weights_grad, *biases_grad, *scales_grad; /* twins */
    size_t scratch_at; /* workspace offset of the output stage's scratch */
#ifdef DN_CUDNN
    cudnnTensorDescriptor_t in_desc, out_desc;
    cudnnFilterDescriptor_t w_desc;
    /* one per direction: each carries its algorithm's math type */
    cudnnConvolutionDescriptor_t fwd_desc, bwd_data_desc, bwd_filter_desc;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t fwd_bytes, bwd_data_bytes, bwd_filter_bytes;
#endif
} conv_gpu;

#ifdef DN_CUDNN
/* ------------------------------------------------ cuDNN: algorithm choice */

typedef struct algo_key {
    int device, tf32, n, c, h, w, filters, size, stride, pad, dilation, groups;
} algo_key;

typedef struct algo_choice {
    algo_key key;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
    size_t fwd_bytes, bwd_data_bytes, bwd_filter_bytes;
} algo_choice;

/* Measured choices, per process (as cuDNN's own benchmark caches are):
 * measuring costs milliseconds per shape, and networks repeat shapes. */
#define MAX_CHOICES 512
static algo_choice choices[MAX_CHOICES];
static int n_choices;

/* The first (fastest) usable result: any, with TF32 allowed; else one
 * that does not use tensor cores. */
static int usable(cudnnStatus_t status, cudnnMathType_t math, int tf32)
{
    if (status != CUDNN_STATUS_SUCCESS)
        return 0;
    return tf32 || math == CUDNN_FMA_MATH || math == CUDNN_DEFAULT_MATH;
}

static int set_math(cudnnConvolutionDescriptor_t d, int tf32, dn_error *err)
{
    return DN_CUDNN_OK(cudnnSetConvolutionMathType(
                           d, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH),
                       err);
}

static int find_algorithms(dn_layer *l, dn_net *net, conv_gpu *g,
                           algo_choice *c, dn_error *err)
{
    const int tf32 = net->tf32;
    cudnnHandle_t dnn = dn_gpu_dnn(net);
    void *ws = net->workspace_gpu;
    const size_t ws_bytes = net->workspace_gpu_bytes;
    float *y = dn_post_gpu_input(&g->post, l->output_gpu);
    /* the searches write dx and dw: scratch copies, not the network's */
    float *dx = dn_gpu_floats((size_t)l->batch * l->inputs, err);
    float *dw = dx ? dn_gpu_floats(l->params[l->n_params - 1].n, err) : NULL;
    cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int nf = 0, nd = 0, nw = 0, rc = -1;
    if (!dx || !dw || set_math(g->fwd_desc, tf32, err) ||
        set_math(g->bwd_data_desc, tf32, err) ||
        set_math(g->bwd_filter_desc, tf32, err) ||
        DN_CUDNN_OK(cudnnFindConvolutionForwardAlgorithmEx(
                        dnn, g->in_desc, net->input_gpu, g->w_desc, g->weights,
                        g->fwd_desc, g->out_desc, y,
                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &nf, fp, ws,
                        ws_bytes), err) ||
        DN_CUDNN_OK(cudnnFindConvolutionBackwardDataAlgorithmEx(
                        dnn, g->w_desc, g->weights, g->out_desc, y,
                        g->bwd_data_desc, g->in_desc, dx,
                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &nd, dp, ws,
                        ws_bytes), err) ||
        DN_CUDNN_OK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
                        dnn, g->in_desc, net->input_gpu, g->out_desc, y,
                        g->bwd_filter_desc, g->w_desc, dw,
                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &nw, wp, ws,
                        ws_bytes), err))
        goto done;
    int i, j, k;
    for (i = 0; i < nf && !usable(fp[i].status, fp[i].mathType, tf32); i++)
        ;
    for (j = 0; j < nd && !usable(dp[j].status, dp[j].mathType, tf32); j++)
        ;
    for (k = 0; k < nw && !usable(wp[k].status, wp[k].mathType, tf32); k++)
        ;
    if (i == nf || j == nd || k == nw) {
        dn_fail(err, "cuDNN found no %s algorithm for the %s pass",
                tf32 ? "usable" : "fp32 (FMA)",
                i == nf ? "forward" : j == nd ? "backward-data"
                                              : "backward-filter");
        goto done;
    }
    /* strict fp32: run them as they were measured, on FMA units; else in
     * the math the search reports for them */
    c->fwd = fp[i].algo, c->fwd_math = tf32 ? fp[i].mathType : CUDNN_FMA_MATH;
    c->fwd_bytes = fp[i].memory;
    c->bwd_data = dp[j].algo;
    c->bwd_data_math = tf32 ? dp[j].mathType : CUDNN_FMA_MATH;
    c->bwd_data_bytes = dp[j].memory;
    c->bwd_filter = wp[k].algo;
    c->bwd_filter_math = tf32 ? wp[k].mathType : CUDNN_FMA_MATH;
    c->bwd_filter_bytes = wp[k].memory;
    rc = 0;
done:
    dn_gpu_free(dx);
    dn_gpu_free(dw);
    return rc;
}

static int make_cudnn(dn_layer *l, dn_net *net, conv_gpu *g, dn_error *err)
{
    const conv *cv = (const conv *)l->priv;
    if (DN_CUDNN_OK(cudnnCreateTensorDescriptor(&g->in_desc), err) ||
        DN_CUDNN_OK(cudnnCreateTensorDescriptor(&g->out_desc), err) ||
        DN_CUDNN_OK(cudnnCreateFilterDescriptor(&g->w_desc), err) ||
        DN_CUDNN_OK(cudnnSetTensor4dDescriptor(g->in_desc, CUDNN_TENSOR_NCHW,
                                               CUDNN_DATA_FLOAT, l->batch,
                                               l->c, l->h, l->w), err) ||
        DN_CUDNN_OK(cudnnSetTensor4dDescriptor(g->out_desc, CUDNN_TENSOR_NCHW,
                                               CUDNN_DATA_FLOAT, l->batch,
                                               l->out_c, l->out_h, l->out_w),
                    err) ||
        DN_CUDNN_OK(cudnnSetFilter4dDescriptor(g->w_desc, CUDNN_DATA_FLOAT,
                                               CUDNN_TENSOR_NCHW, cv->filters,
                                               l->c / cv->groups, cv->size,
                                               cv->size), err))
        return -1;
    cudnnConvolutionDescriptor_t *descs[3] = {&g->fwd_desc, &g->bwd_data_desc,
                                              &g->bwd_filter_desc};
    for (int d = 0; d < 3; d++)
        if (DN_CUDNN_OK(cudnnCreateConvolutionDescriptor(descs[d]), err) ||
            DN_CUDNN_OK(cudnnSetConvolution2dDescriptor(
                            *descs[d], cv->padding, cv->padding, cv->stride,
                            cv->stride, cv->dilation, cv->dilation,
                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT), err) ||
            DN_CUDNN_OK(cudnnSetConvolutionGroupCount(*descs[d], cv->groups),
                        err))
            return -1;
    int n, c, h, w;
    if (DN_CUDNN_OK(cudnnGetConvolution2dForwardOutputDim(
                        g->fwd_desc, g->in_desc, g->w_desc, &n, &c, &h, &w),
                    err))
        return -1;
    if (n != l->batch || c != l->out_c || h != l->out_h || w != l->out_w)
        return dn_fail(err, "cuDNN's output shape %dx%dx%dx%d differs from "
                       "%dx%dx%dx%d", n, c, h, w, l->batch, l->out_c,
                       l->out_h, l->out_w);
    const algo_key key = {net->gpu, net->tf32, l->batch, l->c, l->h,
                          l->w, cv->filters, cv->size, cv->stride,
                          cv->padding, cv->dilation, cv->groups};
    algo_choice *choice = NULL;
    for (int i = 0; i < n_choices && !choice; i++)
        if (memcmp(&choices[i].key, &key, sizeof key) == 0)
            choice = &choices[i];
    algo_choice found;
    if (!choice) {
        memset(&found, 0, sizeof found);
        found.key = key;
        if (find_algorithms(l, net, g, &found, err))
            return -1;
        choice = &found;
        if (n_choices < MAX_CHOICES)
            choices[n_choices++] = found;
    }
    g->fwd = choice->fwd, g->fwd_bytes = choice->fwd_bytes;
    g->bwd_data = choice->bwd_data, g->bwd_data_bytes = choice->bwd_data_bytes;
    g->bwd_filter = choice->bwd_filter;
    g->bwd_filter_bytes = choice->bwd_filter_bytes;
    if (DN_CUDNN_OK(cudnnSetConvolutionMathType(g->fwd_desc, choice->fwd_math),
                    err) ||
        DN_CUDNN_OK(cudnnSetConvolutionMathType(g->bwd_data_desc,
                                                choice->bwd_data_math), err) ||
        DN_CUDNN_OK(cudnnSetConvolutionMathType(g->bwd_filter_desc,
                                                choice->bwd_filter_math), err))
        return -1;
    size_t ws = g->fwd_bytes;
    if (g->bwd_data_bytes > ws)
        ws = g->bwd_data_bytes;
    if (g->bwd_filter_bytes > ws)
        ws = g->bwd_filter_bytes;
    g->scratch_at = dn_gpu_align(ws);
    return 0;
}
#endif /* DN_CUDNN */

/* ------------------------------------------------------------ the layer */

static int convolutional_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    conv *cv = (conv *)l->priv;
    conv_gpu *g = (conv_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    g->weights = dn_gpu_twin(l, cv->weights);
    g->biases = dn_gpu_twin(l, cv->biases);
    g->weights_grad = dn_gpu_param(l, cv->weights)->grad_gpu;
    g->biases_grad = dn_gpu_param(l, cv->biases)->grad_gpu;
    if (cv->post.batch_normalize)
        g->scales_grad = dn_gpu_param(l, cv->post.bn.scales)->grad_gpu;
    if (dn_post_gpu_init(&g->post, &cv->post, l, err))
        return -1;
#ifdef DN_CUDNN
    if (make_cudnn(l, net, g, err))
        return -1;
#else
    const long hw = (long)l->out_h * l->out_w;
    const long rows = (long)l->c * cv->size * cv->size; /* col, all groups */
    g->scratch_at = dn_gpu_align(sizeof(float) * rows * hw);
#endif
    l->workspace_gpu = g->scratch_at + dn_post_gpu_scratch_bytes(&g->post);
    return 0;
}

#ifndef DN_CUDNN
/* 1x1, stride 1, no padding: the input image is its own col matrix */
static int direct(const conv *cv)
{
    return cv->size == 1 && cv->stride == 1 && cv->padding == 0 &&
           cv->dilation == 1;
}
#endif

/* in: net->input_gpu [batch, c, h, w]; out: [batch, filters, oh, ow] */
static void convolutional_forward_gpu(dn_layer *l, dn_net *net)
{
    conv_gpu *g = (conv_gpu *)l->priv_gpu;
    float *dst = dn_post_gpu_input(&g->post, l->output_gpu);
#ifdef DN_CUDNN
    const float one = 1, zero = 0;
    DN_GPU_CUDNN(net, cudnnConvolutionForward(
                          dn_gpu_dnn(net), &one, g->in_desc, net->input_gpu,
                          g->w_desc, g->weights, g->fwd_desc, g->fwd,
                          net->workspace_gpu, g->fwd_bytes, &zero, g->out_desc,
                          dst));
#else
    const conv *cv = (const conv *)l->priv;
    const int G = cv->groups, F = cv->filters / G;
    const int hw = l->out_h * l->out_w, K = (l->c / G) * cv->size * cv->size;
    float *col = (float *)net->workspace_gpu;
    for (int b = 0; b < l->batch; b++) {
        const float *in = net->input_gpu + (long)b * l->inputs;
        if (direct(cv))
            col = (float *)in;
        else
            dn_gpu_im2col(net, in, &cv->geom, col);
        float *out = dst + (long)b * l->outputs;
        for (int k = 0; k < G; k++)
            dn_gpu_gemm(net, 0, 0, F, hw, K, 1, g->weights + (long)k * F * K,
                        K, col + (long)k * K * hw, hw, 0,
                        out + (long)k * F * hw, hw);
    }
#endif
    dn_post_gpu_forward(net, &g->post, l->output_gpu, g->biases, net->train);
}

static void convolutional_backward_gpu(dn_layer *l, dn_net *net)
{
    conv_gpu *g = (conv_gpu *)l->priv_gpu;
    float *scratch = (float *)dn_gpu_scratch(net, g->scratch_at);
    /* d: dL/d(convolution output), before bias/BN */
    const float *d = dn_post_gpu_backward(net, &g->post, l->output_gpu,
                                          l->delta_gpu, scratch,
                                          g->biases_grad, g->scales_grad,
                                          net->train);
#ifdef DN_CUDNN
    const float one = 1;
    DN_GPU_CUDNN(net, cudnnConvolutionBackwardFilter(
                          dn_gpu_dnn(net), &one, g->in_desc, net->input_gpu,
                          g->out_desc, d, g->bwd_filter_desc, g->bwd_filter,
                          net->workspace_gpu, g->bwd_filter_bytes, &one,
                          g->w_desc, g->weights_grad));
    if (net->delta_gpu)
        DN_GPU_CUDNN(net, cudnnConvolutionBackwardData(
                              dn_gpu_dnn(net), &one, g->w_desc, g->weights,
                              g->out_desc, d, g->bwd_data_desc, g->bwd_data,
                              net->workspace_gpu, g->bwd_data_bytes, &one,
                              g->in_desc, net->delta_gpu));
#else
    const conv *cv = (const conv *)l->priv;
    const int G = cv->groups, F = cv->filters / G;
    const int hw = l->out_h * l->out_w, K = (l->c / G) * cv->size * cv->size;
    float *col = (float *)net->workspace_gpu;
    for (int b = 0; b < l->batch; b++) {
        const float *in = net->input_gpu + (long)b * l->inputs;
        const float *db = d + (long)b * l->outputs;
        float *din = net->delta_gpu ? net->delta_gpu + (long)b * l->inputs
                                    : NULL;
        if (direct(cv))
            col = (float *)in;
        else
            dn_gpu_im2col(net, in, &cv->geom, col);
        for (int k = 0; k < G; k++)
            dn_gpu_gemm(net, 0, 1, F, K, hw, 1, db + (long)k * F * hw, hw,
                        col + (long)k * K * hw, hw, 1,
                        g->weights_grad + (long)k * F * K, K);
        if (!din)
            continue;
        for (int k = 0; k < G; k++) {
            const float *w = g->weights + (long)k * F * K;
            if (direct(cv)) /* col is the input: accumulate into its delta */
                dn_gpu_gemm(net, 1, 0, K, hw, F, 1, w, K, db + (long)k * F * hw,
                            hw, 1, din + (long)k * K * hw, hw);
            else /* this group's rows of col are used: overwrite them */
                dn_gpu_gemm(net, 1, 0, K, hw, F, 1, w, K, db + (long)k * F * hw,
                            hw, 0, col + (long)k * K * hw, hw);
        }
        if (!direct(cv))
            dn_gpu_col2im(net, col, &cv->geom, din);
    }
#endif
}

static void convolutional_free_gpu(dn_layer *l)
{
    conv_gpu *g = (conv_gpu *)l->priv_gpu;
    if (!g)
        return;
    dn_post_gpu_free(&g->post);
#ifdef DN_CUDNN
    if (g->in_desc)
        cudnnDestroyTensorDescriptor(g->in_desc);
    if (g->out_desc)
        cudnnDestroyTensorDescriptor(g->out_desc);
    if (g->w_desc)
        cudnnDestroyFilterDescriptor(g->w_desc);
    if (g->fwd_desc)
        cudnnDestroyConvolutionDescriptor(g->fwd_desc);
    if (g->bwd_data_desc)
        cudnnDestroyConvolutionDescriptor(g->bwd_data_desc);
    if (g->bwd_filter_desc)
        cudnnDestroyConvolutionDescriptor(g->bwd_filter_desc);
#endif
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_convolutional (convolutional_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_convolutional_gpu = {
    convolutional_make_gpu, convolutional_forward_gpu, convolutional_backward_gpu, convolutional_free_gpu,
};
