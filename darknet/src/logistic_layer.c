/*
 * logistic_layer.c - [logistic]: element-wise sigmoid and, as the network's
 * last layer, the binary cross-entropy loss against net->truth (multi-label
 * targets in [0, 1]), as Darknet's logistic layer.
 *
 * Key: noloss (default 0): a plain sigmoid, no cost (as [softmax] noloss).
 *
 * forward  in: [batch, c, h, w] -> out: same shape, p = 1 / (1 + e^-x)
 *          cost = sum_b sum_i -(t log p + (1 - t) log(1 - p)), computed from
 *          the logit in the stable form
 *              max(x, 0) - x t + log(1 + e^-|x|)
 *          so a saturated p (exactly 0 or 1 in fp32) still gives a finite,
 *          exact cost.
 * backward d in += p (1 - p) d out
 *          plus, after a training forward of the loss, the gradient taken
 *          directly w.r.t. the logit: d in += p - t (Darknet's delta t - p,
 *          in its opposite sign convention).
 *
 * The loss applies only when this is the network's last layer (net->truth
 * is sized for the last layer); elsewhere it is a plain sigmoid, cost 0.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "logistic_layer.h"

static void logistic_free(dn_layer *l)
{
    logistic *p = l->priv;
    if (p)
        free(p->loss_grad);
    free(p);
    l->priv = NULL;
}

static const dn_key logistic_keys[] = {
    DN_INT("noloss", "0", 0, 1, "1: no loss, a plain sigmoid"),
    DN_KEYS_END,
};

static int logistic_make(dn_layer *l, dn_section *s, dn_net *net,
                         dn_error *err)
{
    long noloss;
    if (dn_key_int(s, logistic_keys, "noloss", &noloss, err))
        return -1;
    logistic *p = calloc(1, sizeof *p);
    if (!p)
        return dn_fail(err, "out of memory");
    l->priv = p;
    l->out_c = l->c, l->out_h = l->h, l->out_w = l->w;
    l->is_loss = !noloss;
    snprintf(l->desc, sizeof l->desc, "%s", noloss ? "sigmoid" : "sigmoid+BCE");
    l->flops = 4.0 * (double)l->inputs; /* negate, exp, add, divide */
    int rc = dn_layer_reserve(l, s, net, (double)l->batch * l->inputs, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    p->loss_grad = dn_calloc_floats((size_t)l->batch * l->inputs);
    return 0;
}

static void logistic_forward(dn_layer *l, dn_net *net)
{
    logistic *p = l->priv;
    const long n = (long)l->batch * l->inputs;
    const float *x = net->input;
    for (long i = 0; i < n; i++)
        l->output[i] = 1.0f / (1.0f + expf(-x[i]));
    l->cost = 0;
    p->grad_ready = 0;
    if (!dn_logistic_loss_active(l, net))
        return;
    const float *t = net->truth;
    double cost = 0;
    for (long i = 0; i < n; i++) {
        double xi = x[i];
        cost += fmax(xi, 0) - xi * t[i] + log1p(exp(-fabs(xi)));
    }
    l->cost = (float)cost;
    if (net->train) {
        for (long i = 0; i < n; i++)
            p->loss_grad[i] = l->output[i] - t[i];
        p->grad_ready = 1;
    }
}

static void logistic_backward(dn_layer *l, dn_net *net)
{
    if (!net->delta)
        return;
    const logistic *p = l->priv;
    const long n = (long)l->batch * l->inputs;
    const float *y = l->output;
    for (long i = 0; i < n; i++)
        net->delta[i] += y[i] * (1 - y[i]) * l->delta[i];
    if (p->grad_ready && net->train)
        for (long i = 0; i < n; i++)
            net->delta[i] += p->loss_grad[i];
}

const dn_layer_type dn_layer_logistic = {
    .name = "logistic",
    .keys = logistic_keys,
    .make = logistic_make,
    .forward = logistic_forward,
    .backward = logistic_backward,
    .free = logistic_free,
    .gpu = DN_GPU_TWIN(dn_layer_logistic_gpu),
};
