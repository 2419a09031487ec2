/*
 * test_conv_layers.c - [convolutional], [connected], [batchnorm] and the
 * kernels under them (darknet/src/blas.c).
 *
 *  - gradient checks: a table of small cfgs run through the finite-difference
 *    harness (tests/gradcheck.h): step 1e-2 (3e-3 across relu's kink),
 *    largest relative error 1e-2. The error's floor of 1e-3 magnifies fp32
 *    noise where a gradient is near zero, and batch norm over a few values
 *    is strongly curved, so the shapes are small but not minimal.
 *  - the convolution against a direct six-loop reference in double, forward
 *    and backward, on random shapes covering stride, padding, groups,
 *    dilation, the 1x1 path, one and several images per GEMM, through both
 *    backends (im2col + GEMM, and oneDNN when built with it: direct and
 *    Winograd kernels); tolerance |got - ref| <= 1e-4 * (1 + |ref|) (the
 *    largest seen: about 5e-5, Winograd's forward on 64 channels).
 *  - output shapes, a hand-computed forward, batch-norm statistics, saved
 *    tensor layouts, deterministic initialisation, and cfg errors (from a
 *    string and from a file).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchnorm.h"
#include "blas.h"
#include "conv_onednn.h"
#include "convolutional_layer.h"
#include "gradcheck.h"
#include "layer_util.h"
#include "testutil.h"

/* ---------------------------------------------------------- utilities */

static dn_net *build(const char *text, dn_error *err)
{
    dn_cfg *cfg;
    dn_net *net;
    if (dn_cfg_parse_string(text, "test.cfg", &cfg, err))
        return NULL;
    if (dn_net_make(cfg, NULL, &net, err)) {
        dn_cfg_free(cfg);
        return NULL;
    }
    return net;
}

static dn_net *build_ok(const char *text)
{
    dn_error err = {{0}};
    dn_net *net = build(text, &err);
    if (!net)
        print_error("cfg failed: %s\n", err.msg);
    assert_non_null(net);
    return net;
}

static void fill_uniform(float *x, long n, dn_rng *rng)
{
    for (long i = 0; i < n; i++)
        x[i] = (float)(2 * dn_rng_uniform(rng) - 1);
}

/* ------------------------------------------------------ gradient checks */

#define NET(batch, c, h, w)                                                  \
    "[net]\nbatch=" #batch "\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"

static const gc_case grad_cases[] = {
    {"conv 3x3/1 pad linear", NET(2, 3, 5, 5)
     "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=linear\n",
     1, 0, 0},
    {"conv 3x3/2 pad leaky", NET(2, 3, 5, 5)
     "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=leaky\n",
     1, 0, 0},
    /* relu's kink: a smaller step keeps the differences on one side of it */
    {"conv 3x3/1 no pad relu", NET(2, 3, 5, 5)
     "[convolutional]\nfilters=3\nsize=3\nstride=1\npad=0\nactivation=relu\n",
     1, 3e-3, 0},
    {"conv 1x1 logistic", NET(2, 3, 5, 5)
     "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n", 1, 0, 0},
    /* batch 1: one image per GEMM; a 1x1 then reads its input as col */
    {"conv 1x1 direct", NET(1, 3, 5, 5)
     "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n", 1, 0, 0},
    {"conv 3x3 one image/GEMM", NET(1, 2, 5, 5)
     "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=tanh\n", 1, 0, 0},
    {"conv groups=2 tanh", NET(2, 4, 5, 5)
     "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=2\nactivation=tanh\n",
     1, 0, 0},
    {"conv depthwise elu", NET(2, 4, 5, 5)
     "[convolutional]\nfilters=8\nsize=3\npad=1\ngroups=4\nactivation=elu\n",
     1, 0, 0},
    {"conv dilation 2 selu", NET(2, 3, 6, 6)
     "[convolutional]\nfilters=3\nsize=3\npadding=2\ndilation=2\n"
     "activation=selu\n", 1, 0, 0},
    {"conv 2x2/2 mish", NET(2, 2, 6, 5)
     "[convolutional]\nfilters=3\nsize=2\nstride=2\nactivation=mish\n",
     1, 0, 0},
    {"conv bn train", NET(3, 3, 5, 5)
     "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=linear\n", 1, 0, 0},
    {"conv bn train swish", NET(2, 3, 5, 5)
     "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nbatch_normalize=1\n"
     "activation=swish\n", 1, 0, 0},
    {"conv bn inference", NET(2, 3, 5, 5)
     "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=logistic\n", 0, 0, 0},
    /* 16 and 32 filters with batch norm: with oneDNN, batch norm and the
     * activation run on the convolution's blocked output (batchnorm_blocked.c;
     * test_conv_bn_blocked_matches_plain checks that they do, and that relu
     * and leaky, whose kinks finite differences over 16 channels cross,
     * give the plain path's values); 6x6 planes: 8x8 squares and a
     * remainder; swish: the portable loops */
    {"conv bn linear, blocked", NET(2, 16, 6, 6)
     "[convolutional]\nfilters=16\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=linear\n", 1, 0, 0},
    {"conv bn swish, 2 blocks", NET(2, 16, 6, 5)
     "[convolutional]\nfilters=32\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=swish\n", 1, 0, 0},
    /* inference with a linear activation is linear in every input: a
     * larger step only lowers the rounding noise over 144 products */
    /* two convolutions with batch norm, the first linked to the second
     * (its output and delta blocked: no reorders between them); a larger
     * step: the Winograd forward's rounding (about 5e-5), magnified by two
     * batch norms, is what a 1e-2 step's differences otherwise measure */
    {"conv bn > conv bn, linked", NET(4, 16, 4, 4)
     "[convolutional]\nfilters=16\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=linear\n"
     "[convolutional]\nfilters=16\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=linear\n", 1, 3e-2, 0},
    {"conv bn swish > conv bn, linked", NET(4, 16, 4, 4)
     "[convolutional]\nfilters=16\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=swish\n"
     "[convolutional]\nfilters=16\nsize=1\nbatch_normalize=1\n"
     "activation=linear\n", 1, 3e-2, 0},
    /* a residual block, every tensor blocked from the first convolution's
     * output to [avgpool]'s input: the second convolution reads a tensor
     * the [shortcut] also reads, so it adds its input gradient (with the
     * downsampling block: test_residual_blocked_matches_plain) */
    {"residual block, blocked", NET(3, 16, 4, 4)
     "[convolutional]\nfilters=16\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=linear\n"
     "[convolutional]\nfilters=16\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=linear\n"
     "[shortcut]\nfrom=-2\nactivation=linear\n"
     "[avgpool]\n", 1, 3e-2, 0},
    {"conv bn inference, blocked", NET(2, 16, 6, 6)
     "[convolutional]\nfilters=16\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=linear\n", 0, 5e-2, 0},
    {"connected logistic", NET(3, 2, 2, 3)
     "[connected]\noutput=5\n", 1, 0, 0},
    {"connected gelu", NET(3, 7, 1, 1)
     "[connected]\noutput=4\nactivation=gelu\n", 1, 0, 0},
    {"connected bn train", NET(4, 6, 1, 1)
     "[connected]\noutput=5\nbatch_normalize=1\nactivation=linear\n", 1, 0, 0},
    {"connected bn inference", NET(3, 6, 1, 1)
     "[connected]\noutput=5\nbatch_normalize=1\nactivation=tanh\n", 0, 0, 0},
    {"batchnorm train", NET(2, 3, 4, 4) "[batchnorm]\n", 1, 0, 0},
    {"batchnorm inference", NET(2, 3, 4, 4) "[batchnorm]\n", 0, 0, 0},
    {"conv > batchnorm > connected", NET(2, 3, 5, 5)
     "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=linear\n"
     "[batchnorm]\n"
     "[connected]\noutput=3\nactivation=logistic\n", 1, 0, 0},
    {"conv bn > connected bn", NET(4, 2, 4, 4)
     "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\n"
     "activation=tanh\n"
     "[connected]\noutput=4\nbatch_normalize=1\nactivation=linear\n", 1, 0, 0},
};
#define N_GRAD_CASES (sizeof grad_cases / sizeof *grad_cases)

static void test_gradient(void **state) { gc_assert(*state); }

/* ----------------------------------------------------- direct reference */

typedef struct conv_shape {
    int batch, c, h, w, filters, size, stride, padding, groups, dilation;
} conv_shape;

static const conv_shape ref_shapes[] = {
    {2, 3, 7, 6, 4, 3, 1, 1, 1, 1},   /* same padding, non-square */
    {3, 4, 9, 9, 6, 3, 2, 1, 2, 1},   /* stride 2, two groups */
    {2, 4, 8, 7, 4, 3, 1, 2, 4, 2},   /* depthwise, dilation 2 */
    {2, 3, 6, 6, 5, 5, 2, 0, 1, 1},   /* 5x5/2, no padding */
    {2, 6, 5, 5, 3, 1, 1, 0, 3, 1},   /* 1x1 grouped, several images */
    {2, 4, 32, 32, 6, 1, 1, 0, 2, 1}, /* 1x1 direct (no im2col) */
    {3, 3, 32, 32, 4, 3, 1, 1, 1, 1}, /* one image per GEMM */
    {5, 2, 10, 10, 3, 3, 1, 1, 1, 1}, /* 3 + 2 images per GEMM */
    {7, 3, 4, 4, 5, 3, 1, 1, 1, 1},   /* 7 images in one GEMM; 4 + 3 */
    {2, 2, 6, 6, 3, 4, 3, 3, 1, 1},   /* even kernel, wide padding */
    {2, 3, 9, 8, 2, 3, 2, 3, 1, 3},   /* dilation 3, stride 2 */
    {2, 2, 66, 66, 3, 3, 2, 1, 1, 2}, /* a plane too big to pad on the stack */
    {3, 4, 6, 6, 4, 3, 2, 1, 2, 1},   /* small plane (oneDNN: GEMM dW), groups */
    /* 3x3/1 with 16+ channels: oneDNN's Winograd kernels where the CPU
     * has them (the implementation is printed) */
    {2, 16, 8, 8, 16, 3, 1, 1, 1, 1},
    {3, 32, 12, 10, 48, 3, 1, 1, 1, 1},
    {16, 64, 16, 16, 64, 3, 1, 1, 1, 1},
};

/* Index into a [.., n1, n2, n3] tensor. */
#define AT4(n1, n2, n3, a, b, c, d) ((((long)(a) * (n1) + (b)) * (n2) + (c)) * (n3) + (d))

/*
 * Reference convolution in double: y = conv(x, w) + bias, and for a given
 * dy: dx, dw, dbias. Six nested loops, no im2col.
 */
static void reference_conv(const conv_shape *s, int oh, int ow, const float *x,
                           const float *w, const float *bias, const float *dy,
                           double *y, double *dx, double *dw, double *db)
{
    const int cg = s->c / s->groups, fg = s->filters / s->groups, k = s->size;
    for (int b = 0; b < s->batch; b++)
        for (int f = 0; f < s->filters; f++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    const long o = AT4(s->filters, oh, ow, b, f, oy, ox);
                    double sum = bias[f];
                    db[f] += dy[o];
                    for (int ci = 0; ci < cg; ci++) {
                        const int ch = f / fg * cg + ci;
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * s->stride - s->padding + ky * s->dilation;
                                int ix = ox * s->stride - s->padding + kx * s->dilation;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                long wi = AT4(cg, k, k, f, ci, ky, kx);
                                long xi = AT4(s->c, s->h, s->w, b, ch, iy, ix);
                                sum += (double)w[wi] * x[xi];
                                dw[wi] += (double)dy[o] * x[xi];
                                dx[xi] += (double)dy[o] * w[wi];
                            }
                    }
                    y[o] = sum;
                }
}

static double compare(const char *what, const float *got, const double *ref,
                      long n)
{
    double worst = 0;
    for (long i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]) / (1 + fabs(ref[i]));
        if (e > worst)
            worst = e;
    }
    printf("  %-10s max err %.2e\n", what, worst);
    return worst;
}

static double compare_floats(const char *what, const float *got,
                             const float *ref, long n)
{
    double worst = 0;
    for (long i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) / (1 + fabs(ref[i]));
        if (e > worst)
            worst = e;
    }
    printf("  %-10s max err %.2e\n", what, worst);
    return worst;
}

/* Subtracts what a buffer held before a pass that adds into it. */
static void subtract(float *x, float before, long n)
{
    for (long i = 0; i < n; i++)
        x[i] -= before;
}

static const char *const backends[] = {"im2col", "onednn"};

static void test_conv_matches_reference(void **state)
{
    (void)state;
    dn_rng rng;
    dn_rng_seed(&rng, 7);
    const size_t n_shapes = sizeof ref_shapes / sizeof *ref_shapes;
    /* each shape through each backend this build has, on one thread (im2col:
     * chunks in turn, parallel steps) and on two (whole chunks per thread,
     * per-thread weight gradients). The gradients are added to buffers that
     * already hold a value, as with subdivisions and shortcuts. */
    const int n_backends = dn_onednn_available() ? 2 : 1;
    for (size_t run = 0; run < 2 * n_backends * n_shapes; run++) {
        const conv_shape *s = &ref_shapes[run % n_shapes];
        const int threads = run / n_shapes % 2 ? 2 : 1;
        const char *backend = backends[run / (2 * n_shapes)];
        char cfg[512];
        snprintf(cfg, sizeof cfg,
                 "[net]\nbatch=%d\nheight=%d\nwidth=%d\nchannels=%d\nthreads=%d\n"
                 "conv_backend=%s\n"
                 "[convolutional]\nfilters=%d\nsize=%d\nstride=%d\npadding=%d\n"
                 "groups=%d\ndilation=%d\nactivation=linear\n",
                 s->batch, s->h, s->w, s->c, threads, backend, s->filters,
                 s->size, s->stride, s->padding, s->groups, s->dilation);
        printf("%s, threads %d: batch %d, %dx%dx%d, %d filters %dx%d/%d, "
               "padding %d, groups %d, dilation %d\n", backend, threads,
               s->batch, s->c, s->h, s->w, s->filters, s->size, s->size,
               s->stride, s->padding, s->groups, s->dilation);
        dn_net *net = build_ok(cfg);
        dn_layer *l = &net->layers[0];
        const conv *cv = l->priv;
        if (cv->onednn)
            printf("  oneDNN: %s\n", dn_onednn_conv_impl(cv->onednn));
        assert_string_equal(l->params[0].name, "biases");
        assert_string_equal(l->params[1].name, "weights");
        const long nx = (long)s->batch * l->inputs, ny = (long)s->batch * l->outputs;
        fill_uniform(net->input_data, nx, &rng);
        fill_uniform(l->params[0].w, l->params[0].n, &rng);
        fill_uniform(l->params[1].w, l->params[1].n, &rng);
        float *dy = malloc(ny * sizeof *dy);
        fill_uniform(dy, ny, &rng);
        net->input_delta = malloc(nx * sizeof(float));

        dn_net_forward(net, 1); /* clears the deltas */
        for (long i = 0; i < nx; i++)
            net->input_delta[i] = 0.5f;
        for (long i = 0; i < l->params[1].n; i++)
            l->params[1].grad[i] = 0.25f;
        memcpy(l->delta, dy, ny * sizeof *dy);
        dn_net_backward(net);
        subtract(net->input_delta, 0.5f, nx);
        subtract(l->params[1].grad, 0.25f, l->params[1].n);

        double *y = calloc(ny, sizeof *y), *dx = calloc(nx, sizeof *dx);
        double *dw = calloc(l->params[1].n, sizeof *dw);
        double *db = calloc(l->params[0].n, sizeof *db);
        reference_conv(s, l->out_h, l->out_w, net->input_data, l->params[1].w,
                       l->params[0].w, dy, y, dx, dw, db);
        double worst = compare("output", l->output, y, ny);
        worst = fmax(worst, compare("d input", net->input_delta, dx, nx));
        worst = fmax(worst, compare("d weights", l->params[1].grad, dw,
                                    l->params[1].n));
        worst = fmax(worst, compare("d biases", l->params[0].grad, db,
                                    l->params[0].n));
        assert_true(worst <= 1e-4);
        free(y), free(dx), free(dw), free(db), free(dy);
        free(net->input_delta);
        net->input_delta = NULL;
        dn_net_free(net);
    }
}

/* conv_backend=onednn builds where the build has oneDNN and is an error
 * naming the layer and the reason where it has not; im2col always builds. */
static void test_conv_backend_key(void **state)
{
    (void)state;
    const char *onednn = NET(2, 3, 5, 5) "conv_backend=onednn\n"
                         "[convolutional]\nfilters=4\nsize=3\npad=1\n";
    dn_error err = {{0}};
    dn_net *net = build(onednn, &err);
    if (dn_onednn_available()) {
        assert_non_null(net);
        assert_non_null(((conv *)net->layers[0].priv)->onednn);
        dn_net_free(net);
    } else {
        assert_null(net);
        assert_contains(err.msg, "test.cfg:7: [convolutional] layer 0: [net] "
                                 "conv_backend=onednn, but this build has no "
                                 "oneDNN");
    }
    net = build_ok(NET(2, 3, 5, 5) "conv_backend=im2col\n"
                   "[convolutional]\nfilters=4\nsize=3\npad=1\n");
    assert_null(((conv *)net->layers[0].priv)->onednn);
    dn_net_free(net);
}

/* The plain value of x [batch][c/k][hw][k] at plain index i of
 * [batch, c, hw]. */
static float plain_at(const float *x, long i, int c, long hw, int k)
{
    const long b = i / (c * hw), ch = i / hw % c, s = i % hw;
    return x[((b * (c / k) + ch / k) * hw + s) * k + ch % k];
}

/* Builds a net, fills its input and every parameter from seed, and runs
 * two training passes (forward, a random output gradient, backward; the
 * parameter gradients add up), with sync batch norm through `sync` when
 * not NULL. */
static dn_net *train_step(const char *cfg, uint64_t seed, dn_bn_sync *sync)
{
    dn_net *net = build_ok(cfg);
    net->bn_sync = sync;
    dn_rng rng;
    dn_rng_seed(&rng, seed);
    fill_uniform(net->input_data, (long)net->batch * net->inputs, &rng);
    for (int j = 0; j < net->n; j++)
        for (int k = 0; k < net->layers[j].n_params; k++)
            fill_uniform(net->layers[j].params[k].w,
                         net->layers[j].params[k].n, &rng);
    net->input_delta = calloc((size_t)net->batch * net->inputs, sizeof(float));
    dn_layer *last = &net->layers[net->n - 1];
    const long n = (long)last->batch * last->outputs;
    float *dout = malloc((size_t)n * sizeof *dout);
    fill_uniform(dout, n, &rng);
    for (int pass = 0; pass < 2; pass++) { /* deltas reused: none stale */
        dn_net_forward(net, 1);
        memcpy(last->delta, dout, (size_t)n * sizeof *dout);
        dn_net_backward(net);
    }
    free(dout);
    return net;
}

static void free_stepped(dn_net *net)
{
    free(net->input_delta);
    net->input_delta = NULL;
    net->bn_sync = NULL;
    dn_net_free(net);
}

/* The largest error between two nets of one cfg after train_step: every
 * layer's output (a blocked one of `got` read through the blocked
 * indexing), the input gradient, every parameter gradient and every saved
 * tensor (rolling statistics). */
static double compare_nets(const dn_net *got, const dn_net *ref)
{
    double worst = compare_floats("d input", got->input_delta,
                                  ref->input_delta,
                                  (long)got->batch * got->inputs);
    for (int j = 0; j < got->n; j++) {
        const dn_layer *l = &got->layers[j], *p = &ref->layers[j];
        const long n = (long)l->batch * l->outputs;
        const long hw = (long)l->out_h * l->out_w;
        float *plain = malloc((size_t)n * sizeof *plain);
        for (long i = 0; i < n; i++)
            plain[i] = l->out_block ? plain_at(l->output, i, l->out_c, hw,
                                               l->out_block)
                                    : l->output[i];
        char what[32];
        snprintf(what, sizeof what, "output %d", j);
        worst = fmax(worst, compare_floats(what, plain, p->output, n));
        free(plain);
        for (int k = 0; k < l->n_params; k++)
            worst = fmax(worst, compare_floats(l->params[k].name,
                                               l->params[k].grad,
                                               p->params[k].grad,
                                               l->params[k].n));
        for (int k = 0; k < l->n_saved; k++)
            worst = fmax(worst, compare_floats("saved", l->saved[k],
                                               p->saved[k], l->saved_n[k]));
    }
    return worst;
}

/*
 * Batch norm and the activation on oneDNN's blocked output against the
 * plain path (conv_backend=im2col) on the same data, through two
 * convolutions with batch norm: the first hands its output to the second
 * blocked (no reorder either way), the second writes its output plain.
 * Every output, every gradient and the rolling statistics after a training
 * step, and the outputs in inference. 16 input channels (a first layer's
 * few channels make oneDNN choose other layouts), planes of 81 (ten 8x8
 * squares and a remainder), two channel blocks, each activation kind
 * (vector: linear, relu, leaky; portable: the rest). Tolerance
 * |a - b| <= 1e-4 (1 + |b|), as the convolution's own.
 */
static void test_conv_bn_blocked_matches_plain(void **state)
{
    (void)state;
    if (!dn_onednn_available())
        skip();
    const char *acts[] = {"linear", "relu", "leaky", "mish", "logistic"};
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        dn_net *nets[2];
        for (int i = 0; i < 2; i++) {
            char cfg[512];
            snprintf(cfg, sizeof cfg, NET(3, 16, 9, 9) "conv_backend=%s\n"
                     "bn_momentum=0.3\n[convolutional]\nfilters=32\nsize=3\n"
                     "pad=1\nbatch_normalize=1\nactivation=%s\n"
                     "[convolutional]\nfilters=16\nsize=3\npad=1\n"
                     "batch_normalize=1\nactivation=%s\n",
                     i ? "im2col" : "onednn", acts[a], acts[a]);
            nets[i] = train_step(cfg, 11, NULL);
        }
        const conv *first = nets[0]->layers[0].priv,
                   *second = nets[0]->layers[1].priv;
        printf("%s: oneDNN output blocks %d, %d; layer 0 out block %d\n",
               acts[a], first->block, second->block,
               nets[0]->layers[0].out_block);
        assert_true(first->block > 0 && second->block > 0);
        assert_int_equal(nets[0]->layers[0].out_block, first->block);
        assert_int_equal(nets[0]->layers[1].in_block, first->block);
        assert_int_equal(nets[0]->layers[1].out_block, 0); /* the last */
        assert_int_equal(((conv *)nets[1]->layers[0].priv)->block, 0);
        double worst = compare_nets(nets[0], nets[1]);
        dn_net_forward(nets[0], 0);
        dn_net_forward(nets[1], 0);
        worst = fmax(worst, compare_floats("inference", nets[0]->layers[1].output,
                                           nets[1]->layers[1].output,
                                           3L * nets[0]->layers[1].outputs));
        assert_true(worst <= 1e-4);
        for (int i = 0; i < 2; i++)
            free_stepped(nets[i]);
    }
}

/*
 * ResNet's residual blocks with every tensor between the first
 * convolution's output and [avgpool]'s input channel-blocked (network.c,
 * choose_layouts) against the plain path (conv_backend=im2col), on
 * tensors of 76800 and 19200 values ([shortcut]'s ranges: two and a part,
 * and a part): an
 * identity block (a tensor read by a convolution and a [shortcut]: the
 * convolution adds its input gradient) and a downsampling one through a
 * [route] and a 1x1/2 convolution, as in cfg/resnet18-cifar.cfg. Every
 * output, gradient and rolling statistic; |a - b| <= 1e-4 (1 + |b|).
 */
static void test_residual_blocked_matches_plain(void **state)
{
    (void)state;
    if (!dn_onednn_available())
        skip();
    dn_net *nets[2];
    for (int i = 0; i < 2; i++) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, NET(3, 16, 40, 40) "conv_backend=%s\n"
                 "bn_momentum=0.3\n"
                 "[convolutional]\nfilters=16\nsize=3\npad=1\n"
                 "batch_normalize=1\nactivation=relu\n"
                 "[convolutional]\nfilters=16\nsize=3\npad=1\n"
                 "batch_normalize=1\nactivation=relu\n"
                 "[convolutional]\nfilters=16\nsize=3\npad=1\n"
                 "batch_normalize=1\nactivation=linear\n"
                 "[shortcut]\nfrom=-3\nactivation=relu\n"
                 "[convolutional]\nfilters=32\nsize=3\nstride=2\npad=1\n"
                 "batch_normalize=1\nactivation=relu\n"
                 "[convolutional]\nfilters=32\nsize=3\npad=1\n"
                 "batch_normalize=1\nactivation=linear\n"
                 "[route]\nlayers=-3\n"
                 "[convolutional]\nfilters=32\nsize=1\nstride=2\n"
                 "batch_normalize=1\nactivation=linear\n"
                 "[shortcut]\nfrom=-3\nactivation=relu\n"
                 "[avgpool]\n"
                 "[connected]\noutput=5\nactivation=linear\n",
                 i ? "im2col" : "onednn");
        nets[i] = train_step(cfg, 23, NULL);
    }
    const int k = ((const conv *)nets[0]->layers[0].priv)->block;
    printf("block %d; out blocks:", k);
    for (int j = 0; j < nets[0]->n; j++)
        printf(" %d", nets[0]->layers[j].out_block);
    printf("\n");
    assert_true(k > 0);
    for (int j = 0; j < 9; j++) /* every tensor up to [avgpool] */
        assert_int_equal(nets[0]->layers[j].out_block, k);
    assert_int_equal(nets[0]->layers[9].in_block, k);
    assert_int_equal(nets[0]->layers[9].out_block, 0);
    for (int j = 0; j < nets[1]->n; j++)
        assert_int_equal(nets[1]->layers[j].out_block, 0);
    assert_true(compare_nets(nets[0], nets[1]) <= 1e-4);
    for (int i = 0; i < 2; i++)
        free_stepped(nets[i]);
}

/*
 * oneDNN's Winograd weight gradient (where this CPU has the kernel and
 * oneDNN picks it: 256 channels on 8x8 at batch 8) against im2col + SGEMM
 * on the same data: the weight gradient, the input gradient and the output
 * of one convolution; |a - b| <= 1e-4 (1 + |b|), as the convolution's own.
 */
static void test_winograd_weight_gradient_matches_im2col(void **state)
{
    (void)state;
    if (!dn_onednn_available())
        skip();
    dn_net *nets[2];
    for (int i = 0; i < 2; i++) {
        char cfg[512];
        snprintf(cfg, sizeof cfg, NET(8, 256, 8, 8) "conv_backend=%s\n"
                 "[convolutional]\nfilters=256\nsize=3\npad=1\n"
                 "activation=linear\n", i ? "im2col" : "onednn");
        nets[i] = train_step(cfg, 31, NULL);
    }
    const char *impl =
        dn_onednn_conv_impl(((const conv *)nets[0]->layers[0].priv)->onednn);
    printf("oneDNN: %s\n", impl);
    assert_true(compare_nets(nets[0], nets[1]) <= 1e-4);
    for (int i = 0; i < 2; i++)
        free_stepped(nets[i]);
}

/* A stand-in for sync batch norm over two replicas holding the same data:
 * every sum doubles. */
static int sum_of_two_replicas(void *ctx, float *buf, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++)
        buf[i] *= 2;
    return 0;
}

/* Sync batch norm ([net] bn_sync=1 under mpirun) on the blocked output
 * against the plain path, both summing through the same stand-in: the
 * output, every gradient and the rolling statistics. */
static void test_conv_bn_blocked_sync_matches_plain(void **state)
{
    (void)state;
    if (!dn_onednn_available())
        skip();
    dn_bn_sync sync = {.sum = sum_of_two_replicas, .replicas = 2};
    dn_net *nets[2];
    for (int i = 0; i < 2; i++) {
        char cfg[512];
        snprintf(cfg, sizeof cfg, NET(2, 16, 6, 6) "conv_backend=%s\n"
                 "bn_momentum=0.3\n[convolutional]\nfilters=32\nsize=3\n"
                 "pad=1\nbatch_normalize=1\nactivation=relu\n",
                 i ? "im2col" : "onednn");
        nets[i] = train_step(cfg, 5, &sync);
    }
    assert_true(((const conv *)nets[0]->layers[0].priv)->block > 0);
    assert_true(compare_nets(nets[0], nets[1]) <= 1e-4);
    for (int i = 0; i < 2; i++)
        free_stepped(nets[i]);
}

/* A 3x3 kernel on a 4x4 image, worked by hand. */
static void test_conv_hand_computed(void **state)
{
    (void)state;
    dn_net *net = build_ok(NET(1, 1, 4, 4)
                           "[convolutional]\nfilters=1\nsize=3\npad=1\n"
                           "activation=linear\n");
    dn_layer *l = &net->layers[0];
    for (int i = 0; i < 16; i++)
        net->input_data[i] = (float)(i + 1); /* rows 1..4, 5..8, 9..12, 13..16 */
    /* [-1 0 1] on each of the three rows of the window (cross-correlation,
     * as Darknet: no kernel flip), bias 0.5, zero padding */
    const float k[9] = {-1, 0, 1, -1, 0, 1, -1, 0, 1};
    memcpy(l->params[1].w, k, sizeof k);
    l->params[0].w[0] = 0.5f;
    dn_net_forward(net, 0);
    /* inside: right - left = 2 per image row in the window (2 or 3 rows);
     * column 0: the right neighbours (2 6 10 14) summed over the window;
     * column 3: minus the left neighbours (3 7 11 15). */
    const float expect[16] = {8.5f,  4.5f, 4.5f, -9.5f,
                              18.5f, 6.5f, 6.5f, -20.5f,
                              30.5f, 6.5f, 6.5f, -32.5f,
                              24.5f, 4.5f, 4.5f, -25.5f};
    for (int i = 0; i < 16; i++)
        assert_float_equal(l->output[i], expect[i], 1e-6);
    dn_net_free(net);
}

/* ------------------------------------------------------- output shapes */

typedef struct shape_case {
    const char *keys; /* [convolutional] keys */
    int h, w, out_h, out_w;
} shape_case;

static const shape_case shape_cases[] = {
    {"size=3\npad=1\n", 5, 5, 5, 5},
    {"size=3\npad=1\nstride=2\n", 5, 5, 3, 3},
    {"size=3\npad=1\nstride=2\n", 32, 32, 16, 16},
    {"size=3\n", 5, 7, 3, 5},
    {"size=1\n", 6, 4, 6, 4},
    {"size=2\nstride=2\n", 7, 8, 3, 4},
    {"size=3\npadding=2\ndilation=2\n", 6, 6, 6, 6},
    {"size=3\ndilation=2\n", 5, 5, 1, 1},
    {"size=3\npad=1\ndilation=2\n", 8, 8, 6, 6}, /* pad=1 is size/2 */
    {"size=5\npadding=1\npad=1\nstride=3\n", 10, 10, 4, 4}, /* pad wins */
    {"size=7\npadding=3\nstride=2\n", 224, 224, 112, 112},
};

static void test_conv_output_shapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof shape_cases / sizeof *shape_cases; i++) {
        const shape_case *t = &shape_cases[i];
        char cfg[256];
        snprintf(cfg, sizeof cfg,
                 "[net]\nheight=%d\nwidth=%d\nchannels=2\n"
                 "[convolutional]\nfilters=3\n%s", t->h, t->w, t->keys);
        dn_net *net = build_ok(cfg);
        dn_layer *l = &net->layers[0];
        if (l->out_h != t->out_h || l->out_w != t->out_w)
            print_error("case %zu: %dx%d, expected %dx%d\n", i, l->out_h,
                        l->out_w, t->out_h, t->out_w);
        assert_int_equal(l->out_h, t->out_h);
        assert_int_equal(l->out_w, t->out_w);
        assert_int_equal(l->out_c, 3);
        dn_net_free(net);
    }
}

/* --------------------------------------------------------- batch norm */

/* After one training forward: rolling mean = 0.01 * batch mean, rolling
 * variance = 0.99 + 0.01 * unbiased variance; the output is normalised with
 * the biased variance. */
static void test_batchnorm_statistics(void **state)
{
    (void)state;
    dn_net *net = build_ok(NET(2, 2, 1, 2) "[batchnorm]\n");
    dn_layer *l = &net->layers[0];
    /* [batch 2, c 2, 1x2]: channel 0 gets 1 2 | 3 4, channel 1 gets 0 0 | 0 8 */
    const float x[8] = {1, 2, 0, 0, 3, 4, 0, 8};
    memcpy(net->input_data, x, sizeof x);
    dn_net_forward(net, 1);
    /* saved: scales, rolling_mean, rolling_variance, biases */
    const float *rolling_mean = l->saved[1], *rolling_variance = l->saved[2];
    assert_float_equal(rolling_mean[0], 0.01f * 2.5f, 1e-7);
    assert_float_equal(rolling_mean[1], 0.01f * 2.0f, 1e-7);
    /* channel 0: biased var 1.25, unbiased 5/3; channel 1: 12 and 16 */
    assert_float_equal(rolling_variance[0], 0.99f + 0.01f * 5.0f / 3, 1e-6);
    assert_float_equal(rolling_variance[1], 0.99f + 0.01f * 16.0f, 1e-6);
    const float inv0 = 1 / sqrtf(1.25f + DN_BN_EPS);
    assert_float_equal(l->output[0], (1 - 2.5f) * inv0, 1e-5);
    assert_float_equal(l->output[5], (4 - 2.5f) * inv0, 1e-5);
    assert_float_equal(l->output[7], (8 - 2.0f) / sqrtf(12 + DN_BN_EPS), 1e-5);
    /* inference: the rolling statistics, untouched by the pass */
    float rm = rolling_mean[1], rv = rolling_variance[1];
    dn_net_forward(net, 0);
    assert_float_equal(rolling_mean[1], rm, 0);
    assert_float_equal(l->output[7], (8 - rm) / sqrtf(rv + DN_BN_EPS), 1e-5);
    dn_net_free(net);
}

/* [net] bn_momentum sets the weight of a batch in the rolling statistics
 * (PyTorch's 0.1 here instead of Darknet's default 0.01). */
static void test_batchnorm_momentum_key(void **state)
{
    (void)state;
    dn_net *net = build_ok("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\n"
                           "bn_momentum=0.1\n[batchnorm]\n");
    dn_layer *l = &net->layers[0];
    const float x[8] = {1, 2, 0, 0, 3, 4, 0, 8};
    memcpy(net->input_data, x, sizeof x);
    dn_net_forward(net, 1);
    const float *rolling_mean = l->saved[1], *rolling_variance = l->saved[2];
    assert_float_equal(rolling_mean[0], 0.1f * 2.5f, 1e-7);
    assert_float_equal(rolling_variance[1], 0.9f + 0.1f * 16.0f, 1e-6);
    dn_net_free(net);
}

/* Conv with BN in inference mode is the affine map the rolling stats say. */
static void test_conv_bn_inference_uses_rolling(void **state)
{
    (void)state;
    dn_net *net = build_ok(NET(1, 1, 1, 1)
                           "[convolutional]\nfilters=1\nsize=1\n"
                           "batch_normalize=1\nactivation=linear\n");
    dn_layer *l = &net->layers[0];
    /* saved: biases, scales, rolling_mean, rolling_variance, weights */
    l->saved[0][0] = 0.25f; /* beta */
    l->saved[1][0] = 2.0f;  /* gamma */
    l->saved[2][0] = 1.0f;  /* mean */
    l->saved[3][0] = 4.0f;  /* variance */
    l->saved[4][0] = 3.0f;  /* weight */
    net->input_data[0] = 2.0f;
    dn_net_forward(net, 0);
    assert_float_equal(l->output[0], 2.0f * (6 - 1) / sqrtf(4 + DN_BN_EPS) + 0.25f,
                       1e-5);
    dn_net_free(net);
}

/* -------------------------------------------------- layout and init */

typedef struct layout_case {
    const char *cfg;
    int n_saved;
    long saved_n[DN_MAX_SAVED];
    int n_params;
    const char *param_names[DN_MAX_PARAMS];
    double flops;
} layout_case;

static const layout_case layout_cases[] = {
    {NET(1, 3, 4, 4) "[convolutional]\nfilters=8\nsize=3\npad=1\n", 2, {8, 216},
     2, {"biases", "weights"}, 2.0 * 216 * 16},
    {NET(1, 3, 4, 4) "[convolutional]\nfilters=8\nsize=3\npad=1\n"
     "batch_normalize=1\n", 5, {8, 8, 8, 8, 216},
     3, {"biases", "scales", "weights"}, 2.0 * 216 * 16},
    {NET(1, 4, 4, 4) "[convolutional]\nfilters=8\nsize=3\npad=1\ngroups=4\n",
     2, {8, 8 * 9}, 2, {"biases", "weights"}, 2.0 * 72 * 16},
    {NET(1, 6, 1, 1) "[connected]\noutput=5\n", 2, {5, 30},
     2, {"biases", "weights"}, 60},
    {NET(1, 6, 1, 1) "[connected]\noutput=5\nbatch_normalize=1\n", 5,
     {5, 30, 5, 5, 5}, 3, {"biases", "scales", "weights"}, 60},
    {NET(1, 3, 2, 2) "[batchnorm]\n", 4, {3, 3, 3, 3},
     2, {"scales", "biases"}, 0},
};

static void test_saved_layout(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof layout_cases / sizeof *layout_cases; i++) {
        const layout_case *t = &layout_cases[i];
        dn_net *net = build_ok(t->cfg);
        dn_layer *l = &net->layers[0];
        assert_int_equal(l->n_saved, t->n_saved);
        for (int k = 0; k < t->n_saved; k++)
            assert_int_equal(l->saved_n[k], t->saved_n[k]);
        assert_int_equal(l->n_params, t->n_params);
        for (int k = 0; k < t->n_params; k++) {
            assert_string_equal(l->params[k].name, t->param_names[k]);
            assert_int_equal(l->params[k].decay,
                             strcmp(t->param_names[k], "weights") == 0);
        }
        assert_float_equal(l->flops, t->flops, 0.5);
        dn_net_free(net);
    }
}

/* Same seed, same weights; He-normal spread; BN starts as the identity. */
static void test_init_deterministic(void **state)
{
    (void)state;
    const char *cfg = "[net]\nseed=42\nheight=8\nwidth=8\nchannels=16\n"
                      "[convolutional]\nfilters=64\nsize=3\npad=1\n"
                      "batch_normalize=1\n"
                      "[connected]\noutput=10\n";
    dn_net *a = build_ok(cfg), *b = build_ok(cfg);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < a->layers[i].n_params; k++)
            assert_memory_equal(a->layers[i].params[k].w,
                                b->layers[i].params[k].w,
                                a->layers[i].params[k].n * sizeof(float));
    dn_param *w = &a->layers[0].params[2];
    double sq = 0;
    for (long j = 0; j < w->n; j++)
        sq += (double)w->w[j] * w->w[j];
    double sd = sqrt(sq / w->n), expect = sqrt(2.0 / (16 * 9));
    assert_true(fabs(sd - expect) < 0.05 * expect); /* 9216 draws */
    for (int c = 0; c < 64; c++) {
        assert_float_equal(a->layers[0].saved[0][c], 0, 0);   /* biases */
        assert_float_equal(a->layers[0].saved[1][c], 1, 0);   /* scales */
        assert_float_equal(a->layers[0].saved[2][c], 0, 0);   /* mean */
        assert_float_equal(a->layers[0].saved[3][c], 1, 0);   /* variance */
    }
    dn_net_free(a);
    dn_net_free(b);
}

/* ------------------------------------------------------------- blas.c */

/* im2col and col2im are adjoint: <im2col(x), y> = <x, col2im(y)>; small
 * planes go through a padded copy, large ones (the last two) row by row. */
static void test_im2col_adjoint(void **state)
{
    (void)state;
    dn_rng rng;
    dn_rng_seed(&rng, 3);
    const int geoms[][7] = {/* c h w size stride pad dilation */
                            {2, 5, 6, 3, 1, 1, 1}, {3, 7, 7, 3, 2, 0, 2},
                            {1, 4, 9, 2, 3, 2, 1}, {2, 6, 5, 1, 1, 0, 1},
                            {1, 70, 66, 3, 2, 1, 2}, {2, 64, 64, 3, 1, 1, 1}};
    for (size_t t = 0; t < sizeof geoms / sizeof *geoms; t++) {
        const int *p = geoms[t];
        dn_conv_geom g;
        dn_conv_geom_set(&g, p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
        const int n = 2;
        const long nim = (long)g.c * g.h * g.w, hw = (long)g.out_h * g.out_w;
        const long rows = (long)g.c * g.size * g.size, ncol = rows * n * hw;
        float *x = malloc(n * nim * sizeof *x), *col = malloc(ncol * sizeof *col);
        float *y = malloc(ncol * sizeof *y), *xt = calloc(n * nim, sizeof *xt);
        fill_uniform(x, n * nim, &rng);
        fill_uniform(y, ncol, &rng);
        dn_im2col(x, nim, n, &g, col, n * hw);
        dn_col2im(y, n * hw, n, &g, xt, nim);
        double lhs = 0, rhs = 0;
        for (long i = 0; i < ncol; i++)
            lhs += (double)col[i] * y[i];
        for (long i = 0; i < n * nim; i++)
            rhs += (double)x[i] * xt[i];
        assert_true(fabs(lhs - rhs) <= 1e-4 * (1 + fabs(lhs)));
        free(x), free(col), free(y), free(xt);
    }
}

static void test_batch_rows_roundtrip(void **state)
{
    (void)state;
    float src[2 * 3 * 4], rows[24], back[24];
    for (int i = 0; i < 24; i++)
        src[i] = (float)i;
    dn_batch_to_rows(src, 2, 3, 4, rows);
    /* row r holds image 0's row r then image 1's row r */
    assert_float_equal(rows[4], src[12], 0);
    assert_float_equal(rows[8], src[4], 0);
    dn_rows_to_batch(rows, 2, 3, 4, back);
    assert_memory_equal(src, back, sizeof src);
}

/* ----------------------------------------------------------- cfg errors */

typedef struct error_case {
    const char *cfg;
    const char *message; /* a part of the error that must appear */
} error_case;

static const error_case error_cases[] = {
    {NET(1, 3, 5, 5) "[convolutional]\nfilters=0\n",
     "test.cfg:7: [convolutional] filters: expected an integer in [1, 65536], got \"0\""},
    {NET(1, 3, 5, 5) "[convolutional]\nfilters=4\ngroups=2\n",
     "test.cfg:8: [convolutional] groups: 2 groups do not divide the 3 input "
     "channels"},
    {NET(1, 4, 5, 5) "[convolutional]\nfilters=3\ngroups=2\n",
     "test.cfg:8: [convolutional] groups: 2 groups do not divide filters=3"},
    {NET(1, 3, 5, 5) "[convolutional]\nfilters=4\nactivation=sigmoid\n",
     "test.cfg:8: [convolutional] activation: unknown value \"sigmoid\"; valid: "
     "linear, relu, leaky, logistic, tanh, elu, selu, mish, swish, gelu"},
    {NET(1, 3, 5, 5) "[convolutional]\nfilters=4\nsize=7\n",
     "test.cfg:8: [convolutional] size: a 7x7 kernel (dilation 1) does not fit "
     "the 5x5 input with padding 0"},
    {NET(1, 3, 5, 5) "[convolutional]\nfilters=4\nsize=3\ndilation=0\n",
     "test.cfg:9: [convolutional] dilation: expected an integer in [1, 4096], got \"0\""},
    {NET(1, 3, 5, 5) "[convolutional]\nstride=2x\n",
     "test.cfg:7: [convolutional] stride: expected an integer"},
    {NET(1, 3, 5, 5) "[connected]\noutput=-3\n",
     "test.cfg:7: [connected] output: expected an integer in [1, 100000], got \"-3\""},
    {NET(1, 3, 5, 5) "[connected]\noutput=2\nactivation=soft\n",
     "test.cfg:8: [connected] activation: unknown value \"soft\"; valid: linear"},
    {NET(1, 3, 5, 5) "[connected]\nbatch_normalize=2\n",
     "test.cfg:7: [connected] batch_normalize: expected an integer"},
    {NET(1, 3, 5, 5) "conv_backend=mkl\n[convolutional]\n",
     "test.cfg:6: [net] conv_backend: unknown value \"mkl\"; valid: auto, "
     "onednn, im2col"},
};

static void test_cfg_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof *error_cases; i++) {
        const error_case *t = &error_cases[i];
        dn_error err = {{0}};
        assert_null(build(t->cfg, &err));
        assert_contains(err.msg, t->message);
        /* the same cfg from a file names the file */
        char *path = tu_write_file("test.cfg", t->cfg);
        dn_cfg *cfg;
        dn_net *net = NULL;
        dn_error ferr = {{0}};
        assert_int_equal(dn_cfg_load(path, &cfg, &ferr), 0);
        assert_int_equal(dn_net_make(cfg, NULL, &net, &ferr), -1);
        assert_null(net);
        dn_cfg_free(cfg);
        assert_contains(ferr.msg, path);
        assert_contains(ferr.msg, strstr(t->message, ":") + 1);
    }
}

/* ----------------------------------------------------------------- main */

/* A case's twin on the other convolution backend: "[net]" + its keys +
 * conv_backend=im2col + the layers. The case itself runs on the default,
 * oneDNN where the build has it. */
static gc_case im2col_twin(const gc_case *c, char *name, size_t name_size,
                           char *cfg, size_t cfg_size)
{
    const char *layers = strstr(c->cfg, "\n[") + 1;
    snprintf(name, name_size, "%s (im2col)", c->name);
    snprintf(cfg, cfg_size, "%.*sconv_backend=im2col\n%s",
             (int)(layers - c->cfg), c->cfg, layers);
    gc_case twin = *c;
    twin.name = name, twin.cfg = cfg;
    return twin;
}

int main(void)
{
    static struct CMUnitTest grad_tests[2 * N_GRAD_CASES];
    static gc_case twins[N_GRAD_CASES];
    static char names[N_GRAD_CASES][128], cfgs[N_GRAD_CASES][1024];
    size_t n_grad = 0;
    for (size_t i = 0; i < N_GRAD_CASES; i++) {
        grad_tests[n_grad++] = (struct CMUnitTest){
            .name = grad_cases[i].name,
            .test_func = test_gradient,
            .initial_state = (void *)&grad_cases[i],
        };
        if (!dn_onednn_available() ||
            !strstr(grad_cases[i].cfg, "[convolutional]"))
            continue;
        twins[i] = im2col_twin(&grad_cases[i], names[i], sizeof names[i],
                               cfgs[i], sizeof cfgs[i]);
        grad_tests[n_grad++] = (struct CMUnitTest){
            .name = twins[i].name,
            .test_func = test_gradient,
            .initial_state = &twins[i],
        };
    }
    const struct CMUnitTest unit_tests[] = {
        cmocka_unit_test(test_conv_matches_reference),
        cmocka_unit_test(test_conv_backend_key),
        cmocka_unit_test(test_conv_bn_blocked_matches_plain),
        cmocka_unit_test(test_conv_bn_blocked_sync_matches_plain),
        cmocka_unit_test(test_residual_blocked_matches_plain),
        cmocka_unit_test(test_winograd_weight_gradient_matches_im2col),
        cmocka_unit_test(test_conv_hand_computed),
        cmocka_unit_test(test_conv_output_shapes),
        cmocka_unit_test(test_batchnorm_statistics),
        cmocka_unit_test(test_batchnorm_momentum_key),
        cmocka_unit_test(test_conv_bn_inference_uses_rolling),
        cmocka_unit_test(test_saved_layout),
        cmocka_unit_test(test_init_deterministic),
        cmocka_unit_test(test_im2col_adjoint),
        cmocka_unit_test(test_batch_rows_roundtrip),
        cmocka_unit_test(test_cfg_errors),
    };
    int failed = cmocka_run_group_tests_name("conv layers", unit_tests, NULL, NULL);
    failed += _cmocka_run_group_tests("gradient checks", grad_tests, n_grad,
                                      NULL, NULL);
    return failed ? 1 : 0;
}
