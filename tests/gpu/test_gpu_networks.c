/*
 * test_gpu_networks.c - the paper's networks (every cfg of cfg/ that
 * tests/test_networks.c trains on the CPU) on the device: one training
 * forward and backward pass on the CPU and on GPU 0 from the same random
 * weights and batch, in strict fp32 (tf32=0), must agree.
 *
 * What "agree" can mean in a deep network is measured, not assumed. Some
 * tensors are decided by rounding: the bias gradient of a linear
 * convolution whose output enters a training batch norm is zero in exact
 * arithmetic (the batch norm's input gradient sums to zero per channel),
 * and behind a batch norm over few values (batch 1, 4x4 planes) the
 * gradients of a random network swing with small changes of its inputs.
 * The fast convolution algorithms both devices may pick (oneDNN's and
 * cuDNN's Winograd, cuDNN's FFT) are accurate to about 1e-4 relative, not
 * to the last bit, and the CPU's own two convolution paths, oneDNN's and
 * im2col's, differ on such tensors by up to 0.1. So each tensor is also
 * computed by a third, CPU, network whose weights and inputs are moved by
 * a relative 1e-4, that accuracy: its distance from the CPU, the tensor's
 * spread, is what a change of that size does to the tensor. A tensor
 * passes when its normwise GPU error (gt_error) is within
 *     max(bound, 10 x spread),   bound 1e-3 forward, 1e-2 gradients,
 * so a tensor that such changes decide is not held to digits it does not
 * have, while a wrong layer (an error near 1 where the spread is small)
 * fails. Each network prints its tightest tensor (error against allowed)
 * and how many tensors are too sensitive to check at all (allowed >= 1):
 * on the emulator 10 to 50% of them for most networks, about 75% for the
 * ResNet-50s (batch 2 throughout), whose loss and output still agree to
 * 1e-6.
 * The precise parity of every layer is test_gpu_layers.c's; this is the
 * check that whole networks build, run and agree where agreement is
 * defined.
 *
 * The emulated GPU (tests/gpu/emu) runs this slowly (kernels thread by
 * thread: about 3 minutes), so tests/gpu/run.sh runs it there only with
 * DN_EMU_NETWORKS=1; on a GPU it always runs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"
#include "gpu_testutil.h"

typedef struct net_case {
    const char *cfg;
    int batch;
} net_case;

static const net_case cases[] = {
    {"cfg/resnet18-cifar.cfg", 2},   {"cfg/resnet34-cifar.cfg", 2},
    {"cfg/resnet50-cifar.cfg", 2},   {"cfg/resnet50-hybrid.cfg", 2},
    {"cfg/googlenet-hybrid.cfg", 2}, {"cfg/xception-hybrid.cfg", 2},
    {"cfg/vgg16-hybrid.cfg", 2},     {"cfg/vgg19-hybrid.cfg", 2},
    {"cfg/resnet-small-hybrid.cfg", 2},
};
#define N_CASES (sizeof cases / sizeof *cases)

#define BOUND_FWD 1e-3
#define BOUND_BWD 1e-2
#define SPREAD_FACTOR 10
#define NUDGE 1e-4

static dn_net *load(const net_case *c)
{
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    char batch[32];
    snprintf(batch, sizeof batch, "batch=%d", c->batch);
    if (dn_cfg_load(c->cfg, &cfg, &err) || dn_cfg_set(cfg, batch, &err) ||
        dn_cfg_set(cfg, "subdivisions=1", &err) ||
        dn_cfg_set(cfg, "tf32=0", &err)) {
        print_error("%s: %s\n", c->cfg, err.msg);
        fail();
    }
    if (dn_net_make(cfg, NULL, &net, &err)) {
        dn_cfg_free(cfg);
        print_error("%s: %s\n", c->cfg, err.msg);
        fail();
    }
    const long nin = (long)net->batch * net->inputs;
    net->input_delta = calloc(nin, sizeof(float));
    return net;
}

static void unload(dn_net *net)
{
    float *din = net->input_delta;
    dn_net_free(net);
    free(din);
}

/* every weight and input x -> x (1 + NUDGE u), u uniform in [-1, 1) */
static void nudge(dn_net *net)
{
    dn_rng rng;
    dn_rng_seed(&rng, 77);
    for (int i = 0; i < net->n; i++)
        for (int p = 0; p < net->layers[i].n_params; p++) {
            dn_param *q = &net->layers[i].params[p];
            for (long j = 0; j < q->n; j++)
                q->w[j] *= (float)(1 + NUDGE * (2 * dn_rng_uniform(&rng) - 1));
        }
    for (long j = 0; j < (long)net->batch * net->inputs; j++)
        net->input_data[j] *= (float)(1 + NUDGE * (2 * dn_rng_uniform(&rng) - 1));
}

/* The tensors compared, as pointers into one network. */
typedef struct tensors {
    int n;
    const char *what[512];
    const float *data[512];
    long size[512];
    int gradient[512];
} tensors;

static void collect(const dn_net *net, tensors *t)
{
    static char names[512][96];
    const dn_layer *last = &net->layers[net->n - 1];
    t->n = 0;
#define ADD(name, ptr, len, grad)                                            \
    do {                                                                     \
        assert_true(t->n < 512);                                             \
        snprintf(names[t->n], sizeof names[0], "%s", name);                  \
        t->what[t->n] = names[t->n], t->data[t->n] = (ptr);                  \
        t->size[t->n] = (len), t->gradient[t->n++] = (grad);                 \
    } while (0)
    ADD("output", last->output, (long)last->batch * last->outputs, 0);
    char what[96];
    for (int i = 0; i < net->n; i++)
        for (int p = 0; p < net->layers[i].n_params; p++) {
            const dn_param *q = &net->layers[i].params[p];
            snprintf(what, sizeof what, "%d %s d%s", i,
                     net->layers[i].type->name, q->name);
            ADD(what, q->grad, q->n, 1);
        }
    ADD("d input", net->input_delta, (long)net->batch * net->inputs, 1);
#undef ADD
}

static void pass(dn_net *net)
{
    dn_net_forward(net, 1);
    dn_net_backward(net);
}

static void test_network(void **state)
{
    const net_case *c = *state;
    dn_error err;
    dn_net *cpu = load(c), *gpu = load(c), *moved = load(c);
    gt_randomize(cpu, 5);
    gt_randomize(gpu, 5);
    gt_randomize(moved, 5);
    nudge(moved);
    gt_to_gpu(gpu);
    pass(cpu);
    pass(moved);
    pass(gpu);
    if (dn_net_sync(gpu, &err) || dn_net_pull_all(gpu, &err)) {
        print_error("%s: %s\n", c->cfg, err.msg);
        fail();
    }
    static tensors a, b, m;
    collect(cpu, &a);
    collect(gpu, &b);
    collect(moved, &m);
    double loss[3] = {dn_net_cost(cpu), dn_net_cost(gpu), dn_net_cost(moved)};
    int failed = 0, worst = 0, unchecked = 0;
    double worst_ratio = -1, worst_err = 0, worst_spread = 0;
    for (int k = 0; k < a.n; k++) {
        const double e = gt_error(a.data[k], b.data[k], a.size[k]);
        const double spread = gt_error(a.data[k], m.data[k], a.size[k]);
        const double bound = a.gradient[k] ? BOUND_BWD : BOUND_FWD;
        const double allowed = fmax(bound, SPREAD_FACTOR * spread);
        const double ratio = e / allowed;
        unchecked += allowed >= 1;
        if (!(ratio <= 1)) {
            printf("  FAIL %s: err %.2e, spread %.2e, allowed %.2e\n",
                   a.what[k], e, spread, allowed);
            failed++;
        }
        if (allowed < 1 && !(ratio <= worst_ratio))
            worst_ratio = isnan(ratio) ? INFINITY : ratio, worst = k,
            worst_err = e, worst_spread = spread;
    }
    const double loss_err = fabs(loss[1] - loss[0]) / fabs(loss[0]);
    const double loss_spread = fabs(loss[2] - loss[0]) / fabs(loss[0]);
    if (!(loss_err <= fmax(BOUND_FWD, SPREAD_FACTOR * loss_spread))) {
        printf("  FAIL loss: %.7f on the CPU, %.7f on the GPU\n", loss[0], loss[1]);
        failed++;
    }
    printf("  %-26s batch %d, %3d layers, %3d tensors (%d too sensitive to "
           "check): loss %.6f / %.6f; tightest: %s, err %.1e, spread %.1e\n",
           c->cfg, c->batch, cpu->n, a.n, unchecked, loss[0], loss[1],
           a.what[worst], worst_err, worst_spread);
    unload(cpu);
    unload(gpu);
    unload(moved);
    assert_int_equal(failed, 0);
}

int main(void)
{
    if (gt_no_device("test_gpu_networks"))
        return 0;
    struct CMUnitTest tests[N_CASES];
    for (size_t i = 0; i < N_CASES; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(
            test_network, (void *)&cases[i]);
        tests[i].name = cases[i].cfg;
    }
    int rc = cmocka_run_group_tests_name("paper networks on the GPU", tests,
                                         NULL, NULL);
    dn_gpu_ctx_release_all();
    return rc;
}
