/*
 * softmax_layer.c - [softmax]: softmax over contiguous groups of the input,
 * and, as the network's last layer, the cross-entropy loss against
 * net->truth.
 *
 * Keys (Darknet's): groups (default 1): the inputs split into `groups`
 * equal contiguous runs, each normalised on its own; temperature (default
 * 1): p = softmax(x / T); noloss (default 0): a plain softmax, no cost.
 * Darknet's hierarchical softmax (tree=) and spatial softmax are rejected.
 *
 * forward  in: [batch, c, h, w] -> out: same shape
 *          p_i = exp((x_i - max) / T) / sum_j exp((x_j - max) / T)
 *          (max over the group: no overflow)
 *          cost = -sum_b sum_i t_i log p_i, with log p from the log-sum-exp
 *          form, so a p that underflows to 0 still gives a finite cost.
 *          Soft targets are weighted by t_i (Darknet drops the weight and
 *          takes -log p wherever t != 0); one-hot targets agree.
 * backward d in_i += (1/T) p_i (g_i - sum_j p_j g_j)   with g = d out
 *          plus, after a training forward of the loss, the cross-entropy
 *          gradient taken directly w.r.t. the softmax input:
 *          d in_i += (p_i S - t_i) / T,  S = sum_j t_j over the group
 *          (p - t for one-hot targets and T = 1; Darknet's delta is t - p
 *          in its opposite sign convention and omits the 1/T).
 *
 * The loss applies only when this is the network's last layer (net->truth
 * is sized for the last layer); elsewhere it is a plain softmax, cost 0.
 *
 * [net] output_activation=sigmoid (the network's last layer only): the
 * paper's experiment 1 output, "a sigmoid dense layer" trained with Keras'
 * categorical_crossentropy, which normalises the sigmoids by their sum and
 * clips before the log (Keras backend, categorical_crossentropy with
 * from_logits=False; eps = 1e-7):
 *          y_i = sigmoid(x_i / T),  p_i = y_i / sum_j y_j   (the output)
 *          cost = -sum_i t_i log clip(p_i, eps, 1 - eps)
 *          d cost / d p_i = -t_i / p_i where eps <= p_i <= 1 - eps, else 0
 *          (the clip's gradient), and through the normalisation and the
 *          sigmoid (dp_j/dy_i = (delta_ij - p_j) / S, dy/dx = y (1 - y) / T):
 *          d cost / d x_i = (1 - y_i) (M p_i - u_i t_i) / T,
 *          u_i = 1 where p_i is not clipped, M = sum_j u_j t_j
 * backward d in_i += (1/T) (1 - y_i) p_i (g_i - sum_j p_j g_j), y from the
 *          input; plus the loss gradient as above. A group whose sigmoids
 *          all underflow (x / T below about -745) outputs 1/n and has no
 *          gradient. Top-1 is unchanged: p orders the classes as x does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "softmax_layer.h"

static void softmax_free(dn_layer *l)
{
    softmax *p = l->priv;
    if (p)
        free(p->loss_grad);
    free(p);
    l->priv = NULL;
}

static const dn_key softmax_keys[] = {
    DN_INT("groups", "1", 1, 1L << 30, "independent softmaxes over equal slices"),
    DN_FLOAT("temperature", "1", 1e-6, 1e6, "inputs are divided by it"),
    DN_INT("noloss", "0", 0, 1, "1: no loss, a plain softmax"),
    DN_INT("spatial", "0", 0, 1, "1: a softmax over channels at each pixel"),
    DN_STRING("tree", "", "Darknet's hierarchical softmax: refused"),
    DN_KEYS_END,
};

static int softmax_make(dn_layer *l, dn_section *s, dn_net *net, dn_error *err)
{
    const dn_key *t = softmax_keys;
    long groups, noloss, spatial;
    double temperature;
    if (dn_key_int(s, t, "groups", &groups, err) ||
        dn_key_double(s, t, "temperature", &temperature, err) ||
        dn_key_int(s, t, "noloss", &noloss, err) ||
        dn_key_int(s, t, "spatial", &spatial, err))
        return -1;
    if (dn_key_kv(s, t, "tree"))
        return dn_sec_fail(s, "tree", err,
                           "hierarchical softmax is not supported");
    if (spatial)
        return dn_sec_fail(s, "spatial", err,
                           "spatial softmax is not supported");
    if (l->inputs % groups)
        return dn_sec_fail(s, "groups", err,
                           "%ld does not divide the %ld inputs (%dx%dx%d)",
                           groups, l->inputs, l->c, l->h, l->w);
    softmax *p = calloc(1, sizeof *p);
    if (!p)
        return dn_fail(err, "out of memory");
    l->priv = p;
    p->groups = (int)groups;
    p->temperature = (float)temperature;
    l->out_c = l->c, l->out_h = l->h, l->out_w = l->w;
    l->is_loss = !noloss;
    if (temperature != 1)
        snprintf(l->desc, sizeof l->desc, "groups %ld T=%g", groups,
                 temperature);
    else
        snprintf(l->desc, sizeof l->desc, "groups %ld", groups);
    /* per element: subtract, scale, exp, add, divide */
    l->flops = 5.0 * (double)l->inputs;
    int rc = dn_layer_reserve(l, s, net, (double)l->batch * l->inputs, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    p->loss_grad = dn_calloc_floats((size_t)l->batch * l->inputs);
    return 0;
}

/* One group of n: p = softmax(x / T); returns the cost -sum t log p and, if
 * grad, writes (p S - t) / T. t may be NULL (no cost). */
static double group_forward(const float *x, float *p, const float *t,
                            float *grad, long n, float T)
{
    float max = x[0];
    for (long i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    double sum = 0;
    for (long i = 0; i < n; i++) {
        p[i] = expf((x[i] - max) / T);
        sum += p[i];
    }
    const float inv = (float)(1.0 / sum);
    for (long i = 0; i < n; i++)
        p[i] *= inv;
    if (!t)
        return 0;
    const double log_sum = log(sum);
    double cost = 0, S = 0;
    for (long i = 0; i < n; i++) {
        S += t[i];
        if (t[i] != 0)
            cost -= t[i] * ((double)(x[i] - max) / T - log_sum);
    }
    if (grad)
        for (long i = 0; i < n; i++)
            grad[i] = (p[i] * (float)S - t[i]) / T;
    return cost;
}

/* One group of n with output_activation=sigmoid (see the top): p, and the
 * cost and gradient of Keras' categorical cross-entropy. */
static double group_forward_sigmoid(const float *x, float *p, const float *t,
                                    float *grad, long n, float T)
{
    const float lo = DN_SIGMOID_CE_EPS, hi = 1.0f - DN_SIGMOID_CE_EPS;
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += 1.0 / (1.0 + exp(-(double)x[i] / T));
    for (long i = 0; i < n; i++)
        p[i] = sum > 0 ? (float)(1.0 / (1.0 + exp(-(double)x[i] / T)) / sum)
                       : 1.0f / (float)n;
    if (!t)
        return 0;
    double cost = 0, M = 0;
    for (long i = 0; i < n; i++)
        if (t[i] != 0) {
            const float c = p[i] < lo ? lo : p[i] > hi ? hi : p[i];
            cost -= t[i] * log((double)c);
            if (p[i] >= lo && p[i] <= hi)
                M += t[i];
        }
    if (grad)
        for (long i = 0; i < n; i++) {
            const double y = 1.0 / (1.0 + exp(-(double)x[i] / T));
            const double u_t = p[i] >= lo && p[i] <= hi ? t[i] : 0;
            grad[i] = sum > 0 ? (float)((1 - y) * (M * p[i] - u_t) / T) : 0;
        }
    return cost;
}

static void softmax_forward(dn_layer *l, dn_net *net)
{
    softmax *p = l->priv;
    const int loss = dn_softmax_loss_active(l, net);
    const int sigmoid = dn_softmax_is_sigmoid(l, net);
    const long n = l->inputs / p->groups;
    double cost = 0;
    for (int b = 0; b < l->batch; b++)
        for (int g = 0; g < p->groups; g++) {
            const long off = (long)b * l->inputs + g * n;
            cost += (sigmoid ? group_forward_sigmoid : group_forward)(
                net->input + off, l->output + off,
                loss ? net->truth + off : NULL,
                loss && net->train ? p->loss_grad + off : NULL, n,
                p->temperature);
        }
    l->cost = (float)cost;
    p->grad_ready = loss && net->train;
}

static void softmax_backward(dn_layer *l, dn_net *net)
{
    if (!net->delta)
        return;
    const softmax *p = l->priv;
    const long n = l->inputs / p->groups;
    const float invT = 1.0f / p->temperature;
    const int add_loss = p->grad_ready && net->train;
    const int sigmoid = dn_softmax_is_sigmoid(l, net);
    for (int b = 0; b < l->batch; b++)
        for (int g = 0; g < p->groups; g++) {
            const long off = (long)b * l->inputs + g * n;
            const float *y = l->output + off, *dy = l->delta + off;
            const float *x = net->input + off;
            float *dx = net->delta + off;
            double dot = 0;
            for (long i = 0; i < n; i++)
                dot += (double)y[i] * dy[i];
            for (long i = 0; i < n; i++) {
                /* sigmoid: the sigmoid's own derivative, 1 - sigmoid */
                const float s = sigmoid ? 1.0f / (1.0f + expf(x[i] * invT)) : 1;
                dx[i] += invT * s * y[i] * (dy[i] - (float)dot);
            }
            if (add_loss)
                for (long i = 0; i < n; i++)
                    dx[i] += p->loss_grad[off + i];
        }
}

const dn_layer_type dn_layer_softmax = {
    .name = "softmax",
    .keys = softmax_keys,
    .make = softmax_make,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .free = softmax_free,
    .gpu = DN_GPU_TWIN(dn_layer_softmax_gpu),
};
