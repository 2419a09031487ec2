/*
 * layernorm_layer.c - [layernorm]: layer normalisation (Ba, Kiros and Hinton
 * 2016, "Layer Normalization") over the channels of each position, the
 * normalisation of a transformer block (Vaswani et al. 2017, section 3.1)
 * when the positions of a feature map are its tokens (see [attention]).
 *
 * No keys. For image b and position n (N = h*w positions), over the C
 * channels, with eps = 1e-5 (PyTorch's LayerNorm default):
 *   mu    = (1/C) sum_c x[c, n]
 *   var   = (1/C) sum_c (x[c, n] - mu)^2          (biased, as the paper)
 *   xhat  = (x[c, n] - mu) / sqrt(var + eps)
 *   out   = scales[c] xhat + biases[c]
 * Training and inference are the same (no running statistics).
 *
 * Backward, with G = dL/d(out) and r = 1 / sqrt(var + eps):
 *   dbiases[c] += sum_{b,n} G,  dscales[c] += sum_{b,n} G xhat
 *   g = G scales[c]
 *   d in = r (g - mean_c(g) - xhat mean_c(g xhat))
 *
 * Parameters, in .weights order: biases [C] (init 0), scales [C] (init 1);
 * neither takes weight decay (Darknet decays weights only).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "layernorm_layer.h"

#define LAYERNORM_EPS 1e-5f

enum { P_BIASES, P_SCALES };

static void layernorm_free(dn_layer *l)
{
    layernorm *ln = l->priv;
    if (ln) {
        free(ln->biases);
        free(ln->scales);
        free(ln->xhat);
        free(ln->inv_std);
    }
    free(ln);
    l->priv = NULL;
}

static int layernorm_make(dn_layer *l, dn_section *s, dn_net *net,
                          dn_error *err)
{
    const long C = l->c, N = (long)l->h * l->w;
    layernorm *ln = calloc(1, sizeof *ln);
    if (!ln)
        return dn_fail(err, "out of memory");
    l->priv = ln;
    l->params[0] = (dn_param){.name = "biases", .n = C};
    l->params[1] = (dn_param){.name = "scales", .n = C};
    l->n_params = 2;
    l->out_c = l->c, l->out_h = l->h, l->out_w = l->w;
    /* per-position sums over channels: forward's mean, backward's two means */
    l->workspace = (size_t)(2 * N);
    /* per element: mean (1), centre and square (3), normalise (1), scale and
     * shift (2) */
    l->flops = 7.0 * C * N;
    snprintf(l->desc, sizeof l->desc, "over %ld channels", C);
    int rc = dn_layer_reserve(l, s, net, 2.0 * C + (double)l->batch * C * N +
                              (double)l->batch * N, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    ln->biases = dn_calloc_floats(C);
    ln->scales = dn_calloc_floats(C);
    for (long c = 0; c < C; c++)
        ln->scales[c] = 1;
    ln->xhat = dn_calloc_floats((size_t)l->batch * C * N);
    ln->inv_std = dn_calloc_floats((size_t)l->batch * N);
    l->params[0].w = ln->biases;
    l->params[1].w = ln->scales;
    l->saved[0] = ln->biases, l->saved_n[0] = C;
    l->saved[1] = ln->scales, l->saved_n[1] = C;
    l->n_saved = 2;
    return 0;
}

static void layernorm_forward(dn_layer *l, dn_net *net)
{
    layernorm *ln = l->priv;
    const int C = l->c;
    const long N = (long)l->h * l->w, CN = C * N;
    float *mean = net->workspace; /* [N] */
    for (int b = 0; b < l->batch; b++) {
        const float *x = net->input + b * CN;
        float *xhat = ln->xhat + b * CN, *out = l->output + b * CN;
        float *r = ln->inv_std + b * N;
        /* channel-outer loops keep the reads contiguous */
        for (long i = 0; i < N; i++)
            mean[i] = 0, r[i] = 0;
        for (int c = 0; c < C; c++)
            for (long i = 0; i < N; i++)
                mean[i] += x[c * N + i];
        for (long i = 0; i < N; i++)
            mean[i] /= (float)C;
        for (int c = 0; c < C; c++)
            for (long i = 0; i < N; i++) {
                float d = x[c * N + i] - mean[i];
                r[i] += d * d;
            }
        for (long i = 0; i < N; i++)
            r[i] = 1.0f / sqrtf(r[i] / (float)C + LAYERNORM_EPS);
        for (int c = 0; c < C; c++)
            for (long i = 0; i < N; i++) {
                long j = c * N + i;
                xhat[j] = (x[j] - mean[i]) * r[i];
                out[j] = ln->scales[c] * xhat[j] + ln->biases[c];
            }
    }
}

static void layernorm_backward(dn_layer *l, dn_net *net)
{
    layernorm *ln = l->priv;
    const int C = l->c;
    const long N = (long)l->h * l->w, CN = C * N;
    float *gb = l->params[P_BIASES].grad, *gs = l->params[P_SCALES].grad;
    float *mean_g = net->workspace, *mean_gx = mean_g + N; /* [N] each */
    for (int b = 0; b < l->batch; b++) {
        const float *G = l->delta + b * CN, *xhat = ln->xhat + b * CN;
        const float *r = ln->inv_std + b * N;
        for (long i = 0; i < N; i++)
            mean_g[i] = 0, mean_gx[i] = 0;
        for (int c = 0; c < C; c++) {
            float sum_g = 0, sum_gx = 0;
            for (long i = 0; i < N; i++) {
                long j = c * N + i;
                float g = G[j] * ln->scales[c];
                sum_g += G[j];
                sum_gx += G[j] * xhat[j];
                mean_g[i] += g;
                mean_gx[i] += g * xhat[j];
            }
            gb[c] += sum_g;
            gs[c] += sum_gx;
        }
        if (!net->delta)
            continue;
        for (long i = 0; i < N; i++)
            mean_g[i] /= (float)C, mean_gx[i] /= (float)C;
        float *din = net->delta + b * CN;
        for (int c = 0; c < C; c++)
            for (long i = 0; i < N; i++) {
                long j = c * N + i;
                float g = G[j] * ln->scales[c];
                din[j] += r[i] * (g - mean_g[i] - xhat[j] * mean_gx[i]);
            }
    }
}

const dn_layer_type dn_layer_layernorm = {
    .name = "layernorm",
    .keys = dn_no_keys,
    .make = layernorm_make,
    .forward = layernorm_forward,
    .backward = layernorm_backward,
    .free = layernorm_free,
    .gpu = DN_GPU_TWIN(dn_layer_layernorm_gpu),
};
