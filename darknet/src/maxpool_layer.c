/*
 * maxpool_layer.c - [maxpool]: the largest value of each size x size window,
 * channel by channel.
 *
 * Keys and shapes follow Darknet:
 *   stride   default 1
 *   size     default stride
 *   padding  default size - 1; the windows start at -padding/2 (integer
 *            division), so the extra rows and columns fall mostly on the
 *            bottom/right
 *   out_w = (w + padding - size) / stride + 1   (and the same for h)
 * Positions outside the image never win (they count as -infinity).
 *
 * One difference: Darknet accepts a padding so large that a whole window
 * lies outside the image and then outputs -FLT_MAX there (and indexes -1 in
 * its backward pass); make() rejects such a padding instead.
 *
 * forward  in: [batch, c, h, w] -> out: [batch, c, out_h, out_w]; the index
 *          of each winner is kept for backward.
 * backward: each output's delta goes to its winner (ties: the first in
 *          row-major window order, as Darknet's strict '>').
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>

#include "maxpool_layer.h"

static void maxpool_free(dn_layer *l)
{
    maxpool *p = l->priv;
    if (p)
        free(p->argmax);
    free(p);
    l->priv = NULL;
}

/* 1 if some window along an axis of length n lies entirely in padding. */
static int window_outside(int n, int out, int size, int stride, int padding)
{
    int first = -(padding / 2);
    int last = first + (out - 1) * stride;
    return first + size <= 0 || last >= n;
}

static const dn_key maxpool_keys[] = {
    DN_INT("stride", "1", 1, 1 << 16, "step between windows"),
    DN_INT("size", "(stride)", 1, 1 << 16, "window height and width"),
    DN_INT("padding", "(size - 1)", 0, 1 << 16,
           "total padding (Darknet's), split over both sides"),
    DN_KEYS_END,
};

static int maxpool_make(dn_layer *l, dn_section *s, dn_net *net, dn_error *err)
{
    const dn_key *t = maxpool_keys;
    long stride, size, padding;
    if (dn_key_int(s, t, "stride", &stride, err) ||
        dn_key_int_def(s, t, "size", stride, &size, err) ||
        dn_key_int_def(s, t, "padding", size - 1, &padding, err))
        return -1;
    l->out_c = l->c;
    l->out_w = (int)((l->w + padding - size) / stride + 1);
    l->out_h = (int)((l->h + padding - size) / stride + 1);
    if (l->w + padding < size || l->h + padding < size)
        return dn_sec_fail(s, "size", err,
                           "window %ld is larger than the padded input "
                           "%dx%d (padding=%ld)", size, l->h, l->w, padding);
    if (window_outside(l->w, l->out_w, (int)size, (int)stride, (int)padding) ||
        window_outside(l->h, l->out_h, (int)size, (int)stride, (int)padding))
        return dn_sec_fail(s, "padding", err,
                           "%ld leaves a %ldx%ld window entirely outside the "
                           "%dx%d input", padding, size, size, l->h, l->w);
    maxpool *p = calloc(1, sizeof *p);
    if (!p)
        return dn_fail(err, "out of memory");
    l->priv = p;
    p->size = (int)size, p->stride = (int)stride, p->padding = (int)padding;
    snprintf(l->desc, sizeof l->desc, "%d x %d/%d", p->size, p->size,
             p->stride);
    /* one comparison per window element */
    l->flops = (double)l->out_c * l->out_h * l->out_w * size * size;
    long n = (long)l->batch * l->out_c * l->out_h * l->out_w;
    /* argmax: one int (the size of a float) per output */
    int rc = dn_layer_reserve(l, s, net, (double)n, err);
    if (rc)
        return rc < 0 ? -1 : 0;
    p->argmax = malloc((size_t)n * sizeof *p->argmax);
    if (!p->argmax)
        return dn_fail(err, "out of memory");
    for (long i = 0; i < n; i++)
        p->argmax[i] = -1;
    return 0;
}

/* One plane of the 2x2/2 windows that all lie inside the image (VGG's):
 * the four candidates in window order as selects, so the loop over a row
 * vectorises (VGG-16-CIFAR, batch 128: 5.2% of a training step in the
 * general loop, 0.6% here; the sizes in locals, or the int stores to arg
 * would make the compiler reload them). */
static void forward_2x2(const dn_layer *l, const float *restrict in,
                        float *restrict out, int *restrict arg)
{
    const int w = l->w, out_w = l->out_w, out_h = l->out_h;
    for (int i = 0; i < out_h; i++) {
        const int r = 2 * i * w;
        const float *top = in + r, *bottom = top + w;
        float *o = out + (long)i * out_w;
        int *a = arg + (long)i * out_w;
        for (int j = 0; j < out_w; j++) {
            const float v1 = top[2 * j + 1], v2 = bottom[2 * j],
                        v3 = bottom[2 * j + 1];
            const int k0 = r + 2 * j;
            float best = top[2 * j];
            int k = k0;
            k = v1 > best ? k0 + 1 : k;
            best = v1 > best ? v1 : best;
            k = v2 > best ? k0 + w : k;
            best = v2 > best ? v2 : best;
            k = v3 > best ? k0 + w + 1 : k;
            best = v3 > best ? v3 : best;
            o[j] = best;
            a[j] = k;
        }
    }
}

static void maxpool_forward(dn_layer *l, dn_net *net)
{
    const maxpool *p = l->priv;
    const int off = -(p->padding / 2);
    const int planes = l->batch * l->c;
    const int inside_2x2 = p->size == 2 && p->stride == 2 && off == 0 &&
                           2 * l->out_h <= l->h && 2 * l->out_w <= l->w;
#pragma omp parallel for if ((long)planes * l->out_h * l->out_w > 16384)
    for (int plane = 0; plane < planes; plane++) {
        const float *in = net->input + (long)plane * l->h * l->w;
        float *out = l->output + (long)plane * l->out_h * l->out_w;
        int *arg = p->argmax + (long)plane * l->out_h * l->out_w;
        if (inside_2x2) {
            forward_2x2(l, in, out, arg);
            continue;
        }
        for (int i = 0; i < l->out_h; i++)
            for (int j = 0; j < l->out_w; j++) {
                float best = -FLT_MAX;
                int best_k = -1;
                for (int n = 0; n < p->size; n++) {
                    int y = off + i * p->stride + n;
                    if (y < 0 || y >= l->h)
                        continue;
                    for (int m = 0; m < p->size; m++) {
                        int x = off + j * p->stride + m;
                        if (x < 0 || x >= l->w)
                            continue;
                        int k = y * l->w + x;
                        if (best_k < 0 || in[k] > best)
                            best = in[k], best_k = k;
                    }
                }
                out[i * l->out_w + j] = best;
                arg[i * l->out_w + j] = best_k;
            }
    }
}

static void maxpool_backward(dn_layer *l, dn_net *net)
{
    if (!net->delta)
        return;
    const maxpool *p = l->priv;
    const int planes = l->batch * l->c;
    const long outs = (long)l->out_h * l->out_w;
    /* planes are independent; within a plane windows may overlap */
#pragma omp parallel for if (planes * outs > 16384)
    for (int plane = 0; plane < planes; plane++) {
        float *din = net->delta + (long)plane * l->h * l->w;
        const float *dout = l->delta + plane * outs;
        const int *arg = p->argmax + plane * outs;
        for (long o = 0; o < outs; o++)
            if (arg[o] >= 0)
                din[arg[o]] += dout[o];
    }
}

const dn_layer_type dn_layer_maxpool = {
    .name = "maxpool",
    .keys = maxpool_keys,
    .make = maxpool_make,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .free = maxpool_free,
    .gpu = DN_GPU_TWIN(dn_layer_maxpool_gpu),
};
