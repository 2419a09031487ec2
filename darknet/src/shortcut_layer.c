/*
 * shortcut_layer.c - [shortcut]: a residual connection (He et al. 2016):
 * adds an earlier layer's output to the previous layer's output.
 *
 * Keys (Darknet's): from (required): an earlier layer, relative (-3: three
 * layers back from this one) or absolute (0-based); activation (default
 * linear); alpha, beta (default 1): the weights of the previous layer's and
 * the `from` layer's outputs.
 *
 * Shapes must match exactly. Darknet accepts different shapes and adds by
 * striding over the larger one (sampling every k-th position, dropping
 * channels); we reject them with both shapes in the message instead.
 *
 * forward  in: [batch, c, h, w] (previous layer), add: layers[from].output,
 *          same shape; out = act(alpha in + beta add)
 * backward g = d out * act'(.)  (in place in l->delta, as Darknet)
 *          d in += alpha g;  layers[from].delta += beta g
 * Every step is element-wise, so it runs as it is on channel-blocked
 * tensors when all three are in the same layout (network.c,
 * choose_layouts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shortcut_layer.h"

static void shortcut_free(dn_layer *l)
{
    shortcut *p = l->priv;
    if (p)
        free(p->pre);
    free(p);
    l->priv = NULL;
}

static const dn_key shortcut_keys[] = {
    DN_INT("from", "", -(1L << 30), 1L << 30,
           "the layer added: relative (-3: three back) or absolute (0-based)"),
    DN_FLOAT("alpha", "1", -1e6, 1e6, "weight of the previous layer's output"),
    DN_FLOAT("beta", "1", -1e6, 1e6, "weight of the from= layer's output"),
    DN_CHOICE("activation", "linear", dn_activation_names,
              "function applied to the sum"),
    DN_KEYS_END,
};

static int shortcut_make(dn_layer *l, dn_section *s, dn_net *net,
                         dn_error *err)
{
    long from;
    double alpha, beta;
    dn_activation act;
    if (!dn_sec_has(s, "from"))
        return dn_fail(err, "%s:%d: [shortcut] from: missing; expected a "
                       "layer index (e.g. from=-3)", s->path, s->line);
    if (dn_key_int(s, shortcut_keys, "from", &from, err) ||
        dn_key_double(s, shortcut_keys, "alpha", &alpha, err) ||
        dn_key_double(s, shortcut_keys, "beta", &beta, err) ||
        dn_parse_activation(s, shortcut_keys, &act, err))
        return -1;
    long j = from < 0 ? l->index + from : from;
    if (l->index == 0)
        return dn_sec_fail(s, "from", err, "%ld: this is the first layer; "
                           "there is no earlier layer to add", from);
    if (j < 0 || j >= l->index)
        return dn_sec_fail(s, "from", err,
                           "%ld is layer %ld; expected an earlier layer: "
                           "0..%d, or -1..-%d from this layer %d", from, j,
                           l->index - 1, l->index, l->index);
    const dn_layer *src = &net->layers[j];
    if (src->out_c != l->c || src->out_h != l->h || src->out_w != l->w)
        return dn_sec_fail(s, "from", err,
                           "layer %ld outputs %dx%dx%d (c x h x w) but the "
                           "previous layer outputs %dx%dx%d; shapes must match",
                           j, src->out_c, src->out_h, src->out_w, l->c, l->h,
                           l->w);
    shortcut *p = calloc(1, sizeof *p);
    if (!p)
        return dn_fail(err, "out of memory");
    l->priv = p;
    p->from = (int)j;
    p->alpha = (float)alpha;
    p->beta = (float)beta;
    p->activation = act;
    l->out_c = l->c, l->out_h = l->h, l->out_w = l->w;
    snprintf(l->desc, sizeof l->desc, "from %d %s", p->from,
             dn_activation_name(act));
    l->flops = 3.0 * (double)l->inputs; /* two multiplies, one add */
    const int pre = dn_activation_needs_input(act);
    int rc = dn_layer_reserve(l, s, net,
                              pre ? (double)l->batch * l->inputs : 0, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    if (pre)
        p->pre = dn_calloc_floats((size_t)l->batch * l->inputs);
    return 0;
}

/*
 * Both passes go range by range (DN_ACTIVATE_RANGE elements, in cache): the
 * sum, its copy and the activation of a range, or the activation's
 * gradient and both adds, before the next range: one trip through memory
 * instead of two or three.
 */
static void shortcut_forward(dn_layer *l, dn_net *net)
{
    const shortcut *p = l->priv;
    const long n = (long)l->batch * l->outputs;
    const long ranges = (n + DN_ACTIVATE_RANGE - 1) / DN_ACTIVATE_RANGE;
    const float *in = net->input, *add = net->layers[p->from].output;
    const float alpha = p->alpha, beta = p->beta;
#pragma omp parallel for if (ranges > 1)
    for (long r = 0; r < ranges; r++) {
        const long lo = r * DN_ACTIVATE_RANGE;
        const long m = n - lo < DN_ACTIVATE_RANGE ? n - lo : DN_ACTIVATE_RANGE;
        float *out = l->output + lo;
        for (long i = 0; i < m; i++)
            out[i] = alpha * in[lo + i] + beta * add[lo + i];
        if (p->pre)
            memcpy(p->pre + lo, out, (size_t)m * sizeof(float));
        dn_activate_serial(out, m, p->activation);
    }
}

static void shortcut_backward(dn_layer *l, dn_net *net)
{
    const shortcut *p = l->priv;
    const long n = (long)l->batch * l->outputs;
    const long ranges = (n + DN_ACTIVATE_RANGE - 1) / DN_ACTIVATE_RANGE;
    float *din = net->delta, *dadd = net->layers[p->from].delta;
    const float alpha = p->alpha, beta = p->beta;
#pragma omp parallel for if (ranges > 1)
    for (long r = 0; r < ranges; r++) {
        const long lo = r * DN_ACTIVATE_RANGE;
        const long m = n - lo < DN_ACTIVATE_RANGE ? n - lo : DN_ACTIVATE_RANGE;
        float *g = l->delta + lo;
        dn_activate_backward_serial(p->pre ? p->pre + lo : NULL,
                                    l->output + lo, g, m, p->activation);
        if (din)
            for (long i = 0; i < m; i++)
                din[lo + i] += alpha * g[i];
        for (long i = 0; i < m; i++)
            dadd[lo + i] += beta * g[i];
    }
}

static int shortcut_reads(const dn_layer *l, int j)
{
    return j == l->index - 1 || ((const shortcut *)l->priv)->from == j;
}

/* Element-wise: any layout its three tensors share (network.c). */
static int shortcut_block_out(const dn_layer *l)
{
    (void)l;
    return DN_BLOCK_FOLLOWS;
}

static int shortcut_block_in(const dn_layer *l, int k)
{
    return k > 0 && l->c % k == 0;
}

const dn_layer_type dn_layer_shortcut = {
    .name = "shortcut",
    .keys = shortcut_keys,
    .make = shortcut_make,
    .forward = shortcut_forward,
    .backward = shortcut_backward,
    .free = shortcut_free,
    .gpu = DN_GPU_TWIN(dn_layer_shortcut_gpu),
    .reads = shortcut_reads,
    .block_out = shortcut_block_out,
    .block_in = shortcut_block_in,
};
