/*
 * connected_layer.c - [connected]: a fully connected layer, y = act(W x + b)
 * or y = act(BN(W x)) with batch_normalize (BN over the outputs with batch
 * statistics; biases act as BN's beta, as in Darknet).
 *
 * Keys and defaults (Darknet's): output=1 activation=logistic
 * batch_normalize=0. The input [c, h, w] is read as a flat vector of
 * inputs = c*h*w; the output is [output, 1, 1].
 *
 * Weights [outputs, inputs]. Saved (Darknet's order): biases, weights, then
 * scales, rolling_mean, rolling_variance with batch_normalize.
 *
 * GEMM shapes (B = batch, I = inputs, O = outputs):
 *   forward          out[B, O]    = in[B, I] x W[O, I]^T
 *   weight gradient  dW[O, I]    += delta[B, O]^T x in[B, I]
 *   input gradient   d_in[B, I]  += delta[B, O] x W[O, I]
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "connected_layer.h"

static void connected_free(dn_layer *l)
{
    connected *fc = l->priv;
    if (!fc)
        return;
    dn_post_free(&fc->post);
    free(fc->weights);
    free(fc->biases);
    free(fc);
    l->priv = NULL;
}

static const dn_key connected_keys[] = {
    DN_INT("output", "1", 1, 100000, "outputs per image"),
    DN_INT("batch_normalize", "0", 0, 1, "1: batch normalisation of the outputs"),
    DN_CHOICE("activation", "logistic", dn_activation_names,
              "function applied to the output"),
    DN_KEYS_END,
};

static int connected_make(dn_layer *l, dn_section *s, dn_net *net,
                          dn_error *err)
{
    connected *fc = calloc(1, sizeof *fc);
    if (!fc)
        return dn_fail(err, "out of memory");
    l->priv = fc;
    long outputs, bn;
    dn_activation act;
    if (dn_key_int(s, connected_keys, "output", &outputs, err) ||
        dn_key_int(s, connected_keys, "batch_normalize", &bn, err) ||
        dn_parse_activation(s, connected_keys, &act, err))
        return -1;
    const long inputs = l->inputs, n_weights = outputs * inputs;
    /* the GEMMs take int sizes (an input of 2^31 floats is 8 GiB anyway) */
    if (inputs > INT_MAX || n_weights > INT_MAX)
        return dn_sec_fail(s, "output", err, "%ld outputs of %ld inputs "
                           "(%dx%dx%d) is too large for one layer", outputs,
                           inputs, l->c, l->h, l->w);
    l->out_c = (int)outputs, l->out_h = 1, l->out_w = 1;
    int k = 0;
    l->params[k++] = (dn_param){.name = "biases", .n = outputs};
    if (bn)
        l->params[k++] = (dn_param){.name = "scales", .n = outputs};
    l->params[k++] = (dn_param){.name = "weights", .n = n_weights, .decay = 1};
    l->n_params = k;
    l->flops = 2.0 * (double)n_weights;
    snprintf(l->desc, sizeof l->desc, "%ld", outputs);
    int rc = dn_layer_reserve(l, s, net, (double)n_weights + outputs +
                              dn_post_floats(l->batch, (int)outputs, 1, (int)bn,
                                             act), err);
    if (rc)
        return rc < 0 ? -1 : 0;

    fc->weights = dn_calloc_floats(n_weights);
    fc->biases = dn_calloc_floats(outputs);
    dn_post_init(&fc->post, l->batch, (int)outputs, 1, (int)bn, act,
                 (float)net->bn_momentum);
    fc->post.bn.sync = &net->bn_sync; /* sync batch norm (distributed.c) */
    k = 0;
    l->params[k++].w = fc->biases;
    if (bn)
        l->params[k++].w = fc->post.bn.scales;
    /* He initialisation (He et al. 2015): N(0, sqrt(2 / inputs)) */
    dn_rng rng;
    dn_rng_seed(&rng, dn_hash3(net->seed, l->index, k));
    const double sd = sqrt(2.0 / (double)inputs);
    for (long i = 0; i < n_weights; i++)
        fc->weights[i] = (float)(sd * dn_rng_normal(&rng));
    l->params[k++].w = fc->weights;

    int n = 0;
    l->saved[n] = fc->biases, l->saved_n[n++] = outputs;
    l->saved[n] = fc->weights, l->saved_n[n++] = n_weights;
    if (bn) {
        l->saved[n] = fc->post.bn.scales, l->saved_n[n++] = outputs;
        l->saved[n] = fc->post.bn.rolling_mean, l->saved_n[n++] = outputs;
        l->saved[n] = fc->post.bn.rolling_variance, l->saved_n[n++] = outputs;
    }
    l->n_saved = n;
    return 0;
}

/* in: net->input [batch, inputs]; out: l->output [batch, outputs] */
static void connected_forward(dn_layer *l, dn_net *net)
{
    connected *fc = l->priv;
    const int B = l->batch, I = (int)l->inputs, O = (int)l->outputs;
    dn_gemm(0, 1, B, O, I, 1.0f, net->input, I, fc->weights, I, 0.0f,
            l->output, O);
    dn_post_forward(&fc->post, l->output, fc->biases, net->train);
}

static void connected_backward(dn_layer *l, dn_net *net)
{
    connected *fc = l->priv;
    const int B = l->batch, I = (int)l->inputs, O = (int)l->outputs;
    dn_param *scales = fc->post.batch_normalize ? &l->params[1] : NULL;
    float *dw = l->params[l->n_params - 1].grad;
    dn_post_backward(&fc->post, l->output, l->delta, l->params[0].grad,
                     scales ? scales->grad : NULL, net->train);
    dn_gemm(1, 0, O, I, B, 1.0f, l->delta, O, net->input, I, 1.0f, dw, I);
    if (net->delta)
        dn_gemm(0, 0, B, I, O, 1.0f, l->delta, O, fc->weights, I, 1.0f,
                net->delta, I);
}

const dn_layer_type dn_layer_connected = {
    .name = "connected",
    .keys = connected_keys,
    .make = connected_make,
    .forward = connected_forward,
    .backward = connected_backward,
    .free = connected_free,
    .gpu = DN_GPU_TWIN(dn_layer_connected_gpu),
};
