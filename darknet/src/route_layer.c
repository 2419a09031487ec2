/*
 * route_layer.c - [route]: concatenates the outputs of earlier layers along
 * channels (Darknet's route; with one source it simply forwards that
 * layer's output, which lets a cfg branch from any point).
 *
 * Key: layers (required): comma-separated sources, each an earlier layer,
 * relative (-1: the previous layer) or absolute (0-based), or the word
 * `input`: the network's input image ([net] channels x height x width), so
 * a branch can start from the image itself. Every source must have the
 * same height and width.
 *
 * forward  out[b] = concat(src_1[b], ..., src_k[b]) along channels:
 *          [batch, sum c_i, h, w]
 * backward each source's delta += its slice of d out (the input's gradient
 *          goes to net->input_delta when the caller asked for it)
 * The previous layer's output (net->input) is not read unless it is listed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_layer.h"

static void route_free(dn_layer *l)
{
    route *r = l->priv;
    if (r) {
        free(r->src);
        free(r->size);
    }
    free(r);
    l->priv = NULL;
}

static char *trim(char *t)
{
    while (*t == ' ' || *t == '\t')
        t++;
    char *e = t + strlen(t);
    while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return t;
}

/* One list item: "input", "-2" or "3" -> absolute index or ROUTE_INPUT. */
static int parse_source(dn_layer *l, dn_section *s, const char *list,
                        const char *tok, int *out, dn_error *err)
{
    if (strcmp(tok, "input") == 0) {
        *out = ROUTE_INPUT;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(tok, &end, 10);
    if (end == tok || *end != '\0' || errno)
        return dn_sec_fail(s, "layers", err,
                           "expected layer indices or input, got \"%s\" in "
                           "\"%s\"", tok, list);
    long j = v < 0 ? l->index + v : v;
    if (l->index == 0)
        return dn_sec_fail(s, "layers", err, "%ld: this is the first layer; "
                           "only input can be routed", v);
    if (j < 0 || j >= l->index)
        return dn_sec_fail(s, "layers", err,
                           "%ld is layer %ld; expected an earlier layer "
                           "(0..%d, or -1..-%d from this layer %d) or input",
                           v, j, l->index - 1, l->index, l->index);
    *out = (int)j;
    return 0;
}

static void source_shape(const dn_net *net, int j, int *c, int *h, int *w)
{
    if (j == ROUTE_INPUT) {
        *c = net->c, *h = net->h, *w = net->w;
    } else {
        const dn_layer *src = &net->layers[j];
        *c = src->out_c, *h = src->out_h, *w = src->out_w;
    }
}

/* "layer 3 8x4x4, input 3x4x4, ..." for the shape error. */
static void describe_shapes(const dn_net *net, const route *r, char *buf,
                            size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->n && len < cap; i++) {
        int c, h, w;
        source_shape(net, r->src[i], &c, &h, &w);
        if (r->src[i] == ROUTE_INPUT)
            len += (size_t)snprintf(buf + len, cap - len, "%sinput %dx%dx%d",
                                    i ? ", " : "", c, h, w);
        else
            len += (size_t)snprintf(buf + len, cap - len,
                                    "%slayer %d %dx%dx%d", i ? ", " : "",
                                    r->src[i], c, h, w);
    }
}

static const dn_key route_keys[] = {
    DN_INTS("layers", "earlier layers concatenated along channels: relative "
            "(-1), absolute (0-based), or input"),
    DN_KEYS_END,
};

static int parse_sources(dn_layer *l, dn_section *s, route *r, dn_error *err)
{
    dn_kv *kv = dn_key_kv(s, route_keys, "layers");
    if (!kv)
        return dn_fail(err, "%s:%d: [route] layers: missing; expected earlier "
                       "layers (e.g. layers=-1,-4) or input", s->path,
                       s->line);
    char *copy = strdup(kv->value);
    if (!copy)
        return dn_fail(err, "out of memory");
    int cap = 1;
    for (const char *c = copy; *c; c++)
        cap += *c == ',';
    r->src = calloc((size_t)cap, sizeof *r->src);
    r->size = calloc((size_t)cap, sizeof *r->size);
    int rc = r->src && r->size ? 0 : dn_fail(err, "out of memory");
    /* split by hand: strtok would skip the empty item of "-1,,-2" */
    char *item = copy;
    while (!rc) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        char *t = trim(item);
        if (!*t)
            rc = dn_sec_fail(s, "layers", err, "empty item in \"%s\"",
                             kv->value);
        else
            rc = parse_source(l, s, kv->value, t, &r->src[r->n++], err);
        if (!comma)
            break;
        item = comma + 1;
    }
    free(copy);
    return rc;
}

static int route_make(dn_layer *l, dn_section *s, dn_net *net, dn_error *err)
{
    route *r = calloc(1, sizeof *r);
    if (!r)
        return dn_fail(err, "out of memory");
    l->priv = r;
    if (parse_sources(l, s, r, err))
        return -1;
    int c0, h0, w0;
    source_shape(net, r->src[0], &c0, &h0, &w0);
    l->out_h = h0, l->out_w = w0, l->out_c = 0;
    size_t len = 0;
    for (int i = 0; i < r->n; i++) {
        int c, h, w;
        source_shape(net, r->src[i], &c, &h, &w);
        if (h != h0 || w != w0) {
            char shapes[DN_ERROR_MAX / 2];
            describe_shapes(net, r, shapes, sizeof shapes);
            return dn_sec_fail(s, "layers", err,
                               "sources differ in height or width: %s "
                               "(c x h x w); all must share h and w", shapes);
        }
        l->out_c += c;
        r->size[i] = (long)c * h * w;
        if (len < sizeof l->desc) {
            if (r->src[i] == ROUTE_INPUT)
                len += (size_t)snprintf(l->desc + len, sizeof l->desc - len,
                                        "%sinput", i ? " " : "");
            else
                len += (size_t)snprintf(l->desc + len, sizeof l->desc - len,
                                        "%s%d", i ? " " : "", r->src[i]);
        }
    }
    l->flops = 0; /* copies only */
    int rc = dn_layer_reserve(l, s, net, 0, err);
    return rc < 0 ? -1 : 0;
}

static float *source_output(dn_net *net, int j)
{
    return j == ROUTE_INPUT ? net->input_data : net->layers[j].output;
}

static float *source_delta(dn_net *net, int j)
{
    return j == ROUTE_INPUT ? net->input_delta : net->layers[j].delta;
}

static void route_forward(dn_layer *l, dn_net *net)
{
    const route *r = l->priv;
    long offset = 0;
    for (int i = 0; i < r->n; i++) {
        const float *src = source_output(net, r->src[i]);
        const long n = r->size[i];
        for (int b = 0; b < l->batch; b++)
            memcpy(l->output + b * l->outputs + offset, src + b * n,
                   (size_t)n * sizeof(float));
        offset += n;
    }
}

static void route_backward(dn_layer *l, dn_net *net)
{
    const route *r = l->priv;
    long offset = 0;
    for (int i = 0; i < r->n; i++) {
        float *dsrc = source_delta(net, r->src[i]);
        const long n = r->size[i];
        if (dsrc)
            for (int b = 0; b < l->batch; b++) {
                const float *d = l->delta + b * l->outputs + offset;
                float *dst = dsrc + b * n;
                for (long k = 0; k < n; k++)
                    dst[k] += d[k];
            }
        offset += n;
    }
}

static int route_reads(const dn_layer *l, int j)
{
    const route *r = l->priv;
    for (int i = 0; i < r->n; i++)
        if (r->src[i] == j)
            return 1;
    return 0;
}

/* Channel-blocked inputs, all in one block k, concatenate into the same
 * layout by the same per-image copies: each image's part of a source is
 * its c/k blocks of h*w*k floats, contiguous as in the plain layout. */
static int route_block_out(const dn_layer *l)
{
    (void)l;
    return DN_BLOCK_FOLLOWS;
}

static int route_block_in(const dn_layer *l, int k)
{
    const route *r = l->priv;
    if (k <= 0)
        return 0;
    for (int i = 0; i < r->n; i++)
        if (r->src[i] == ROUTE_INPUT || r->size[i] % ((long)k * l->out_h * l->out_w))
            return 0;
    return 1;
}

const dn_layer_type dn_layer_route = {
    .name = "route",
    .keys = route_keys,
    .make = route_make,
    .forward = route_forward,
    .backward = route_backward,
    .free = route_free,
    .gpu = DN_GPU_TWIN(dn_layer_route_gpu),
    .reads = route_reads,
    .block_out = route_block_out,
    .block_in = route_block_in,
};
