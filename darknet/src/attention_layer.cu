/*
 * attention_layer.cu - [attention] on the device: attention_layer.c's
 * equations (1)-(5) and their adjoints, image by image, with the heads of
 * an image in one strided-batched GEMM (head h's rows of Q, K, V and O are
 * h*D*N floats apart, its scores h*N*N apart).
 *
 * Device state: Q, K, V [batch, 3C, N], the probabilities A [batch, heads,
 * N, N], the stacked head outputs O [batch, C, N] and, with positional=1,
 * in + P [batch, C, N]. Backward's scratch (the shared workspace): d[QKV]
 * [3C, N], dO [C, N], dX [C, N] and dA [heads, N, N].
 */
#include <math.h>
#include <stdlib.h>

#include "attention_layer.h"
#include "blas_gpu.h"

typedef struct attention_gpu {
    float *x, *qkv, *probs, *stacked;
} attention_gpu;

/* one block per row of n: the row becomes its softmax */
__global__ void softmax_rows_kernel(float *s, int n)
{
    float *row = s + (long)blockIdx.x * n;
    float max = -3.402823466e38f;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        max = row[j] > max ? row[j] : max;
    max = dn_block_max(max);
    float sum = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        row[j] = expf(row[j] - max);
        sum += row[j];
    }
    const float inv = 1.0f / dn_block_sum(sum);
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        row[j] *= inv;
}

/* one block per row: da := A .* (dA - rowsum(A .* dA)) */
__global__ void softmax_rows_backward_kernel(const float *p, float *da, int n)
{
    const float *pr = p + (long)blockIdx.x * n;
    float *dr = da + (long)blockIdx.x * n;
    float dot = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        dot += pr[j] * dr[j];
    dot = dn_block_sum(dot);
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        dr[j] = pr[j] * (dr[j] - dot);
}

static float *param_w(dn_layer *l, const float *host)
{
    return dn_gpu_param(l, host)->w_gpu;
}

static float *param_grad(dn_layer *l, const float *host)
{
    return dn_gpu_param(l, host)->grad_gpu;
}

static int attention_make_gpu(dn_layer *l, dn_net *net, dn_error *err)
{
    const attention *a = (const attention *)l->priv;
    attention_gpu *g = (attention_gpu *)calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    l->priv_gpu = g;
    const size_t B = l->batch, C = l->c, N = a->tokens, H = a->heads;
    if ((a->positional && !(g->x = dn_gpu_floats(B * C * N, err))) ||
        !(g->qkv = dn_gpu_floats(B * 3 * C * N, err)) ||
        !(g->probs = dn_gpu_floats(B * H * N * N, err)) ||
        !(g->stacked = dn_gpu_floats(B * C * N, err)))
        return -1;
    l->workspace_gpu = sizeof(float) * (5 * C * N + H * N * N);
    return 0;
}

static void attention_forward_gpu(dn_layer *l, dn_net *net)
{
    const attention *a = (const attention *)l->priv;
    attention_gpu *g = (attention_gpu *)l->priv_gpu;
    const int C = l->c, N = a->tokens, D = a->head_dim, H = a->heads;
    const long CN = (long)C * N, NN = (long)N * N, DN = (long)D * N;
    const float scale = 1.0f / sqrtf((float)D);
    const float *w_qkv = param_w(l, a->weights), *w_o = w_qkv + 3L * C * C;
    const float *biases = param_w(l, a->biases);
    for (int b = 0; b < l->batch; b++) {
        const float *x = net->input_gpu + b * CN;
        if (a->positional) {
            float *xp = g->x + b * CN;
            dn_gpu_copy(net, xp, x, CN);
            dn_gpu_axpy(net, CN, 1.0f, param_w(l, a->pos), xp);
            x = xp;
        }
        float *qkv = g->qkv + b * 3 * CN;
        float *p = g->probs + (long)b * H * NN;
        float *o = g->stacked + b * CN;
        dn_gpu_fill_rows(net, qkv, biases, 3 * C, N); /* (1) */
        dn_gpu_gemm(net, 0, 0, 3 * C, N, C, 1, w_qkv, C, x, N, 1, qkv, N);
        dn_gpu_gemm_batched(net, 1, 0, N, N, D, scale, qkv, N, DN, qkv + CN,
                            N, DN, 0, p, N, NN, H); /* (2) */
        softmax_rows_kernel<<<H * N, 128, 0, dn_gpu_stream(net)>>>(p, N);
        DN_GPU_LAUNCHED(net);                       /* (3) */
        dn_gpu_gemm_batched(net, 0, 1, D, N, N, 1, qkv + 2 * CN, N, DN, p, N,
                            NN, 0, o, N, DN, H);    /* (4) */
        float *out = l->output_gpu + b * CN;        /* (5) */
        dn_gpu_fill_rows(net, out, biases + 3 * C, C, N);
        dn_gpu_gemm(net, 0, 0, C, N, C, 1, w_o, C, o, N, 1, out, N);
    }
}

static void attention_backward_gpu(dn_layer *l, dn_net *net)
{
    const attention *a = (const attention *)l->priv;
    attention_gpu *g = (attention_gpu *)l->priv_gpu;
    const int C = l->c, N = a->tokens, D = a->head_dim, H = a->heads;
    const long CN = (long)C * N, NN = (long)N * N, DN = (long)D * N;
    const float scale = 1.0f / sqrtf((float)D);
    const float *w_qkv = param_w(l, a->weights), *w_o = w_qkv + 3L * C * C;
    float *gb = param_grad(l, a->biases), *gw = param_grad(l, a->weights);
    float *dqkv = (float *)net->workspace_gpu; /* [3C, N] */
    float *dout = dqkv + 3 * CN;               /* dO [C, N] */
    float *dx = dout + CN;                     /* [C, N] */
    float *da = dx + CN;                       /* [H, N, N] */
    for (int b = 0; b < l->batch; b++) {
        const float *G = l->delta_gpu + b * CN, *o = g->stacked + b * CN;
        const float *qkv = g->qkv + b * 3 * CN;
        const float *p = g->probs + (long)b * H * NN;
        const float *x = a->positional ? g->x + b * CN : net->input_gpu + b * CN;
        /* (5) */
        dn_gpu_add_row_sums(net, gb + 3 * C, G, C, N);
        dn_gpu_gemm(net, 0, 1, C, C, N, 1, G, N, o, N, 1, gw + 3L * C * C, C);
        dn_gpu_gemm(net, 1, 0, C, N, C, 1, w_o, C, G, N, 0, dout, N);
        /* (4): dV_h = dO_h A_h, dA_h = dO_h^T V_h */
        dn_gpu_gemm_batched(net, 0, 0, D, N, N, 1, dout, N, DN, p, N, NN, 0,
                            dqkv + 2 * CN, N, DN, H);
        dn_gpu_gemm_batched(net, 1, 0, N, N, D, 1, dout, N, DN, qkv + 2 * CN,
                            N, DN, 0, da, N, NN, H);
        /* (3) */
        softmax_rows_backward_kernel<<<H * N, 128, 0, dn_gpu_stream(net)>>>(
            p, da, N);
        DN_GPU_LAUNCHED(net);
        /* (2): dQ_h = s K_h dS_h^T, dK_h = s Q_h dS_h */
        dn_gpu_gemm_batched(net, 0, 1, D, N, N, scale, qkv + CN, N, DN, da, N,
                            NN, 0, dqkv, N, DN, H);
        dn_gpu_gemm_batched(net, 0, 0, D, N, N, scale, qkv, N, DN, da, N, NN,
                            0, dqkv + CN, N, DN, H);
        /* (1) */
        dn_gpu_add_row_sums(net, gb, dqkv, 3 * C, N);
        dn_gpu_gemm(net, 0, 1, 3 * C, C, N, 1, dqkv, N, x, N, 1, gw, C);
        if (!net->delta_gpu && !a->positional)
            continue;
        dn_gpu_gemm(net, 1, 0, C, N, 3 * C, 1, w_qkv, C, dqkv, N, 0, dx, N);
        if (a->positional)
            dn_gpu_axpy(net, CN, 1.0f, dx, param_grad(l, a->pos));
        if (net->delta_gpu)
            dn_gpu_axpy(net, CN, 1.0f, dx, net->delta_gpu + b * CN);
    }
}

static void attention_free_gpu(dn_layer *l)
{
    attention_gpu *g = (attention_gpu *)l->priv_gpu;
    if (g) {
        dn_gpu_free(g->x);
        dn_gpu_free(g->qkv);
        dn_gpu_free(g->probs);
        dn_gpu_free(g->stacked);
    }
    free(g);
    l->priv_gpu = NULL;
}

/* the twin of dn_layer_attention (attention_layer.c): make, forward, backward, free */
extern "C" const dn_layer_gpu_ops dn_layer_attention_gpu = {
    attention_make_gpu, attention_forward_gpu, attention_backward_gpu, attention_free_gpu,
};
