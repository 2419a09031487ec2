/*
 * test_gpu_layers.c - CPU/GPU parity of every layer: darknet/src/<name>_layer.cu
 * against <name>_layer.c, forward and backward.
 *
 * A case is a cfg; the harness builds it twice (one network stays on the
 * CPU, the other moves to GPU 0), gives both the same random input,
 * parameters, statistics and one-hot truth, runs forward (training or
 * inference mode) and backward from the same output gradient (a fixed
 * random tensor, or the loss), and compares, each against its bound:
 *   forward   every layer's output, the loss, batch-norm statistics
 *   backward  dL/d(input) and every parameter's gradient
 * Errors are normwise relative errors (gpu_testutil.h); the bounds of each
 * row are in the table. fp32 throughout: every cfg sets tf32=0, and
 * tests/gpu/run.sh sets NVIDIA_TF32_OVERRIDE=0.
 *
 * Bounds: layers without products (pooling, dropout, softmax, logistic)
 * agree to rounding: 1e-6. Products and reductions sum in another order on
 * the device, and cuDNN may pick Winograd or FFT convolutions (fp32, but
 * with their own rounding): 1e-4 forward, 1e-3 for gradients, 2e-3 where
 * batch normalisation's backward subtracts nearly equal terms over few
 * values. A wrong index or a missing term shows as an error near 1.
 *
 * A second group draws convolution shapes at random (seeded): channels,
 * size, stride, padding, dilation, groups, batch norm and activation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"
#include "gpu_testutil.h"

typedef struct parity_case {
    const char *name;
    const char *cfg;
    int train;         /* forward mode */
    double tol_fwd;    /* outputs, loss, statistics */
    double tol_bwd;    /* input and parameter gradients */
} parity_case;

#define NET(b, c, h, w)                                                      \
    "[net]\nbatch=" #b "\nchannels=" #c "\nheight=" #h "\nwidth=" #w         \
    "\ntf32=0\nseed=3\n"
#define NET_FLAT(b, n) "[net]\nbatch=" #b "\ninputs=" #n "\ntf32=0\nseed=3\n"
#define CONV(f, s, st, pad, act) \
    "[convolutional]\nfilters=" #f "\nsize=" #s "\nstride=" #st "\npad=" #pad \
    "\nactivation=" #act "\n"

static const parity_case cases[] = {
    /* [convolutional] */
    {"conv_3x3_s1_bias_leaky", NET(3, 3, 8, 8) CONV(5, 3, 1, 1, leaky), 1,
     1e-4, 1e-3},
    {"conv_3x3_s2_bn_relu", NET(4, 4, 9, 9) "batch_normalize=1\n"
     CONV(6, 3, 2, 1, relu), 1, 1e-4, 2e-3},
    {"conv_bn_relu_inference", NET(2, 3, 6, 6) "[convolutional]\n"
     "batch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=relu\n", 0,
     1e-4, 1e-3},
    {"conv_1x1_direct_linear", NET(3, 6, 5, 5) CONV(4, 1, 1, 0, linear), 1,
     1e-4, 1e-3},
    {"conv_groups2_dilation2_mish", NET(2, 4, 9, 9) "[convolutional]\n"
     "filters=6\nsize=3\ngroups=2\ndilation=2\npadding=2\nactivation=mish\n",
     1, 1e-4, 1e-3},
    {"conv_5x5_s2_bn_swish", NET(3, 2, 11, 10) "[convolutional]\n"
     "batch_normalize=1\nfilters=3\nsize=5\nstride=2\npad=1\n"
     "activation=swish\n", 1, 1e-4, 2e-3},
    {"conv_depthwise_gelu", NET(2, 4, 7, 7) "[convolutional]\nfilters=4\n"
     "size=3\ngroups=4\npad=1\nactivation=gelu\n", 1, 1e-4, 1e-3},
    /* [connected] */
    {"connected_logistic", NET_FLAT(4, 13) "[connected]\noutput=7\n", 1, 1e-4,
     1e-3},
    {"connected_bn_relu", NET(5, 2, 3, 3) "[connected]\noutput=6\n"
     "batch_normalize=1\nactivation=relu\n", 1, 1e-4, 2e-3},
    {"connected_gelu_inference", NET_FLAT(3, 9) "[connected]\noutput=5\n"
     "activation=gelu\n", 0, 1e-4, 1e-3},
    /* [batchnorm] */
    {"batchnorm_train", NET(4, 3, 5, 5) "[batchnorm]\n", 1, 1e-4, 2e-3},
    {"batchnorm_inference", NET(3, 3, 4, 4) "[batchnorm]\n", 0, 1e-4, 1e-3},
    /* (leaky, not linear: through a linear conv the gradient a training
     * [batchnorm] returns sums to zero per channel, so the conv's bias
     * gradient would be rounding noise on both sides, nothing to compare) */
    {"batchnorm_after_conv", NET(3, 2, 6, 6) CONV(4, 3, 1, 1, leaky)
     "[batchnorm]\n", 1, 1e-4, 2e-3},
    /* [maxpool] */
    {"maxpool_2x2_s2", NET(2, 2, 4, 4) "[maxpool]\nsize=2\nstride=2\n", 1,
     1e-6, 1e-6},
    {"maxpool_3x3_s1_default_pad", NET(2, 3, 5, 5) "[maxpool]\nsize=3\n"
     "stride=1\n", 1, 1e-6, 1e-6},
    {"maxpool_3x3_s2_pad3_odd", NET(2, 2, 6, 5) "[maxpool]\nsize=3\n"
     "stride=2\npadding=3\n", 1, 1e-6, 1e-6},
    /* [avgpool] */
    {"avgpool_global", NET(3, 4, 5, 3) "[avgpool]\n", 1, 1e-6, 1e-6},
    /* [dropout] */
    {"dropout_train", NET(3, 2, 6, 6) "[dropout]\nprobability=0.3\n", 1, 1e-6,
     1e-6},
    {"dropout_inference", NET(2, 2, 3, 3) "[dropout]\nprobability=0.5\n", 0,
     1e-6, 1e-6},
    /* [softmax] and [logistic], as losses and inside a network */
    {"softmax_loss", NET_FLAT(4, 10) "[softmax]\n", 1, 1e-6, 1e-6},
    {"softmax_loss_groups2", NET_FLAT(3, 12) "[softmax]\ngroups=2\n", 1, 1e-6,
     1e-6},
    {"softmax_temperature_noloss", NET_FLAT(3, 8) "[softmax]\n"
     "temperature=2\nnoloss=1\n", 1, 1e-6, 1e-6},
    {"softmax_loss_inference", NET_FLAT(2, 5) "[softmax]\n", 0, 1e-6, 1e-6},
    /* [net] output_activation=sigmoid: Keras' CCE on sigmoid outputs */
    {"softmax_sigmoid_ce", NET_FLAT(4, 10) "output_activation=sigmoid\n"
     "[softmax]\n", 1, 1e-6, 1e-6},
    {"softmax_sigmoid_ce_groups2_temperature", NET_FLAT(3, 12)
     "output_activation=sigmoid\n[softmax]\ngroups=2\ntemperature=2\n", 1,
     1e-6, 1e-6},
    {"softmax_sigmoid_noloss", NET_FLAT(3, 8) "output_activation=sigmoid\n"
     "[softmax]\nnoloss=1\ntemperature=0.5\n", 1, 1e-6, 1e-6},
    {"softmax_sigmoid_ce_inference", NET_FLAT(2, 5)
     "output_activation=sigmoid\n[softmax]\n", 0, 1e-6, 1e-6},
    {"logistic_loss", NET_FLAT(4, 6) "[logistic]\n", 1, 1e-6, 1e-6},
    {"logistic_inside", NET_FLAT(3, 6) "[logistic]\nnoloss=1\n"
     "[connected]\noutput=4\nactivation=linear\n", 1, 1e-4, 1e-3},
    /* [shortcut] */
    {"shortcut_relu", NET(2, 3, 4, 4) CONV(3, 3, 1, 1, leaky)
     CONV(3, 3, 1, 1, linear) "[shortcut]\nfrom=-2\nactivation=relu\n", 1,
     1e-4, 1e-3},
    {"shortcut_gelu_alpha_beta", NET(2, 2, 4, 4) CONV(2, 1, 1, 0, tanh)
     "[shortcut]\nfrom=-1\nalpha=0.5\nbeta=2\nactivation=gelu\n", 1, 1e-4,
     1e-3},
    /* [route] */
    {"route_concat", NET(2, 2, 5, 5) CONV(3, 3, 1, 1, leaky)
     CONV(2, 1, 1, 0, linear) "[route]\nlayers=-1,-2\n" CONV(2, 3, 1, 1, elu),
     1, 1e-4, 1e-3},
    {"route_input", NET(2, 3, 4, 4) CONV(2, 3, 1, 1, selu)
     "[route]\nlayers=-1,input\n", 1, 1e-4, 1e-3},
    /* [attention] and [layernorm] */
    {"attention_2heads_positional", NET(2, 4, 3, 3) "[attention]\nheads=2\n"
     "positional=1\n", 1, 1e-4, 2e-3},
    {"attention_1head", NET(3, 6, 2, 4) "[attention]\nheads=1\n", 1, 1e-4,
     2e-3},
    {"layernorm", NET(3, 5, 3, 2) "[layernorm]\n", 1, 1e-4, 1e-3},
    {"transformer_block", NET(2, 4, 3, 3) CONV(4, 1, 1, 0, linear)
     "[layernorm]\n[attention]\nheads=2\n[shortcut]\nfrom=0\n", 1, 1e-4,
     2e-3},
    /* a small residual network with its loss, end to end */
    {"resnet_block_softmax", NET(4, 3, 8, 8) "[convolutional]\n"
     "batch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
     "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\n"
     "activation=relu\n[convolutional]\nbatch_normalize=1\nfilters=4\n"
     "size=3\npad=1\nactivation=linear\n[shortcut]\nfrom=-3\n"
     "activation=relu\n[maxpool]\nsize=2\nstride=2\n[avgpool]\n"
     "[connected]\noutput=5\nactivation=linear\n[softmax]\n", 1, 1e-4, 2e-3},
};

#define N_CASES (sizeof cases / sizeof *cases)

/* Forward and backward on net (on whichever device it is). R: the output
 * gradient when the last layer is not a loss. */
static void pass(dn_net *net, int train, const float *R)
{
    dn_error err;
    dn_layer *last = dn_net_output_layer(net);
    dn_net_forward(net, train);
    if (!train)
        dn_net_zero_deltas(net);
    if (!last->is_loss) {
        memcpy(last->delta, R, sizeof(float) * last->batch * last->outputs);
        if (net->gpu_state && dn_net_push_delta(net, net->n - 1, &err)) {
            print_error("%s\n", err.msg);
            fail();
        }
    }
    dn_net_backward(net);
    if (net->gpu_state && (dn_net_sync(net, &err) || dn_net_pull_all(net, &err))) {
        print_error("%s\n", err.msg);
        fail();
    }
}

/* Both networks after pass(): compare everything the case bounds. */
static int compare(const dn_net *cpu, const dn_net *gpu, const parity_case *c)
{
    char what[128];
    int ok = 1;
    for (int i = 0; i < cpu->n; i++) {
        const dn_layer *a = &cpu->layers[i], *b = &gpu->layers[i];
        snprintf(what, sizeof what, "%d %s output", i, a->type->name);
        ok &= gt_check(what, a->output, b->output,
                       (long)a->batch * a->outputs, c->tol_fwd);
        if (a->is_loss) {
            snprintf(what, sizeof what, "%d %s loss", i, a->type->name);
            ok &= gt_check(what, &a->cost, &b->cost, 1, c->tol_fwd);
        }
        for (int k = 0; k < a->n_saved; k++) {
            int param = 0;
            for (int p = 0; p < a->n_params; p++)
                param |= a->params[p].w == a->saved[k];
            if (param)
                continue;
            snprintf(what, sizeof what, "%d %s saved[%d] (statistics)", i,
                     a->type->name, k);
            ok &= gt_check(what, a->saved[k], b->saved[k], a->saved_n[k],
                           c->tol_fwd);
        }
        for (int p = 0; p < a->n_params; p++) {
            snprintf(what, sizeof what, "%d %s d%s", i, a->type->name,
                     a->params[p].name);
            ok &= gt_check(what, a->params[p].grad, b->params[p].grad,
                           a->params[p].n, c->tol_bwd);
        }
    }
    ok &= gt_check("d input", cpu->input_delta, gpu->input_delta,
                   (long)cpu->batch * cpu->inputs, c->tol_bwd);
    return ok;
}

static int run_case(const parity_case *c)
{
    printf("%s (%s)\n", c->name, c->train ? "training" : "inference");
    dn_net *cpu = gt_build(c->cfg, c->name), *gpu = gt_build(c->cfg, c->name);
    gt_randomize(cpu, 11);
    gt_randomize(gpu, 11);
    const long nin = (long)cpu->batch * cpu->inputs;
    cpu->input_delta = calloc(nin, sizeof(float));
    gpu->input_delta = calloc(nin, sizeof(float));
    gt_to_gpu(gpu);
    dn_layer *last = dn_net_output_layer(cpu);
    const long nout = (long)last->batch * last->outputs;
    float *R = malloc(sizeof *R * nout);
    dn_rng rng;
    dn_rng_seed(&rng, 99);
    for (long i = 0; i < nout; i++)
        R[i] = (float)(2 * dn_rng_uniform(&rng) - 1);
    pass(cpu, c->train, R);
    pass(gpu, c->train, R);
    int ok = compare(cpu, gpu, c);
    free(R);
    free(cpu->input_delta);
    cpu->input_delta = NULL;
    dn_net_free(cpu);
    float *din = gpu->input_delta;
    dn_net_free(gpu);
    free(din);
    return ok;
}

static void test_case(void **state)
{
    if (!run_case((const parity_case *)*state))
        fail_msg("GPU and CPU disagree beyond the bounds above");
}

/* ------------------------------------------------ random convolutions */

#define RANDOM_CONVS 24

static void test_random_convolutions(void **state)
{
    (void)state;
    static const char *const acts[] = {"linear", "relu", "leaky", "logistic",
                                       "tanh", "mish"};
    dn_rng rng;
    dn_rng_seed(&rng, 2024);
    int failures = 0;
    for (int t = 0; t < RANDOM_CONVS; t++) {
        const int groups = 1 + (int)(dn_rng_u64(&rng) % 3);
        const int c = groups * (1 + (int)(dn_rng_u64(&rng) % 3));
        const int filters = groups * (1 + (int)(dn_rng_u64(&rng) % 4));
        const int size = 1 + 2 * (int)(dn_rng_u64(&rng) % 3);   /* 1, 3, 5 */
        const int stride = 1 + (int)(dn_rng_u64(&rng) % 2);
        const int dilation = size > 1 ? 1 + (int)(dn_rng_u64(&rng) % 2) : 1;
        const int padding = (int)(dn_rng_u64(&rng) % (size / 2 * dilation + 1));
        const int span = dilation * (size - 1) + 1;
        const int h = span + (int)(dn_rng_u64(&rng) % 8);
        const int w = span + (int)(dn_rng_u64(&rng) % 8);
        const int batch = 1 + (int)(dn_rng_u64(&rng) % 4);
        const int bn = (int)(dn_rng_u64(&rng) % 2);
        const char *act = acts[dn_rng_u64(&rng) % 6];
        char cfg[1024], name[64];
        snprintf(cfg, sizeof cfg,
                 "[net]\nbatch=%d\nchannels=%d\nheight=%d\nwidth=%d\ntf32=0\n"
                 "[convolutional]\nfilters=%d\nsize=%d\nstride=%d\n"
                 "padding=%d\ndilation=%d\ngroups=%d\nbatch_normalize=%d\n"
                 "activation=%s\n", batch, c, h, w, filters, size, stride,
                 padding, dilation, groups, bn, act);
        snprintf(name, sizeof name, "random_conv_%d", t);
        printf("%s: %dx%dx%d batch %d -> %d filters %dx%d/%d pad %d dil %d "
               "groups %d bn %d %s\n", name, c, h, w, batch, filters, size,
               size, stride, padding, dilation, groups, bn, act);
        /* batch norm over fewer than 8 values per channel is ill-conditioned */
        parity_case pc = {name, cfg, 1, 1e-4,
                          bn && batch * h * w < 8 ? 1e-2 : 2e-3};
        failures += !run_case(&pc);
    }
    if (failures)
        fail_msg("%d random convolutions disagree", failures);
}

int main(void)
{
    if (gt_no_device("test_gpu_layers"))
        return 0;
    struct CMUnitTest tests[N_CASES + 1];
    for (size_t i = 0; i < N_CASES; i++)
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(
            test_case, (void *)&cases[i]);
    for (size_t i = 0; i < N_CASES; i++)
        tests[i].name = cases[i].name;
    tests[N_CASES] =
        (struct CMUnitTest)cmocka_unit_test(test_random_convolutions);
    int rc = cmocka_run_group_tests_name("gpu layer parity", tests, NULL, NULL);
    dn_gpu_ctx_release_all();
    return rc;
}
