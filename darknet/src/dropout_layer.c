/*
 * dropout_layer.c - [dropout] (Srivastava et al. 2014, inverted dropout as
 * in Darknet): in training each element is zeroed with probability p and the
 * survivors are scaled by 1 / (1 - p), so inference is the identity.
 *
 * Key: probability (default 0.5, in [0, 1)).
 *
 * The mask is a pure function of (net->seed, net->seen, layer index, element
 * index) through dn_hash3, not of a generator's state: two forward passes at
 * the same clock drop the same elements (finite-difference checks rely on
 * it) and a resumed run draws the masks the uninterrupted run would have.
 *
 * forward  in: [batch, c, h, w] -> out: same shape
 *          train: out = in * mask, mask[i] in {0, 1/(1-p)}; else out = in
 * backward d in += d out * mask (train), d out (inference)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dropout_layer.h"

static void dropout_free(dn_layer *l)
{
    dropout *d = l->priv;
    if (d)
        free(d->mask);
    free(d);
    l->priv = NULL;
}

static const dn_key dropout_keys[] = {
    DN_FLOAT("probability", "0.5", 0, 1,
             "chance that an input is zeroed in training (below 1)"),
    DN_KEYS_END,
};

static int dropout_make(dn_layer *l, dn_section *s, dn_net *net, dn_error *err)
{
    double p;
    if (dn_key_double(s, dropout_keys, "probability", &p, err))
        return -1;
    if (p >= 1)
        return dn_sec_fail(s, "probability", err,
                           "expected a number in [0, 1), got %g", p);
    dropout *d = calloc(1, sizeof *d);
    if (!d)
        return dn_fail(err, "out of memory");
    l->priv = d;
    d->probability = (float)p;
    d->scale = (float)(1.0 / (1.0 - p));
    l->out_c = l->c, l->out_h = l->h, l->out_w = l->w;
    snprintf(l->desc, sizeof l->desc, "p = %.2f", p);
    l->flops = (double)l->inputs; /* one multiply per element (training) */
    int rc = dn_layer_reserve(l, s, net, (double)l->batch * l->inputs, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    d->mask = dn_calloc_floats((size_t)l->batch * l->inputs);
    return 0;
}

/* Uniform in [0, 1) from the top 53 bits of the hash. */
static inline double unit(uint64_t key, uint64_t i)
{
    return (double)(dn_hash3(key, i, 0) >> 11) * 0x1.0p-53;
}

static void dropout_forward(dn_layer *l, dn_net *net)
{
    const long n = (long)l->batch * l->inputs;
    if (!net->train) {
        memcpy(l->output, net->input, (size_t)n * sizeof(float));
        return;
    }
    dropout *d = l->priv;
    const uint64_t key = dn_hash3(net->seed, net->seen, (uint64_t)l->index);
    const double p = d->probability;
    /* a replica's elements are numbered from its first image in the
     * whole forward batch, so that it draws that part of one mask */
    const uint64_t first = (uint64_t)net->image_offset * (uint64_t)l->inputs;
#pragma omp parallel for if (n > 32768)
    for (long i = 0; i < n; i++) {
        d->mask[i] = unit(key, first + (uint64_t)i) < p ? 0.0f : d->scale;
        l->output[i] = net->input[i] * d->mask[i];
    }
}

static void dropout_backward(dn_layer *l, dn_net *net)
{
    if (!net->delta)
        return;
    const dropout *d = l->priv;
    const long n = (long)l->batch * l->inputs;
    if (!net->train) {
        for (long i = 0; i < n; i++)
            net->delta[i] += l->delta[i];
        return;
    }
    for (long i = 0; i < n; i++)
        net->delta[i] += l->delta[i] * d->mask[i];
}

const dn_layer_type dn_layer_dropout = {
    .name = "dropout",
    .keys = dropout_keys,
    .make = dropout_make,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .free = dropout_free,
    .gpu = DN_GPU_TWIN(dn_layer_dropout_gpu),
};
