/*
 * batchnorm_layer.c - batch normalisation: the functions of batchnorm.h (used
 * by conv and connected too) and the standalone [batchnorm] layer.
 *
 * [batchnorm] has no keys (as in Darknet): it normalises each channel of its
 * input and applies a learned scale (gamma) and bias (beta). Output shape =
 * input shape.
 *
 * Saved tensors: scales, rolling_mean, rolling_variance (Darknet's order),
 * then biases. Darknet learns the biases of a [batchnorm] layer but does not
 * save them, so a reloaded network would lose beta and resume inexactly; we
 * append them. The price: a .weights file written by Darknet for a cfg with
 * [batchnorm] layers is one tensor short and is refused (loads are
 * all-or-nothing), where it would otherwise load with beta reset to 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchnorm_layer.h"

/* below this many values, a loop runs on one thread */
#define PARALLEL_MIN 32768L

void dn_bn_init(dn_bn *bn, int batch, int channels, long spatial,
                float momentum)
{
    bn->batch = batch, bn->channels = channels, bn->spatial = spatial;
    bn->momentum = momentum;
    bn->scales = dn_calloc_floats(channels);
    bn->rolling_mean = dn_calloc_floats(channels);
    bn->rolling_variance = dn_calloc_floats(channels);
    bn->mean = dn_calloc_floats(channels);
    bn->inv_std = dn_calloc_floats(channels);
    bn->sums = dn_calloc_floats(2L * channels);
    bn->x_hat = dn_calloc_floats((size_t)batch * channels * spatial);
    for (int c = 0; c < channels; c++) {
        bn->scales[c] = 1;
        bn->rolling_variance[c] = 1;
        bn->inv_std[c] = 1;
    }
}

double dn_bn_floats(int batch, int channels, long spatial)
{
    /* scales, rolling mean and variance, mean, inv_std: 5; sums: 2 */
    return 7.0 * channels + (double)batch * channels * (double)spatial;
}

double dn_post_floats(int batch, int channels, long spatial,
                      int batch_normalize, dn_activation activation)
{
    double n = batch_normalize ? dn_bn_floats(batch, channels, spatial) : 0;
    if (dn_activation_needs_input(activation))
        n += (double)batch * channels * (double)spatial;
    return n;
}

void dn_bn_free(dn_bn *bn)
{
    free(bn->scales);
    free(bn->rolling_mean);
    free(bn->rolling_variance);
    free(bn->mean);
    free(bn->inv_std);
    free(bn->sums);
    free(bn->x_hat);
    memset(bn, 0, sizeof *bn);
}

void dn_bn_set_statistics(dn_bn *bn, int c, double mean, double var,
                          double N)
{
    const double m = bn->momentum;
    if (var < 0)
        var = 0;
    bn->mean[c] = (float)mean;
    bn->inv_std[c] = (float)(1.0 / sqrt(var + DN_BN_EPS));
    const double unbiased = N > 1 ? var * N / (N - 1) : var;
    bn->rolling_mean[c] = (float)((1 - m) * bn->rolling_mean[c] + m * mean);
    bn->rolling_variance[c] =
        (float)((1 - m) * bn->rolling_variance[c] + m * unbiased);
}

/*
 * Batch mean and biased variance of each channel, then the rolling update.
 * Sums run in double around a shift (the channel's first value), so that a
 * large mean does not cancel the variance.
 */
static void batch_statistics(dn_bn *bn, const float *x)
{
    const int B = bn->batch, C = bn->channels;
    const long S = bn->spatial;
    const double N = (double)B * S;
#pragma omp parallel for schedule(static) if (N * C > PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        const float shift = x[(long)c * S];
        double sum = 0, sq = 0;
        for (int b = 0; b < B; b++) {
            const float *p = x + ((long)b * C + c) * S;
#pragma omp simd reduction(+ : sum, sq)
            for (long s = 0; s < S; s++) {
                double d = (double)p[s] - shift;
                sum += d;
                sq += d * d;
            }
        }
        const double mean = sum / N;
        dn_bn_set_statistics(bn, c, mean + shift, sq / N - mean * mean, N);
    }
}

/*
 * Sync batch norm: the statistics of the whole batch, spread over the
 * replicas, in two passes (a common shift does not exist before the mean
 * is known): the global mean from the replicas' sums, then the biased
 * variance from their sums of squared deviations around that mean. Two
 * sums of `channels` floats each; the rolling update as in
 * batch_statistics, with N the whole batch's count.
 */
static void synced_statistics(dn_bn *bn, const float *x, const dn_bn_sync *sync)
{
    const int B = bn->batch, C = bn->channels;
    const long S = bn->spatial;
    const double N = (double)B * S * sync->replicas;
    float *buf = bn->sums; /* [2*channels] scratch, free in the forward */
#pragma omp parallel for schedule(static) if ((double)B * S * C > PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        double sum = 0;
        for (int b = 0; b < B; b++) {
            const float *p = x + ((long)b * C + c) * S;
#pragma omp simd reduction(+ : sum)
            for (long s = 0; s < S; s++)
                sum += p[s];
        }
        buf[c] = (float)sum;
    }
    sync->sum(sync->ctx, buf, C);
#pragma omp parallel for schedule(static) if ((double)B * S * C > PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        const double mean = buf[c] / N;
        double sq = 0;
        for (int b = 0; b < B; b++) {
            const float *p = x + ((long)b * C + c) * S;
#pragma omp simd reduction(+ : sq)
            for (long s = 0; s < S; s++) {
                double d = (double)p[s] - mean;
                sq += d * d;
            }
        }
        bn->mean[c] = (float)mean;
        buf[C + c] = (float)sq;
    }
    sync->sum(sync->ctx, buf + C, C);
    for (int c = 0; c < C; c++)
        dn_bn_set_statistics(bn, c, bn->mean[c], buf[C + c] / N, N);
}

void dn_bn_forward(dn_bn *bn, const float *x, float *y, const float *biases,
                   int train)
{
    const int C = bn->channels;
    const long S = bn->spatial, planes = (long)bn->batch * C;
    const dn_bn_sync *sync = bn->sync ? *bn->sync : NULL;
    if (train && sync) {
        synced_statistics(bn, x, sync);
    } else if (train) {
        batch_statistics(bn, x);
    } else {
        for (int c = 0; c < C; c++) {
            bn->mean[c] = bn->rolling_mean[c];
            bn->inv_std[c] = 1.0f / sqrtf(bn->rolling_variance[c] + DN_BN_EPS);
        }
    }
#pragma omp parallel for schedule(static) if (planes * S > PARALLEL_MIN)
    for (long t = 0; t < planes; t++) {
        const int c = (int)(t % C);
        const float m = bn->mean[c], is = bn->inv_std[c];
        const float g = bn->scales[c], beta = biases[c];
        const float *in = x + t * S;
        float *xh = bn->x_hat + t * S, *out = y + t * S;
        for (long s = 0; s < S; s++) {
            float v = (in[s] - m) * is;
            xh[s] = v;
            out[s] = g * v + beta;
        }
    }
}

void dn_bn_backward(dn_bn *bn, const float *dy, float *dx, int accumulate,
                    float *scales_grad, float *biases_grad, int train)
{
    const int B = bn->batch, C = bn->channels;
    const long S = bn->spatial, planes = (long)B * C;
    const dn_bn_sync *sync = train && bn->sync ? *bn->sync : NULL;
    const double N = (double)B * S * (sync ? sync->replicas : 1);
    float *mean_dy = bn->sums, *mean_dy_xhat = bn->sums + C;
    /* per channel: sum(dy) = dL/dbeta, sum(dy * x_hat) = dL/dgamma (this
     * replica's share: the gradients are summed over replicas later) */
#pragma omp parallel for schedule(static) if (N * C > PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        double sum = 0, sum_x = 0;
        for (int b = 0; b < B; b++) {
            const long o = ((long)b * C + c) * S;
            const float *d = dy + o, *xh = bn->x_hat + o;
#pragma omp simd reduction(+ : sum, sum_x)
            for (long s = 0; s < S; s++) {
                sum += d[s];
                sum_x += (double)d[s] * xh[s];
            }
        }
        biases_grad[c] += (float)sum;
        scales_grad[c] += (float)sum_x;
        mean_dy[c] = train ? (float)(sync ? sum : sum / N) : 0.0f;
        mean_dy_xhat[c] = train ? (float)(sync ? sum_x : sum_x / N) : 0.0f;
    }
    if (sync) { /* sync batch norm: the means over the whole batch */
        sync->sum(sync->ctx, bn->sums, 2L * C);
        for (int c = 0; c < 2 * C; c++)
            bn->sums[c] = (float)(bn->sums[c] / N);
    }
    if (!dx)
        return;
#pragma omp parallel for schedule(static) if (planes * S > PARALLEL_MIN)
    for (long t = 0; t < planes; t++) {
        const int c = (int)(t % C);
        const float k = bn->scales[c] * bn->inv_std[c];
        const float a = mean_dy[c], m = mean_dy_xhat[c];
        const float *d = dy + t * S, *xh = bn->x_hat + t * S;
        float *out = dx + t * S;
        if (accumulate) {
            for (long s = 0; s < S; s++)
                out[s] += k * (d[s] - a - xh[s] * m);
        } else {
            for (long s = 0; s < S; s++)
                out[s] = k * (d[s] - a - xh[s] * m);
        }
    }
}

/* ------------------------------------------------------- output stage */

void dn_post_init(dn_post *p, int batch, int channels, long spatial,
                  int batch_normalize, dn_activation activation,
                  float bn_momentum)
{
    memset(p, 0, sizeof *p);
    p->batch = batch, p->channels = channels, p->spatial = spatial;
    p->batch_normalize = batch_normalize;
    p->activation = activation;
    if (batch_normalize)
        dn_bn_init(&p->bn, batch, channels, spatial, bn_momentum);
    if (dn_activation_needs_input(activation))
        p->pre = dn_calloc_floats((size_t)batch * channels * spatial);
}

void dn_post_free(dn_post *p)
{
    dn_bn_free(&p->bn);
    free(p->pre);
    p->pre = NULL;
}

void dn_post_forward(dn_post *p, float *x, const float *biases, int train)
{
    const long n = (long)p->batch * p->channels * p->spatial;
    if (p->batch_normalize)
        dn_bn_forward(&p->bn, x, x, biases, train);
    else
        dn_add_bias(x, biases, p->batch, p->channels, p->spatial);
    if (p->pre)
        memcpy(p->pre, x, sizeof *x * n);
    dn_activate(x, n, p->activation);
}

void dn_post_backward(dn_post *p, const float *y, float *delta,
                      float *biases_grad, float *scales_grad, int train)
{
    const long n = (long)p->batch * p->channels * p->spatial;
    dn_activate_backward(p->pre, y, delta, n, p->activation);
    if (p->batch_normalize)
        dn_bn_backward(&p->bn, delta, delta, 0, scales_grad, biases_grad, train);
    else
        dn_bias_backward(biases_grad, delta, p->batch, p->channels, p->spatial);
}

/* ---------------------------------------------------- [batchnorm] layer */

static void bn_layer_free(dn_layer *l)
{
    batchnorm *p = l->priv;
    if (!p)
        return;
    dn_bn_free(&p->bn);
    free(p->biases);
    free(p);
    l->priv = NULL;
}

static int bn_layer_make(dn_layer *l, dn_section *s, dn_net *net, dn_error *err)
{
    batchnorm *p = calloc(1, sizeof *p);
    if (!p)
        return dn_fail(err, "out of memory");
    l->priv = p;
    l->out_c = l->c, l->out_h = l->h, l->out_w = l->w;
    l->params[0] = (dn_param){.name = "scales", .n = l->c};
    l->params[1] = (dn_param){.name = "biases", .n = l->c};
    l->n_params = 2;
    l->flops = 0; /* as Darknet, normalisation is not counted */
    snprintf(l->desc, sizeof l->desc, "%d", l->c);
    const long spatial = (long)l->h * l->w;
    int rc = dn_layer_reserve(l, s, net, dn_bn_floats(l->batch, l->c, spatial)
                              + l->c, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    dn_bn_init(&p->bn, l->batch, l->c, spatial, (float)net->bn_momentum);
    p->bn.sync = &net->bn_sync;
    p->biases = dn_calloc_floats(l->c);
    l->params[0].w = p->bn.scales;
    l->params[1].w = p->biases;
    l->saved[0] = p->bn.scales;
    l->saved[1] = p->bn.rolling_mean;
    l->saved[2] = p->bn.rolling_variance;
    l->saved[3] = p->biases;
    for (int k = 0; k < 4; k++)
        l->saved_n[k] = l->c;
    l->n_saved = 4;
    return 0;
}

/* in: net->input [batch, c, h, w]; out: l->output, the same shape */
static void bn_layer_forward(dn_layer *l, dn_net *net)
{
    batchnorm *p = l->priv;
    dn_bn_forward(&p->bn, net->input, l->output, p->biases, net->train);
}

static void bn_layer_backward(dn_layer *l, dn_net *net)
{
    batchnorm *p = l->priv;
    dn_bn_backward(&p->bn, l->delta, net->delta, 1, l->params[0].grad,
                   l->params[1].grad, net->train);
}

const dn_layer_type dn_layer_batchnorm = {
    .name = "batchnorm",
    .keys = dn_no_keys,
    .make = bn_layer_make,
    .forward = bn_layer_forward,
    .backward = bn_layer_backward,
    .free = bn_layer_free,
    .gpu = DN_GPU_TWIN(dn_layer_batchnorm_gpu),
};
