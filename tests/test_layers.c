/*
 * test_layers.c - the parameter-free layers: maxpool, avgpool, dropout,
 * softmax, logistic, shortcut, route (darknet/src/<name>_layer.c).
 *
 * Groups:
 *   gradcheck  one test per row of `cases`: finite differences against the
 *              backward pass (tests/gradcheck.h); rows that need a layer type
 *              not linked into this build are skipped, by name
 *   values     forward/backward on hand-worked inputs, output sizes against
 *              Darknet's formula, dropout statistics
 *   errors     bad cfgs: the message names file:line, [section] and key,
 *              both from a string and from a file
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

/* ---------------------------------------------------------------- common */

/* Build a network from cfg text; fails the test with the message if not. */
static dn_net *build(const char *text)
{
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    if (dn_cfg_parse_string(text, "test.cfg", &cfg, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    if (dn_net_make(cfg, NULL, &net, &err)) {
        dn_cfg_free(cfg);
        print_error("%s\n", err.msg);
        fail();
    }
    return net;
}

static void assert_floats(const float *got, const float *want, long n,
                          double tol)
{
    for (long i = 0; i < n; i++)
        if (fabs((double)got[i] - want[i]) > tol) {
            print_error("element %ld: got %.9g, want %.9g (tol %g)\n", i,
                        (double)got[i], (double)want[i], tol);
            fail();
        }
}

/* ------------------------------------------------------------- gradcheck */

/* NET(b, c, h, w) opens a cfg with a [net] of that input shape. */
#define NET(b, c, h, w)                                                      \
    "[net]\nbatch=" #b "\nchannels=" #c "\nheight=" #h "\nwidth=" #w "\n"
#define NET_FLAT(b, n) "[net]\nbatch=" #b "\ninputs=" #n "\n"

typedef struct layer_case {
    gc_case gc;
    const char *needs; /* a layer type this case uses besides ours, or NULL */
} layer_case;

/*
 * Cases with max-pooling take a small step (1e-3): pooling is exact in fp32,
 * and the small step keeps a finite difference from crossing a change of
 * winner. Smooth cases use the harness default (1e-2), which keeps fp32
 * rounding of the loss small against the difference.
 */
static const layer_case cases[] = {
    {{"maxpool_2x2_s2", NET(2, 2, 4, 4) "[maxpool]\nsize=2\nstride=2\n", 1,
      1e-3, 0}, NULL},
    {{"maxpool_3x3_s1_default_pad", NET(2, 1, 5, 5) "[maxpool]\nsize=3\n"
      "stride=1\n", 1, 1e-3, 0}, NULL},
    {{"maxpool_3x3_s2_pad0", NET(2, 2, 5, 5) "[maxpool]\nsize=3\nstride=2\n"
      "padding=0\n", 1, 1e-3, 0}, NULL},
    {{"maxpool_3x3_s2_pad3_odd", NET(1, 2, 6, 5) "[maxpool]\nsize=3\n"
      "stride=2\npadding=3\n", 1, 1e-3, 0}, NULL},
    {{"maxpool_2x2_s1_nonsquare", NET(2, 1, 3, 5) "[max]\nsize=2\nstride=1\n",
      0, 1e-3, 0}, NULL},
    {{"avgpool", NET(2, 3, 3, 2) "[avgpool]\n", 1, 0, 0}, NULL},
    {{"dropout_train_mask_fixed", NET(2, 2, 3, 3) "[dropout]\n"
      "probability=0.3\n", 1, 0, 0}, NULL},
    {{"dropout_inference", NET(2, 2, 3, 3) "[dropout]\n", 0, 0, 0}, NULL},
    {{"softmax_loss", NET_FLAT(2, 5) "[softmax]\n", 1, 0, 0}, NULL},
    {{"softmax_loss_groups_temperature", NET_FLAT(2, 6) "[softmax]\ngroups=2\n"
      "temperature=2\n", 1, 0, 0}, NULL},
    {{"softmax_noloss_groups_temperature", NET_FLAT(2, 6) "[softmax]\n"
      "groups=3\nnoloss=1\ntemperature=0.5\n", 1, 0, 0}, NULL},
    {{"softmax_inside_network", NET_FLAT(2, 4) "[softmax]\ntemperature=0.7\n"
      "[logistic]\n", 1, 0, 0}, NULL},
    {{"softmax_loss_after_avgpool", NET(2, 4, 2, 3) "[avgpool]\n[softmax]\n", 1,
      0, 0}, NULL},
    /* [net] output_activation=sigmoid: Keras' categorical cross-entropy on
     * sigmoid outputs in the last [softmax] */
    {{"softmax_sigmoid_ce", NET_FLAT(2, 5) "output_activation=sigmoid\n"
      "[softmax]\n", 1, 0, 0}, NULL},
    {{"softmax_sigmoid_ce_groups_temperature", NET_FLAT(3, 6)
      "output_activation=sigmoid\n[softmax]\ngroups=2\ntemperature=2\n", 1, 0,
      0}, NULL},
    {{"softmax_sigmoid_noloss_groups", NET_FLAT(2, 6)
      "output_activation=sigmoid\n[softmax]\ngroups=3\nnoloss=1\n"
      "temperature=0.5\n", 1, 0, 0}, NULL},
    {{"softmax_sigmoid_ce_inference", NET_FLAT(2, 4)
      "output_activation=sigmoid\n[softmax]\nnoloss=1\n", 0, 0, 0}, NULL},
    {{"connected_softmax_sigmoid_ce", NET_FLAT(2, 4) "output_activation=sigmoid\n"
      "[connected]\noutput=5\nactivation=linear\n[softmax]\n", 1, 0, 0},
     "connected"},
    {{"softmax_inside_sigmoid_network", NET_FLAT(2, 4)
      "output_activation=sigmoid\n[softmax]\ntemperature=0.7\n"
      "[maxpool]\nsize=1\nstride=1\n[softmax]\n", 1, 0, 0}, NULL},
    {{"logistic_loss", NET_FLAT(2, 6) "[logistic]\n", 1, 0, 0}, NULL},
    {{"logistic_noloss", NET_FLAT(2, 6) "[logistic]\nnoloss=1\n", 1, 0, 0},
     NULL},
    {{"shortcut_swish", NET(2, 2, 4, 4) "[maxpool]\nsize=1\nstride=1\n"
      "[maxpool]\nsize=2\nstride=1\n[shortcut]\nfrom=-2\nactivation=swish\n",
      1, 1e-3, 0}, NULL},
    {{"shortcut_leaky_absolute_alpha_beta", NET(2, 2, 4, 4)
      "[maxpool]\nsize=2\nstride=1\n[maxpool]\nsize=3\nstride=1\n"
      "[shortcut]\nfrom=0\nactivation=leaky\nalpha=0.5\nbeta=-2\n", 1, 1e-3,
      0}, NULL},
    {{"shortcut_from_previous", NET(2, 1, 3, 3) "[maxpool]\nsize=2\nstride=1\n"
      "[shortcut]\nfrom=-1\nactivation=tanh\n", 1, 1e-3, 0}, NULL},
    {{"route_one_source", NET(2, 2, 4, 4) "[maxpool]\nsize=2\nstride=2\n"
      "[maxpool]\nsize=1\nstride=1\n[route]\nlayers=-2\n", 1, 1e-3, 0}, NULL},
    {{"route_negative_and_absolute", NET(2, 2, 4, 4)
      "[maxpool]\nsize=2\nstride=1\n[maxpool]\nsize=3\nstride=1\n"
      "[route]\nlayers=0,-1\n", 1, 1e-3, 0}, NULL},
    {{"route_input_and_layers", NET(2, 2, 3, 3) "[maxpool]\nsize=2\nstride=1\n"
      "[route]\nlayers = -1, input, 0\n", 1, 1e-3, 0}, NULL},
    {{"route_input_then_shortcut", NET(2, 2, 3, 3)
      "[maxpool]\nsize=1\nstride=1\n[route]\nlayers=input\n"
      "[shortcut]\nfrom=0\nactivation=logistic\n[avgpool]\n[softmax]\n", 1,
      0, 0}, NULL},
    /* with the trainable layers in front */
    {{"conv_shortcut_route", NET(2, 2, 3, 3)
      "[convolutional]\nfilters=2\nsize=3\nstride=1\npad=1\nactivation=tanh\n"
      "[convolutional]\nfilters=2\nsize=1\nstride=1\nactivation=linear\n"
      "[shortcut]\nfrom=0\nactivation=tanh\n[route]\nlayers=-1,0,input\n",
      1, 0, 0},
     "convolutional"},
    {{"connected_dropout_logistic", NET_FLAT(2, 5)
      "[connected]\noutput=6\nactivation=tanh\n[dropout]\nprobability=0.4\n"
      "[logistic]\n", 1, 0, 0}, "connected"},
    {{"connected_route_shortcut", NET_FLAT(2, 4)
      "[connected]\noutput=4\nactivation=linear\n[route]\nlayers=input\n"
      "[shortcut]\nfrom=0\n[softmax]\n", 1, 0, 0}, "connected"},
};

#define N_CASES (sizeof cases / sizeof *cases)

static void run_case(void **state)
{
    const layer_case *c = *state;
    if (c->needs && !dn_layer_type_find(c->needs)) {
        printf("  %-28s skipped: no [%s] layer in this build\n", c->gc.name,
               c->needs);
        skip();
    }
    gc_assert(&c->gc);
}

/* ---------------------------------------------------------------- values */

/* (w + padding - size) / stride + 1, padding defaulting to size - 1 */
static void test_maxpool_output_size_matches_darknet(void **state)
{
    /* h, w, size, stride, padding (-1: key absent), Darknet's out_h, out_w
     * (the expected sizes were read from Darknet's own parser) */
    static const int table[][7] = {
        {7, 7, 2, 2, -1, 4, 4},   {7, 7, 3, 1, -1, 7, 7},
        {5, 5, 3, 2, -1, 3, 3},   {6, 6, 3, 2, 0, 2, 2},
        {6, 6, 2, 2, 0, 3, 3},    {5, 5, 2, 2, 0, 2, 2},
        {4, 4, 3, 1, 1, 3, 3},    {7, 7, 3, 2, 4, 5, 5},
        {6, 6, 2, 1, -1, 6, 6},   {13, 13, 2, 1, -1, 13, 13},
        {5, 5, 4, 3, -1, 2, 2},   {5, 8, 2, 2, -1, 3, 4},
        {3, 9, 3, 3, -1, 1, 3},   {6, 4, 3, 2, 1, 3, 2},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        const int *t = table[i];
        char text[256], pad[32] = "";
        if (t[4] >= 0)
            snprintf(pad, sizeof pad, "padding=%d\n", t[4]);
        snprintf(text, sizeof text,
                 "[net]\nchannels=3\nheight=%d\nwidth=%d\n"
                 "[maxpool]\nsize=%d\nstride=%d\n%s", t[0], t[1], t[2], t[3],
                 pad);
        dn_net *net = build(text);
        int padding = t[4] >= 0 ? t[4] : t[2] - 1;
        int fh = (t[0] + padding - t[2]) / t[3] + 1;
        int fw = (t[1] + padding - t[2]) / t[3] + 1;
        dn_layer *l = &net->layers[0];
        if (l->out_h != t[5] || l->out_w != t[6] || fh != t[5] ||
            fw != t[6] || l->out_c != 3) {
            print_error("row %zu: got %dx%dx%d, Darknet %dx%dx3, formula "
                        "%dx%d\n", i, l->out_c, l->out_h, l->out_w, t[5], t[6],
                        fh, fw);
            fail();
        }
        dn_net_free(net);
    }
}

static void test_maxpool_default_stride_and_size(void **state)
{
    dn_net *net = build(NET(1, 1, 6, 6) "[maxpool]\nstride=2\n"
                        "[maxpool]\nsize=3\n");
    /* size defaults to stride (2), stride to 1 */
    assert_int_equal(net->layers[0].out_w, 3);
    assert_int_equal(net->layers[1].out_w, 3);
    assert_string_equal(net->layers[0].desc, "2 x 2/2");
    assert_string_equal(net->layers[1].desc, "3 x 3/1");
    dn_net_free(net);
}

/* Padding falls on the bottom/right; the first maximum wins. */
static void test_maxpool_values_and_routing(void **state)
{
    dn_net *net = build(NET(1, 1, 3, 3) "[maxpool]\nsize=2\nstride=1\n");
    static const float x[9] = {3, 1, 2, 0, 5, 4, 7, 6, 8};
    static const float want[9] = {5, 5, 4, 7, 8, 8, 7, 8, 8}; /* as Darknet */
    memcpy(net->input_data, x, sizeof x);
    float din[9] = {0};
    net->input_delta = din;
    dn_net_forward(net, 1);
    assert_floats(net->layers[0].output, want, 9, 0);
    for (int i = 0; i < 9; i++)
        net->layers[0].delta[i] = 1;
    dn_net_backward(net);
    /* how often each input won */
    static const float wins[9] = {0, 0, 0, 0, 2, 1, 2, 0, 4};
    assert_floats(din, wins, 9, 0);
    net->input_delta = NULL;
    dn_net_free(net);
}

/* 2x2/2 windows against a reference written here: the vectorised loop of
 * windows inside the image (6x4) and the general loop (5x5: the last
 * window hangs over the edge), with many ties (four values), where the
 * first in window order must win; backward routes to that winner. */
static void test_maxpool_2x2_matches_reference(void **state)
{
    static const int sizes[][2] = {{6, 4}, {5, 5}};
    for (int t = 0; t < 2; t++) {
        const int h = sizes[t][0], w = sizes[t][1], oh = h / 2 + h % 2,
                  ow = w / 2 + w % 2, planes = 2 * 3;
        char cfg[256];
        snprintf(cfg, sizeof cfg, "[net]\nbatch=2\nheight=%d\nwidth=%d\n"
                 "channels=3\n[maxpool]\nsize=2\nstride=2\n", h, w);
        dn_net *net = build(cfg);
        dn_layer *l = &net->layers[0];
        assert_int_equal(l->out_h * 100 + l->out_w, oh * 100 + ow);
        for (int i = 0; i < planes * h * w; i++)
            net->input_data[i] = (float)((i * 7 + i / 5) % 4);
        float *din = calloc((size_t)planes * h * w, sizeof *din);
        float *want_din = calloc((size_t)planes * h * w, sizeof *want_din);
        net->input_delta = din;
        dn_net_forward(net, 1);
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    const float *x = net->input_data + p * h * w;
                    int best = -1;
                    for (int n = 0; n < 4; n++) {
                        const int y = 2 * i + n / 2, c = 2 * j + n % 2;
                        if (y < h && c < w && (best < 0 || x[y * w + c] > x[best]))
                            best = y * w + c;
                    }
                    const int o = (p * oh + i) * ow + j;
                    assert_float_equal(l->output[o], x[best], 0);
                    l->delta[o] = (float)(o + 1);
                    want_din[p * h * w + best] += (float)(o + 1);
                }
        dn_net_backward(net);
        assert_floats(din, want_din, planes * h * w, 0);
        net->input_delta = NULL;
        free(din), free(want_din);
        dn_net_free(net);
    }
}

static void test_avgpool_values(void **state)
{
    dn_net *net = build(NET(1, 2, 2, 2) "[avgpool]\n");
    static const float x[8] = {1, 2, 3, 4, -1, -1, 5, 5};
    memcpy(net->input_data, x, sizeof x);
    float din[8] = {0};
    net->input_delta = din;
    dn_net_forward(net, 1);
    dn_layer *l = &net->layers[0];
    assert_int_equal(l->out_c * 100 + l->out_h * 10 + l->out_w, 211);
    static const float want[2] = {2.5f, 2};
    assert_floats(l->output, want, 2, 1e-6);
    l->delta[0] = 4, l->delta[1] = -8;
    dn_net_backward(net);
    static const float wd[8] = {1, 1, 1, 1, -2, -2, -2, -2};
    assert_floats(din, wd, 8, 1e-6);
    net->input_delta = NULL;
    dn_net_free(net);
}

static void test_softmax_known_values(void **state)
{
    dn_net *net = build(NET_FLAT(1, 6) "[softmax]\ngroups=2\ntemperature=2\n");
    static const float x[6] = {1, 2, 3, 0, 0, 1000};
    static const float t[6] = {0, 0, 1, 1, 0, 0};
    memcpy(net->input_data, x, sizeof x);
    memcpy(net->truth, t, sizeof t);
    dn_net_forward(net, 0);
    /* group 1: softmax([0.5, 1, 1.5]); group 2: the 1000 takes all */
    double e0 = exp(0.5), e1 = exp(1.0), e2 = exp(1.5), s = e0 + e1 + e2;
    const float want[6] = {(float)(e0 / s), (float)(e1 / s), (float)(e2 / s),
                           0, 0, 1};
    assert_floats(net->layers[0].output, want, 6, 1e-6);
    /* cost: -log p_2 of group 1 plus -log p_0 of group 2 = 500 (its
     * logits are 0, 0, 500), finite although p_0 underflows to 0 */
    double want_cost = -log(e2 / s) + 500;
    assert_true(fabs(net->layers[0].cost - want_cost) < 1e-3);
    assert_true(fabs(dn_net_cost(net) - want_cost) < 1e-3);
    dn_net_free(net);
}

/* The training gradient is (p - t) / T w.r.t. the softmax input. */
static void test_softmax_loss_gradient_is_p_minus_t(void **state)
{
    dn_net *net = build(NET_FLAT(2, 3) "[softmax]\n");
    static const float x[6] = {0, 0, 0, 1, 2, 3};
    static const float t[6] = {0, 1, 0, 0.25f, 0.25f, 0.5f};
    memcpy(net->input_data, x, sizeof x);
    memcpy(net->truth, t, sizeof t);
    float din[6] = {0};
    net->input_delta = din;
    dn_net_forward(net, 1);
    dn_net_backward(net);
    const float *p = net->layers[0].output;
    for (int i = 0; i < 6; i++)
        assert_true(fabs(din[i] - (p[i] - t[i])) < 1e-6);
    /* cost is summed over the batch */
    double want = log(3.0);
    for (int i = 3; i < 6; i++)
        want -= t[i] * log(p[i]);
    assert_true(fabs(net->layers[0].cost - want) < 1e-5);
    net->input_delta = NULL;
    dn_net_free(net);
}

static void test_softmax_inference_adds_no_loss_gradient(void **state)
{
    dn_net *net = build(NET_FLAT(1, 3) "[softmax]\n");
    net->truth[1] = 1;
    float din[3] = {0};
    net->input_delta = din;
    dn_net_forward(net, 0);
    assert_true(net->layers[0].cost > 1.0f); /* log 3: still reported */
    dn_net_zero_deltas(net);
    dn_net_backward(net);
    static const float zero[3] = {0};
    assert_floats(din, zero, 3, 0);
    net->input_delta = NULL;
    dn_net_free(net);
}

/* net->truth belongs to the last layer: a softmax before it has no cost. */
static void test_softmax_inside_network_has_no_cost(void **state)
{
    dn_net *net = build(NET_FLAT(1, 3) "[softmax]\n[logistic]\n");
    net->truth[0] = 1;
    dn_net_forward(net, 1);
    assert_true(net->layers[0].cost == 0);
    assert_true(net->layers[1].cost > 0);
    assert_true(dn_net_cost(net) == net->layers[1].cost);
    dn_net_free(net);
}

/*
 * output_activation=sigmoid, worked by hand. Image 0: x = (0, ln 3, -ln 3)
 * gives y = (1/2, 3/4, 1/4), S = 3/2, p = (1/3, 1/2, 1/6); with t = e_1 the
 * cost is ln 2 and the gradient (1 - y)(p - t) = (1/6, -1/8, 1/8). Image 1:
 * the same x with soft t = (1/2, 0, 1/2): cost -(ln(1/3) + ln(1/6)) / 2,
 * gradient (1 - y)(p - t) = (-1/12, 1/8, -1/4). Image 2: x = (30, -30,
 * -30), t = e_1: p_1 = 9.4e-14 is clipped to 1e-7, the cost is -ln 1e-7
 * and the gradient is zero (the clip's).
 */
static void test_softmax_sigmoid_ce_known_values(void **state)
{
    dn_net *net = build(NET_FLAT(3, 3) "output_activation=sigmoid\n"
                        "[softmax]\n");
    const float l3 = (float)log(3.0);
    const float x[9] = {0, l3, -l3, 0, l3, -l3, 30, -30, -30};
    static const float t[9] = {0, 1, 0, 0.5f, 0, 0.5f, 0, 1, 0};
    memcpy(net->input_data, x, sizeof x);
    memcpy(net->truth, t, sizeof t);
    float din[9] = {0};
    net->input_delta = din;
    dn_net_forward(net, 1);
    dn_net_backward(net);
    const float *p = net->layers[0].output;
    static const float want_p[6] = {1 / 3.0f, 0.5f, 1 / 6.0f,
                                    1 / 3.0f, 0.5f, 1 / 6.0f};
    assert_floats(p, want_p, 6, 1e-6);
    assert_true(p[6] == 1.0f && p[7] > 0 && p[7] < 1e-13f);
    const double want_cost = log(2.0) - (log(1 / 3.0) + log(1 / 6.0)) / 2 -
                             log((double)1e-7f);
    assert_true(fabs(net->layers[0].cost - want_cost) < 1e-5);
    static const float want_g[9] = {1 / 6.0f, -1 / 8.0f,  1 / 8.0f,
                                    -1 / 12.0f, 1 / 8.0f, -1 / 4.0f,
                                    0,          0,        0};
    assert_floats(din, want_g, 9, 1e-6);
    /* inference reports the same cost and adds no gradient */
    memset(din, 0, sizeof din);
    dn_net_forward(net, 0);
    assert_true(fabs(net->layers[0].cost - want_cost) < 1e-5);
    dn_net_zero_deltas(net);
    dn_net_backward(net);
    static const float zero[9] = {0};
    assert_floats(din, zero, 9, 0);
    net->input_delta = NULL;
    dn_net_free(net);
}

/* Only the network's last [softmax] takes the sigmoid; one inside stays a
 * softmax. */
static void test_softmax_sigmoid_applies_to_the_last_layer_only(void **state)
{
    dn_net *net = build(NET_FLAT(1, 2) "output_activation=sigmoid\n"
                        "[softmax]\nnoloss=1\n[softmax]\n");
    net->input_data[0] = 0;
    net->input_data[1] = (float)log(3.0);
    dn_net_forward(net, 0);
    static const float softmax[2] = {0.25f, 0.75f};
    assert_floats(net->layers[0].output, softmax, 2, 1e-6);
    /* sigmoid(0.25) / (sigmoid(0.25) + sigmoid(0.75)) */
    const double a = 1 / (1 + exp(-0.25)), b = 1 / (1 + exp(-0.75));
    const float want[2] = {(float)(a / (a + b)), (float)(b / (a + b))};
    assert_floats(net->layers[1].output, want, 2, 1e-6);
    assert_contains(net->layers[1].desc, "sigmoid");
    dn_net_free(net);
}

static void test_logistic_known_values_and_saturation(void **state)
{
    dn_net *net = build(NET_FLAT(1, 4) "[logistic]\n");
    static const float x[4] = {0, 2, 100, -100};
    static const float t[4] = {1, 0.5f, 0, 0};
    memcpy(net->input_data, x, sizeof x);
    memcpy(net->truth, t, sizeof t);
    float din[4] = {0};
    net->input_delta = din;
    dn_net_forward(net, 1);
    const float *p = net->layers[0].output;
    assert_true(fabs(p[0] - 0.5f) < 1e-7 && fabs(p[1] - 0.880797f) < 1e-6);
    /* log 2 + (log(1 + e^2) - 1) + 100 (p = 1 in fp32, t = 0) + ~0 */
    double want = log(2.0) + (log1p(exp(2.0)) - 1.0) + 100 + log1p(exp(-100.0));
    assert_true(fabs(net->layers[0].cost - want) < 1e-4);
    dn_net_backward(net);
    for (int i = 0; i < 4; i++)
        assert_true(fabs(din[i] - (p[i] - t[i])) < 1e-6);
    net->input_delta = NULL;
    dn_net_free(net);
}

static void test_shortcut_values(void **state)
{
    dn_net *net = build(NET(1, 1, 1, 2) "[maxpool]\nsize=1\nstride=1\n"
                        "[maxpool]\nsize=1\nstride=1\n"
                        "[shortcut]\nfrom=0\nalpha=2\nbeta=3\nactivation=relu\n");
    static const float x[2] = {1, -1};
    memcpy(net->input_data, x, sizeof x);
    dn_net_forward(net, 1);
    /* 2x + 3x: 5, -5 -> relu */
    static const float want[2] = {5, 0};
    assert_floats(net->layers[2].output, want, 2, 0);
    net->layers[2].delta[0] = 1, net->layers[2].delta[1] = 1;
    float din[2] = {0};
    net->input_delta = din;
    dn_net_backward(net);
    /* layer 0 gets 3 directly and 2 through layer 1; relu blocks element 1 */
    static const float wd[2] = {5, 0};
    assert_floats(din, wd, 2, 0);
    net->input_delta = NULL;
    dn_net_free(net);
}

static void test_route_concatenates_in_order(void **state)
{
    static const float x[4] = {1, 2, 3, 4}; /* two images of 1x1x2 */
    dn_net *net = build(NET(2, 1, 1, 2) "[maxpool]\nsize=1\nstride=1\n"
                        "[maxpool]\nsize=2\nstride=1\n"
                        "[route]\nlayers=input,-1,0\n");
    memcpy(net->input_data, x, sizeof x);
    dn_net_forward(net, 0);
    dn_layer *r = &net->layers[2];
    assert_int_equal(r->out_c, 3);
    assert_int_equal(r->out_h * 10 + r->out_w, 12);
    assert_string_equal(r->desc, "input 1 0");
    /* per image: input, layer 1 (max of x and its right neighbour), layer 0 */
    static const float want[12] = {1, 2, 2, 2, 1, 2, 3, 4, 4, 4, 3, 4};
    assert_floats(r->output, want, 12, 0);
    dn_net_free(net);
}

/* Elements dropped: a binomial(n, p) fraction; with n = 20000 and p = 0.3
 * its standard deviation is 0.0032, and 0.02 is over 6 of them. */
static void test_dropout_statistics_and_determinism(void **state)
{
    dn_net *net = build(NET_FLAT(4, 5000) "[dropout]\nprobability=0.3\n");
    const long n = 4 * 5000;
    for (long i = 0; i < n; i++)
        net->input_data[i] = 1;
    net->seen = 64;
    dn_net_forward(net, 1);
    const float *y = net->layers[0].output;
    long dropped = 0;
    for (long i = 0; i < n; i++) {
        if (y[i] == 0)
            dropped++;
        else if (fabsf(y[i] - 1 / 0.7f) > 1e-6f)
            fail_msg("survivor %ld scaled to %g, want 1/0.7", i, (double)y[i]);
    }
    double frac = (double)dropped / n;
    printf("  dropped %.4f of %ld (p = 0.3)\n", frac, n);
    assert_true(fabs(frac - 0.3) < 0.02);

    float *first = malloc(n * sizeof *first);
    memcpy(first, y, n * sizeof *first);
    dn_net_forward(net, 1); /* same clock: same mask */
    assert_memory_equal(first, y, n * sizeof *first);

    net->seen = 68; /* the next batch: a different mask */
    dn_net_forward(net, 1);
    long differ = 0;
    for (long i = 0; i < n; i++)
        differ += (first[i] == 0) != (y[i] == 0);
    /* independent masks disagree on 2 p (1 - p) = 42% of elements */
    assert_true(fabs((double)differ / n - 0.42) < 0.03);

    dn_net_forward(net, 0); /* inference: identity */
    assert_memory_equal(net->input_data, y, n * sizeof *first);
    free(first);
    dn_net_free(net);
}

/* The layer index is part of the mask's key. */
static void test_dropout_mask_depends_on_layer_index(void **state)
{
    dn_net *a = build(NET_FLAT(1, 1000) "[dropout]\n");
    dn_net *b = build(NET_FLAT(1, 1000) "[route]\nlayers=input\n[dropout]\n");
    for (int i = 0; i < 1000; i++)
        a->input_data[i] = b->input_data[i] = 1;
    dn_net_forward(a, 1);
    dn_net_forward(b, 1);
    int differ = 0;
    for (int i = 0; i < 1000; i++)
        differ += a->layers[0].output[i] != b->layers[1].output[i];
    assert_true(differ > 300);
    dn_net_free(a);
    dn_net_free(b);
}

/* ---------------------------------------------------------------- errors */

typedef struct bad_cfg {
    const char *cfg;
    const char *where;   /* ":line: [section] key" expected in the message */
    const char *message; /* and this text */
} bad_cfg;

static const bad_cfg bad[] = {
    /* NET(...) is lines 1-5 and NET_FLAT(...) lines 1-3 */
    {NET(1, 1, 4, 4) "[maxpool]\n[route]\nlayers=3\n", ":8: [route] layers",
     "3 is layer 3; expected an earlier layer"},
    {NET(1, 1, 4, 4) "[maxpool]\n[route]\nlayers=-1,-2\n", ":8: [route] layers",
     "-2 is layer -1"},
    {NET(1, 1, 4, 4) "[maxpool]\n[route]\nlayers=-1,1\n", ":8: [route] layers",
     "1 is layer 1"},
    {NET(1, 1, 4, 4) "[route]\nlayers=-1\n", ":7: [route] layers",
     "only input can be routed"},
    {NET(1, 1, 4, 4) "[maxpool]\n[route]\nlayers=-1,previous\n",
     ":8: [route] layers", "got \"previous\""},
    {NET(1, 1, 4, 4) "[maxpool]\n[route]\nlayers=-1,,0\n", ":8: [route] layers",
     "empty item"},
    {NET(1, 1, 4, 4) "[maxpool]\n[route]\nfrom=-1\n", ":7: [route] layers",
     "missing"},
    {NET(1, 1, 4, 4) "[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,input\n",
     ":10: [route] layers", "layer 0 1x2x2, input 1x4x4"},
    {NET(1, 1, 4, 4) "[maxpool]\n[shortcut]\nfrom=-2\n", ":8: [shortcut] from",
     "-2 is layer -1"},
    {NET(1, 1, 4, 4) "[maxpool]\n[shortcut]\nfrom=1\n", ":8: [shortcut] from",
     "1 is layer 1"},
    {NET(1, 1, 4, 4) "[shortcut]\nfrom=0\n", ":7: [shortcut] from",
     "first layer"},
    {NET(1, 1, 4, 4) "[maxpool]\n[maxpool]\nstride=2\n[shortcut]\nfrom=0\n",
     ":10: [shortcut] from",
     "layer 0 outputs 1x4x4 (c x h x w) but the previous layer outputs 1x2x2"},
    {NET(1, 1, 4, 4) "[maxpool]\n[shortcut]\n", ":7: [shortcut] from",
     "missing"},
    {NET(1, 1, 4, 4) "[maxpool]\n[shortcut]\nfrom=-1\nactivation=lineer\n",
     ":9: [shortcut] activation", "unknown value \"lineer\""},
    {NET(1, 1, 4, 4) "[maxpool]\nsize=2\nstride=1\npadding=3\n",
     ":9: [maxpool] padding", "entirely outside"},
    {NET(1, 1, 4, 4) "[maxpool]\nsize=6\npadding=0\n", ":7: [maxpool] size",
     "larger than the padded input"},
    {NET(1, 1, 4, 4) "[maxpool]\nsize=0\n", ":7: [maxpool] size",
     "expected an integer in [1, "},
    {NET(1, 1, 4, 4) "[dropout]\nprobability=1\n", ":7: [dropout] probability",
     "[0, 1), got 1"},
    {NET_FLAT(1, 6) "[softmax]\ngroups=4\n", ":5: [softmax] groups",
     "4 does not divide the 6 inputs"},
    {NET_FLAT(1, 6) "[softmax]\ntree=data/9k.tree\n", ":5: [softmax] tree",
     "not supported"},
    {NET_FLAT(1, 6) "[logistic]\nnoloss=2\n", ":5: [logistic] noloss",
     "expected an integer in [0, 1]"},
    {NET_FLAT(1, 6) "output_activation=tanh\n[softmax]\n",
     ":4: [net] output_activation",
     "unknown value \"tanh\"; valid: softmax, sigmoid"},
    {NET_FLAT(1, 6) "output_activation=sigmoid\n[softmax]\n[logistic]\n",
     ":4: [net] output_activation", "it ends with [logistic]"},
};

#define N_BAD (sizeof bad / sizeof *bad)

static void check_bad(const bad_cfg *b, int from_file)
{
    dn_error err = {{0}};
    dn_cfg *cfg = NULL;
    static dn_net sentinel;
    dn_net *net = &sentinel; /* must come back NULL */
    int rc;
    if (from_file)
        rc = dn_cfg_load(tu_write_file("bad.cfg", b->cfg), &cfg, &err);
    else
        rc = dn_cfg_parse_string(b->cfg, "bad.cfg", &cfg, &err);
    assert_int_equal(rc, 0);
    rc = dn_net_make(cfg, NULL, &net, &err);
    if (rc == 0) {
        dn_net_free(net);
        fail_msg("accepted:\n%s", b->cfg);
    }
    dn_cfg_free(cfg); /* not taken over on failure */
    assert_null(net);
    assert_contains(err.msg, "bad.cfg");
    assert_contains(err.msg, b->where);
    assert_contains(err.msg, b->message);
}

static void test_bad_cfgs_from_string(void **state)
{
    for (size_t i = 0; i < N_BAD; i++)
        check_bad(&bad[i], 0);
}

static void test_bad_cfgs_from_file(void **state)
{
    for (size_t i = 0; i < N_BAD; i++)
        check_bad(&bad[i], 1);
}

int main(void)
{
    struct CMUnitTest gradcheck[N_CASES];
    for (size_t i = 0; i < N_CASES; i++)
        gradcheck[i] = (struct CMUnitTest){cases[i].gc.name, run_case, NULL,
                                           NULL, (void *)&cases[i]};
    const struct CMUnitTest values[] = {
        cmocka_unit_test(test_maxpool_output_size_matches_darknet),
        cmocka_unit_test(test_maxpool_default_stride_and_size),
        cmocka_unit_test(test_maxpool_values_and_routing),
        cmocka_unit_test(test_maxpool_2x2_matches_reference),
        cmocka_unit_test(test_avgpool_values),
        cmocka_unit_test(test_softmax_known_values),
        cmocka_unit_test(test_softmax_loss_gradient_is_p_minus_t),
        cmocka_unit_test(test_softmax_inference_adds_no_loss_gradient),
        cmocka_unit_test(test_softmax_inside_network_has_no_cost),
        cmocka_unit_test(test_softmax_sigmoid_ce_known_values),
        cmocka_unit_test(test_softmax_sigmoid_applies_to_the_last_layer_only),
        cmocka_unit_test(test_logistic_known_values_and_saturation),
        cmocka_unit_test(test_shortcut_values),
        cmocka_unit_test(test_route_concatenates_in_order),
        cmocka_unit_test(test_dropout_statistics_and_determinism),
        cmocka_unit_test(test_dropout_mask_depends_on_layer_index),
    };
    const struct CMUnitTest errors[] = {
        cmocka_unit_test(test_bad_cfgs_from_string),
        cmocka_unit_test(test_bad_cfgs_from_file),
    };
    int failed = cmocka_run_group_tests_name("gradcheck", gradcheck, NULL, NULL);
    failed += cmocka_run_group_tests_name("values", values, NULL, NULL);
    failed += cmocka_run_group_tests_name("errors", errors, NULL, NULL);
    return failed ? 1 : 0;
}
