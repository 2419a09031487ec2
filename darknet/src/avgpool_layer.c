/*
 * avgpool_layer.c - [avgpool]: global average pooling, as Darknet's
 * avgpool layer (it has no size or stride; every channel becomes one value).
 *
 * forward  in: [batch, c, h, w] -> out: [batch, c, 1, 1]
 *          out[b, k] = (1 / (h w)) sum_{y,x} in[b, k, y, x]
 * backward d in[b, k, y, x] += d out[b, k] / (h w)
 * The input may arrive channel-blocked, [batch][c/k][h*w][k] (l->in_block;
 * network.c, choose_layouts): the same sums, in the same order.
 */
#include <stdio.h>

#include "layer_util.h"

static int avgpool_make(dn_layer *l, dn_section *s, dn_net *net, dn_error *err)
{
    l->out_c = l->c;
    l->out_h = 1;
    l->out_w = 1;
    snprintf(l->desc, sizeof l->desc, "global");
    /* one add per input, one multiply per output */
    l->flops = (double)l->c * l->h * l->w + l->c;
    int rc = dn_layer_reserve(l, s, net, 0, err);
    return rc < 0 ? -1 : 0;
}

/* Channel ch of image b: its first value and the step between values. */
static long plane_start(const dn_layer *l, int b, int ch, long spatial,
                        long *step)
{
    const int k = l->in_block;
    if (!k) {
        *step = 1;
        return ((long)b * l->c + ch) * spatial;
    }
    *step = k;
    return (((long)b * (l->c / k) + ch / k) * spatial) * k + ch % k;
}

static void avgpool_forward(dn_layer *l, dn_net *net)
{
    const long spatial = (long)l->h * l->w;
    const int planes = l->batch * l->c;
    for (int plane = 0; plane < planes; plane++) {
        long step;
        const float *in = net->input + plane_start(l, plane / l->c,
                                                   plane % l->c, spatial,
                                                   &step);
        double sum = 0;
        for (long i = 0; i < spatial; i++)
            sum += in[i * step];
        l->output[plane] = (float)(sum / (double)spatial);
    }
}

static void avgpool_backward(dn_layer *l, dn_net *net)
{
    if (!net->delta)
        return;
    const long spatial = (long)l->h * l->w;
    const float scale = 1.0f / (float)spatial;
    const int planes = l->batch * l->c;
    for (int plane = 0; plane < planes; plane++) {
        long step;
        float *din = net->delta + plane_start(l, plane / l->c, plane % l->c,
                                              spatial, &step);
        const float g = l->delta[plane] * scale;
        for (long i = 0; i < spatial; i++)
            din[i * step] += g;
    }
}

static int avgpool_block_in(const dn_layer *l, int k)
{
    return k > 0 && l->c % k == 0;
}

const dn_layer_type dn_layer_avgpool = {
    .name = "avgpool",
    .keys = dn_no_keys,
    .make = avgpool_make,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .gpu = DN_GPU_TWIN(dn_layer_avgpool_gpu),
    .block_in = avgpool_block_in,
};
