/*
 * attention_layer.c - [attention]: multi-head self-attention (Vaswani et al.
 * 2017, "Attention Is All You Need", section 3.2) over the spatial positions
 * of a feature map, as ViT does with image patches (Dosovitskiy et al. 2020):
 * each of the N = h*w positions is a token and its C channel values are the
 * token's embedding.
 *
 * Keys:
 *   heads       number of heads (>= 1, must divide C; default 1)
 *   positional  1: a learned embedding P [C, N] is added to the input before
 *               the projections (ViT's learned 1-D position embedding);
 *               default 0
 * The residual connection is not part of the layer: a cfg adds it with
 * [shortcut], as Darknet does for its residual blocks.
 *
 * One image in NCHW is already a [C, N] matrix with one column per token, so
 * every product below is a plain row-major GEMM, no transposes of data.
 * With X = in + P (or in), D = C / heads and s = 1 / sqrt(D):
 *   [Q; K; V] = W_qkv X + b_qkv        W_qkv [3C, C]  -> [3C, N]   (1)
 *   for each head h (rows h*D .. h*D+D-1 of Q, K and V):
 *     S_h = s Q_h^T K_h                [N, N]  scaled dot product  (2)
 *     A_h = softmax of each row of S_h (over the keys)              (3)
 *     O_h = V_h A_h^T                  [D, N]                      (4)
 *   out = W_o O + b_o                  W_o [C, C], O the heads stacked (5)
 * (2)-(4) are the paper's equation 1 with tokens as columns; (1) and (5) its
 * MultiHead(Q, K, V) with the per-head projections stacked into one matrix.
 *
 * Backward, with G = dL/d(out) [C, N] (each step the adjoint of one above):
 *   dW_o += G O^T,  db_o += G 1,  dO = W_o^T G                       (5)
 *   dV_h = dO_h A_h,  dA_h = dO_h^T V_h                              (4)
 *   dS_h = A_h .* (dA_h - rowsum(A_h .* dA_h))  softmax Jacobian     (3)
 *   dQ_h = s K_h dS_h^T,  dK_h = s Q_h dS_h                          (2)
 *   dW_qkv += d[QKV] X^T,  db_qkv += d[QKV] 1,  dX = W_qkv^T d[QKV]  (1)
 *   dP += dX (summed over the images),  d in += dX
 *
 * Parameters, in .weights order:
 *   biases      [4C]     b_q, b_k, b_v, b_o                 (no decay)
 *   weights     [4C, C]  W_q, W_k, W_v, W_o, each [C out, C in] (decay)
 *   positional  [C, N]   only with positional=1             (no decay)
 * Init: weights N(0, 1/C) (standard deviation 1/sqrt(C), LeCun), biases 0,
 * positional N(0, 0.02^2) as ViT; seeded per tensor from
 * dn_hash3(net->seed, layer index, tensor number).
 *
 * Memory: Q, K, V, the attention probabilities A and the stacked head outputs
 * O are kept from forward for backward ([batch, 3C, N], [batch, heads, N, N],
 * [batch, C, N]); backward's scratch is the shared workspace.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "attention_layer.h"

enum { P_BIASES, P_WEIGHTS, P_POSITIONAL };

static void attention_free(dn_layer *l)
{
    attention *a = l->priv;
    if (a) {
        free(a->biases);
        free(a->weights);
        free(a->pos);
        free(a->x);
        free(a->qkv);
        free(a->probs);
        free(a->stacked);
    }
    free(a);
    l->priv = NULL;
}

static void fill_normal(float *x, long n, double stddev, uint64_t seed)
{
    dn_rng rng;
    dn_rng_seed(&rng, seed);
    for (long i = 0; i < n; i++)
        x[i] = (float)(stddev * dn_rng_normal(&rng));
}

static void set_param(dn_layer *l, const char *name, float *w, long n,
                      int decay)
{
    l->params[l->n_params++] = (dn_param){.name = name, .w = w, .n = n,
                                          .decay = decay};
    l->saved[l->n_saved] = w;
    l->saved_n[l->n_saved++] = n;
}

static const dn_key attention_keys[] = {
    DN_INT("heads", "1", 1, 1 << 16, "attention heads (they divide the channels)"),
    DN_INT("positional", "0", 0, 1, "1: add learned position embeddings"),
    DN_KEYS_END,
};

static int attention_make(dn_layer *l, dn_section *s, dn_net *net,
                          dn_error *err)
{
    long heads, positional;
    if (dn_key_int(s, attention_keys, "heads", &heads, err) ||
        dn_key_int(s, attention_keys, "positional", &positional, err))
        return -1;
    if (l->c % heads)
        return dn_sec_fail(s, "heads", err,
                           "%ld does not divide the %d input channels", heads,
                           l->c);
    const long C = l->c, N = (long)l->h * l->w;
    /* the GEMM interface takes int sizes; an [N, N] score matrix per head
     * must fit (a 46000-token map would need 8 GiB per head anyway) */
    if ((double)N * N > INT_MAX || 4.0 * C * C > INT_MAX)
        return dn_fail(err, "%s:%d: [attention] error: %ld tokens of %ld "
                       "channels is too large; downsample first",
                       s->path, s->line, N, C);
    attention *a = calloc(1, sizeof *a);
    if (!a)
        return dn_fail(err, "out of memory");
    l->priv = a;
    a->heads = (int)heads;
    a->head_dim = (int)(C / heads);
    a->positional = (int)positional;
    a->tokens = (int)N;
    const size_t B = (size_t)l->batch;
    l->out_c = l->c, l->out_h = l->h, l->out_w = l->w;
    /* backward scratch per image: d[QKV] [3C, N], dO [C, N], dX [C, N],
     * dA [N, N] */
    l->workspace = (size_t)(5 * C * N + N * N);
    /* projections (1) and (5): 4 GEMMs of [C, C] x [C, N]; scores (2) and
     * weighted sum (4): 2 GEMMs of D x N x N per head, C x N x N in all.
     * The softmax (about 3 N^2 per head) and the bias adds are left out. */
    l->flops = 4.0 * 2 * N * C * C + 2.0 * 2 * N * N * C;
    snprintf(l->desc, sizeof l->desc, "%ld heads x %d%s", heads, a->head_dim,
             positional ? " +pos" : "");
    /* parameters: biases [4C], weights [4C, C], positional [C, N] */
    const long n_params[3] = {4 * C, 4 * C * C, C * N};
    const char *const names[3] = {"biases", "weights", "positional"};
    for (int k = 0; k < 2 + (int)positional; k++)
        l->params[l->n_params++] = (dn_param){.name = names[k],
                                              .n = n_params[k],
                                              .decay = k == 1};
    /* + x [B, C, N] with positional; qkv [B, 3C, N], probs [B, heads, N,
     * N], stacked [B, C, N] */
    const double floats = (double)n_params[0] + n_params[1] +
                          (positional ? (double)n_params[2] + (double)B * C * N
                                      : 0) +
                          (double)B * 3 * C * N + (double)B * heads * N * N +
                          (double)B * C * N;
    int rc = dn_layer_reserve(l, s, net, floats, err);
    if (rc)
        return rc < 0 ? -1 : 0;

    l->n_params = 0;
    a->biases = dn_calloc_floats(4 * C);
    a->weights = dn_calloc_floats(4 * C * C);
    fill_normal(a->weights, 4 * C * C, 1.0 / sqrt((double)C),
                dn_hash3(net->seed, (uint64_t)l->index, 0));
    set_param(l, "biases", a->biases, 4 * C, 0);
    set_param(l, "weights", a->weights, 4 * C * C, 1);
    if (positional) {
        a->pos = dn_calloc_floats(C * N);
        fill_normal(a->pos, C * N, 0.02,
                    dn_hash3(net->seed, (uint64_t)l->index, 1));
        set_param(l, "positional", a->pos, C * N, 0);
        a->x = dn_calloc_floats(B * C * N);
    }
    a->qkv = dn_calloc_floats(B * 3 * C * N);
    a->probs = dn_calloc_floats(B * heads * N * N);
    a->stacked = dn_calloc_floats(B * C * N);
    return 0;
}

/* x[r, :] = v[r] for the rows of x [rows, n] */
static void fill_rows(float *x, const float *v, int rows, int n)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++)
            x[(long)r * n + j] = v[r];
}

/* v[r] += sum_j x[r, j] */
static void add_row_sums(float *v, const float *x, int rows, int n)
{
    for (int r = 0; r < rows; r++) {
        float sum = 0;
        for (int j = 0; j < n; j++)
            sum += x[(long)r * n + j];
        v[r] += sum;
    }
}

/* Each row of s [n, n] becomes its softmax (max subtracted for range). */
static void softmax_rows(float *s, int n)
{
    for (int i = 0; i < n; i++) {
        float *row = s + (long)i * n;
        float max = row[0], sum = 0;
        for (int j = 1; j < n; j++)
            max = row[j] > max ? row[j] : max;
        for (int j = 0; j < n; j++) {
            row[j] = expf(row[j] - max);
            sum += row[j];
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j < n; j++)
            row[j] *= inv;
    }
}

/* da [n, n] := dL/dS from A [n, n] and dL/dA, row by row:
 * dS[i, j] = A[i, j] (dA[i, j] - sum_k A[i, k] dA[i, k]) */
static void softmax_rows_backward(const float *p, float *da, int n)
{
    for (int i = 0; i < n; i++) {
        const float *pr = p + (long)i * n;
        float *dr = da + (long)i * n;
        float dot = 0;
        for (int j = 0; j < n; j++)
            dot += pr[j] * dr[j];
        for (int j = 0; j < n; j++)
            dr[j] = pr[j] * (dr[j] - dot);
    }
}

static void attention_forward(dn_layer *l, dn_net *net)
{
    attention *a = l->priv;
    const int C = l->c, N = a->tokens, D = a->head_dim, H = a->heads;
    const long CN = (long)C * N, NN = (long)N * N;
    const float scale = 1.0f / sqrtf((float)D);
    const float *w_qkv = a->weights, *w_o = a->weights + 3L * C * C;
    for (int b = 0; b < l->batch; b++) {
        const float *x = net->input + b * CN;
        if (a->positional) {
            float *xp = a->x + b * CN;
            for (long i = 0; i < CN; i++)
                xp[i] = x[i] + a->pos[i];
            x = xp;
        }
        float *qkv = a->qkv + b * 3 * CN;
        fill_rows(qkv, a->biases, 3 * C, N); /* (1) */
        dn_gemm(0, 0, 3 * C, N, C, 1, w_qkv, C, x, N, 1, qkv, N);
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (long)h * D * N;
            const float *k = qkv + (long)(C + h * D) * N;
            const float *v = qkv + (long)(2 * C + h * D) * N;
            float *p = a->probs + ((long)b * H + h) * NN;
            dn_gemm(1, 0, N, N, D, scale, q, N, k, N, 0, p, N); /* (2) */
            softmax_rows(p, N);                                /* (3) */
            float *o = a->stacked + b * CN + (long)h * D * N;
            dn_gemm(0, 1, D, N, N, 1, v, N, p, N, 0, o, N);     /* (4) */
        }
        float *out = l->output + b * CN;
        fill_rows(out, a->biases + 3 * C, C, N); /* (5) */
        dn_gemm(0, 0, C, N, C, 1, w_o, C, a->stacked + b * CN, N, 1, out, N);
    }
}

static void attention_backward(dn_layer *l, dn_net *net)
{
    attention *a = l->priv;
    const int C = l->c, N = a->tokens, D = a->head_dim, H = a->heads;
    const long CN = (long)C * N, NN = (long)N * N;
    const float scale = 1.0f / sqrtf((float)D);
    const float *w_qkv = a->weights, *w_o = a->weights + 3L * C * C;
    float *gb = l->params[P_BIASES].grad, *gw = l->params[P_WEIGHTS].grad;
    float *dqkv = net->workspace;  /* [3C, N] */
    float *dout = dqkv + 3 * CN;   /* dO [C, N] */
    float *dx = dout + CN;         /* [C, N] */
    float *da = dx + CN;           /* [N, N] */
    for (int b = 0; b < l->batch; b++) {
        const float *g = l->delta + b * CN;
        const float *o = a->stacked + b * CN;
        const float *qkv = a->qkv + b * 3 * CN;
        const float *x = a->positional ? a->x + b * CN : net->input + b * CN;
        /* (5) */
        add_row_sums(gb + 3 * C, g, C, N);
        dn_gemm(0, 1, C, C, N, 1, g, N, o, N, 1, gw + 3L * C * C, C);
        dn_gemm(1, 0, C, N, C, 1, w_o, C, g, N, 0, dout, N);
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (long)h * D * N;
            const float *k = qkv + (long)(C + h * D) * N;
            const float *v = qkv + (long)(2 * C + h * D) * N;
            const float *p = a->probs + ((long)b * H + h) * NN;
            const float *dout_h = dout + (long)h * D * N;
            /* (4) */
            dn_gemm(0, 0, D, N, N, 1, dout_h, N, p, N, 0,
                    dqkv + (long)(2 * C + h * D) * N, N);
            dn_gemm(1, 0, N, N, D, 1, dout_h, N, v, N, 0, da, N);
            softmax_rows_backward(p, da, N); /* (3) */
            /* (2) */
            dn_gemm(0, 1, D, N, N, scale, k, N, da, N, 0,
                    dqkv + (long)h * D * N, N);
            dn_gemm(0, 0, D, N, N, scale, q, N, da, N, 0,
                    dqkv + (long)(C + h * D) * N, N);
        }
        /* (1) */
        add_row_sums(gb, dqkv, 3 * C, N);
        dn_gemm(0, 1, 3 * C, C, N, 1, dqkv, N, x, N, 1, gw, C);
        if (!net->delta && !a->positional)
            continue;
        dn_gemm(1, 0, C, N, 3 * C, 1, w_qkv, C, dqkv, N, 0, dx, N);
        if (a->positional) {
            float *gp = l->params[P_POSITIONAL].grad;
            for (long i = 0; i < CN; i++)
                gp[i] += dx[i];
        }
        if (net->delta) {
            float *din = net->delta + b * CN;
            for (long i = 0; i < CN; i++)
                din[i] += dx[i];
        }
    }
}

const dn_layer_type dn_layer_attention = {
    .name = "attention",
    .keys = attention_keys,
    .make = attention_make,
    .forward = attention_forward,
    .backward = attention_backward,
    .free = attention_free,
    .gpu = DN_GPU_TWIN(dn_layer_attention_gpu),
};
