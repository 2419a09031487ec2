/*
 * test_gpu_train.c - training on the device: darknet/src/network_gpu.c,
 * network.cu and train.c's one loop with -gpus.
 *  - three SGD updates (and three Adam updates) of a small network with
 *    batch norm, pooling, dropout, a residual add and a softmax loss, with
 *    gradient accumulation over two subdivisions, leave the same weights
 *    and batch-norm statistics (normwise relative error <= 1e-4 per
 *    tensor) and optimiser state (<= 1e-3: it is a gradient) on the GPU as
 *    on the CPU, in fp32 (tf32=0); Adam runs with eps=0.01 so that a
 *    near-zero gradient cannot turn rounding into a step of the other sign;
 *  - dn_train_classifier on the CPU and on GPU 0 calls its update hook with
 *    exactly the same batch numbers and rates (the scheduler and the clock
 *    are the loop's, whatever the device), and losses within 1e-3;
 *  - a checkpoint written on the GPU and resumed on the GPU continues as
 *    the uninterrupted run (the same rates; weights within 1e-3: cuDNN's
 *    algorithms may sum in a different order from run to run);
 *  - a NaN loss on the GPU stops training with the CPU's message, and
 *    halt_loss halts it after the first epoch, as on the CPU;
 *  - on the emulator, a step allocates nothing, copies only the batch up
 *    and the output and losses down, and waits once per forward;
 *  - with two or more devices: two replicas (NCCL all-reduce; SGD and
 *    Adam) give the one-GPU result on a network without batch norm (whose
 *    statistics are per replica by design); evaluation on two devices
 *    gives the CPU's top-1 and loss.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cuda.h"
#include "gpu_testutil.h"

/* --------------------------------------------------- three updates */

#define STEP_NET(adam)                                                       \
    "[net]\nbatch=8\nsubdivisions=2\nheight=8\nwidth=8\nchannels=3\n"        \
    "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\nadam=" #adam "\n"       \
    "eps=0.01\ntf32=0\nseed=5\n"                                             \
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\n"         \
    "activation=leaky\n"                                                     \
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\n"         \
    "activation=linear\n"                                                    \
    "[shortcut]\nfrom=-2\nactivation=relu\n"                                 \
    "[maxpool]\nsize=2\nstride=2\n"                                          \
    "[dropout]\nprobability=0.2\n"                                           \
    "[convolutional]\nfilters=6\nsize=1\nactivation=swish\n"                 \
    "[avgpool]\n"                                                            \
    "[connected]\noutput=5\nactivation=linear\n"                             \
    "[softmax]\n"

/* One update as train.c does it: every subdivision forward and backward,
 * seen advancing, then the update at rate lr. Returns the summed loss. */
static double step(dn_net *net, int s, double lr)
{
    double loss = 0;
    for (int sub = 0; sub < net->subdivisions; sub++) {
        gt_random_batch(net, 1000 + 10 * s + sub);
        dn_net_forward(net, 1);
        dn_net_backward(net);
        loss += dn_net_cost(net);
        net->seen += (uint64_t)net->batch;
    }
    dn_net_update(net, lr);
    return loss;
}

static void three_updates_match(const char *cfg, const char *name)
{
    dn_error err;
    dn_net *cpu = gt_build(cfg, name), *gpu = gt_build(cfg, name);
    gt_to_gpu(gpu);
    int ok = 1;
    for (int s = 0; s < 3; s++) {
        const double lr = 0.05 * (s + 1);
        double a = step(cpu, s, lr), b = step(gpu, s, lr);
        printf("  update %d: loss cpu %.7f gpu %.7f\n", s, a, b);
        ok &= fabs(a - b) <= 1e-4 * fabs(a);
    }
    if (dn_net_sync(gpu, &err) || dn_net_pull(gpu, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    char what[128];
    for (int i = 0; i < cpu->n; i++) {
        dn_layer *a = &cpu->layers[i], *b = &gpu->layers[i];
        for (int k = 0; k < a->n_saved; k++) {
            snprintf(what, sizeof what, "%d %s saved[%d]", i, a->type->name, k);
            ok &= gt_check(what, a->saved[k], b->saved[k], a->saved_n[k], 1e-4);
        }
        for (int p = 0; p < a->n_params; p++) {
            snprintf(what, sizeof what, "%d %s %s momentum", i, a->type->name,
                     a->params[p].name);
            ok &= gt_check(what, a->params[p].m, b->params[p].m,
                           a->params[p].n, 1e-3);
            if (cpu->adam) {
                snprintf(what, sizeof what, "%d %s %s second moment", i,
                         a->type->name, a->params[p].name);
                ok &= gt_check(what, a->params[p].v, b->params[p].v,
                               a->params[p].n, 1e-3);
            }
        }
    }
    dn_net_free(cpu);
    dn_net_free(gpu);
    if (!ok)
        fail_msg("the state after three updates differs beyond its bounds");
}

static void test_sgd_three_updates(void **state)
{
    (void)state;
    three_updates_match(STEP_NET(0), "sgd");
}

static void test_adam_three_updates(void **state)
{
    (void)state;
    three_updates_match(STEP_NET(1), "adam");
}

/* ------------------------------------- what a step moves and waits for */

/* On the emulator (tests/gpu/emu), which counts what the host asks of the
 * device: a training step after the first allocates nothing, copies up
 * only each forward's inputs and truth, copies down only the last output
 * and the per-image losses, and waits for the device once per forward
 * (the loss). On a real GPU there is nothing to count with: skipped. */
static void test_step_moves_only_batches_and_losses(void **state)
{
#ifdef DN_CUDA_EMU
    dn_net *net = gt_build(STEP_NET(0), "counts");
    gt_to_gpu(net);
    step(net, 0, 0.01); /* the first step may set things up */
    struct dn_emu_counts a, b;
    dn_emu_counts_get(&a);
    const int steps = 2;
    for (int s = 1; s <= steps; s++)
        step(net, s, 0.01);
    dn_error err;
    if (dn_net_sync(net, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    dn_emu_counts_get(&b);
    long n_loss = 0;
    for (int i = 0; i < net->n; i++)
        n_loss += net->layers[i].is_loss;
    const long forwards = (long)steps * net->subdivisions, f = sizeof(float);
    const long up = forwards * net->batch * (net->inputs + net->truths) * f;
    const long down = forwards * net->batch *
                      (net->layers[net->n - 1].outputs + n_loss) * f;
    printf("  %d steps of %d forwards: %ld kernels, %ld library calls, "
           "%ld waits, %ld bytes up, %ld down, %ld allocations\n", steps,
           net->subdivisions, b.launches - a.launches,
           b.library_calls - a.library_calls, b.host_waits - a.host_waits,
           b.h2d_bytes - a.h2d_bytes, b.d2h_bytes - a.d2h_bytes,
           b.allocations - a.allocations);
    assert_int_equal(b.allocations - a.allocations, 0);
    assert_int_equal(b.h2d_bytes - a.h2d_bytes, up);
    assert_int_equal(b.d2h_bytes - a.d2h_bytes, down);
    /* one wait per forward, and the one dn_net_sync above */
    assert_int_equal(b.host_waits - a.host_waits, forwards + 1);
    dn_net_free(net);
#else
    printf("  skipped: counting device operations needs the emulator\n");
    skip();
#endif
}

/* ------------------------------------------------ the training loop */

#define TRAIN_N 120
#define VALID_N 40

static const char *LOOP_NET =
    "[net]\nbatch=20\nsubdivisions=2\nheight=32\nwidth=32\nchannels=3\n"
    "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\n"
    "policy=cosine_restart\nrestart_interval=1\nmin_lr=0.001\nburn_in=3\n"
    "epochs=2\nseed=7\ntf32=0\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=2\npad=1\n"
    "activation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[dropout]\nprobability=0.1\n"
    "[connected]\noutput=10\nactivation=linear\n"
    "[softmax]\n";

static char data_path[512], cfg_path[512];

static int setup(void **state)
{
    (void)state;
    char train[512], valid[512], text[2048];
    snprintf(train, sizeof train, "%s/train.bin", tu_tmpdir());
    snprintf(valid, sizeof valid, "%s/valid.bin", tu_tmpdir());
    tu_write_cifar_pattern(train, TRAIN_N, 1);
    tu_write_cifar_pattern(valid, VALID_N, 2);
    snprintf(text, sizeof text, "classes=10\ntrain=%s\nvalid=%s\n"
             "backup=%s/backup\n", train, valid, tu_tmpdir());
    snprintf(data_path, sizeof data_path, "%s", tu_write_file("t.data", text));
    snprintf(cfg_path, sizeof cfg_path, "%s", tu_write_file("loop.cfg",
                                                             LOOP_NET));
    return 0;
}

#define MAX_UPDATES 64

typedef struct update_log {
    int n;
    long batch[MAX_UPDATES];
    double lr[MAX_UPDATES], loss[MAX_UPDATES];
} update_log;

static void on_update(void *ctx, long batch, double lr, double loss)
{
    update_log *u = ctx;
    if (u->n < MAX_UPDATES) {
        u->batch[u->n] = batch;
        u->lr[u->n] = lr;
        u->loss[u->n++] = loss;
    }
}

static dn_train_outcome last_outcome; /* of the last train() */

static int train(const char *backup, const char *weights, int gpus,
                 update_log *log, dn_error *err, int nextra,
                 const char **extra)
{
    int strict;
    dn_cfg *cfg = tu_load_cfg(cfg_path, nextra, extra, &strict, err);
    if (!cfg)
        return -1;
    FILE *quiet = fopen("/dev/null", "w");
    dn_train_args a = {.data_path = data_path, .cfg = cfg, .strict = strict,
                       .weights = weights, .backup = backup, .out = quiet,
                       .on_update = on_update, .on_update_ctx = log};
    a.devices.n = gpus;
    for (int i = 0; i < gpus; i++)
        a.devices.ids[i] = i;
    int rc = dn_train_classifier(&a, &last_outcome, err);
    fclose(quiet);
    dn_cfg_free(cfg);
    return rc;
}

static char *dir_of(const char *name)
{
    static char p[8][512];
    static int i;
    char *s = p[i++ % 8];
    snprintf(s, 512, "%s/%s", tu_tmpdir(), name);
    return s;
}

static void test_same_rates_on_cpu_and_gpu(void **state)
{
    (void)state;
    dn_error err;
    update_log cpu = {0}, gpu = {0};
    if (train(dir_of("cpu"), NULL, 0, &cpu, &err, 0, NULL) ||
        train(dir_of("gpu"), NULL, 1, &gpu, &err, 0, NULL)) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_int_equal(cpu.n, gpu.n);
    assert_true(cpu.n == 2 * (TRAIN_N / 20)); /* 2 epochs of 6 updates */
    for (int i = 0; i < cpu.n; i++) {
        printf("  update %2ld: lr cpu %.9g gpu %.9g  loss cpu %.6f gpu %.6f\n",
               cpu.batch[i], cpu.lr[i], gpu.lr[i], cpu.loss[i], gpu.loss[i]);
        assert_int_equal(cpu.batch[i], gpu.batch[i]);
        assert_true(cpu.lr[i] == gpu.lr[i]); /* exactly: one scheduler */
        assert_true(fabs(cpu.loss[i] - gpu.loss[i]) <= 1e-3 * fabs(cpu.loss[i]));
    }
}

static dn_net *load(const char *weights)
{
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    if (dn_cfg_load(cfg_path, &cfg, &err) || dn_net_make(cfg, NULL, &net, &err) ||
        dn_weights_load(net, weights, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    return net;
}

static void test_resume_on_gpu_continues(void **state)
{
    (void)state;
    dn_error err;
    update_log whole = {0}, first = {0}, rest = {0};
    const char *one_epoch[] = {"-set", "epochs=1"};
    char weights[600], final_whole[600], final_resumed[600];
    if (train(dir_of("whole"), NULL, 1, &whole, &err, 0, NULL) ||
        train(dir_of("parts"), NULL, 1, &first, &err, 2, one_epoch)) {
        print_error("%s\n", err.msg);
        fail();
    }
    snprintf(weights, sizeof weights, "%s/loop_last.weights", dir_of("parts"));
    if (train(dir_of("parts"), weights, 1, &rest, &err, 0, NULL)) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_int_equal(first.n + rest.n, whole.n);
    for (int i = 0; i < rest.n; i++)
        assert_true(rest.lr[i] == whole.lr[first.n + i]);
    snprintf(final_whole, sizeof final_whole, "%s/loop_final.weights",
             dir_of("whole"));
    snprintf(final_resumed, sizeof final_resumed, "%s/loop_final.weights",
             dir_of("parts"));
    dn_net *a = load(final_whole), *b = load(final_resumed);
    int ok = 1;
    char what[96];
    for (int i = 0; i < a->n; i++)
        for (int k = 0; k < a->layers[i].n_saved; k++) {
            snprintf(what, sizeof what, "%d %s saved[%d]", i,
                     a->layers[i].type->name, k);
            ok &= gt_check(what, a->layers[i].saved[k], b->layers[i].saved[k],
                           a->layers[i].saved_n[k], 1e-3);
        }
    dn_net_free(a);
    dn_net_free(b);
    assert_true(ok);
}

static void test_nan_loss_stops_on_gpu(void **state)
{
    (void)state;
    dn_error err;
    update_log log = {0};
    const char *huge[] = {"-set", "learning_rate=1e30", "-set",
                          "policy=constant", "-set", "burn_in=0"};
    assert_int_equal(train(dir_of("nan"), NULL, 1, &log, &err, 6, huge), -1);
    assert_contains(err.msg, "loss is");
    assert_contains(err.msg, "training stopped");
}

/* halt_loss on the GPU: as on the CPU (tests/test_train.c), training
 * stops after the first epoch, with <cfg>_halt.weights */
static void test_halts_on_gpu(void **state)
{
    (void)state;
    dn_error err;
    update_log log = {0};
    /* halt_after_epochs=0: the rule may fire at the end of epoch 1 */
    const char *halt[] = {"-set", "halt_loss=0.0001", "-set",
                          "halt_after_epochs=0"};
    if (train(dir_of("halt"), NULL, 1, &log, &err, 4, halt)) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_int_equal(last_outcome, DN_TRAIN_HALTED);
    assert_int_equal(log.n, TRAIN_N / 20); /* one epoch of updates */
    char path[600];
    struct stat st;
    snprintf(path, sizeof path, "%s/loop_halt.weights", dir_of("halt"));
    assert_int_equal(stat(path, &st), 0);
}

/* ---------------------------------------------------- several devices */

#define NO_BN_NET(adam)                                                      \
    "[net]\nbatch=8\nsubdivisions=1\nheight=8\nwidth=8\nchannels=3\n"        \
    "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\ntf32=0\nseed=9\n"       \
    "adam=" #adam "\neps=0.01\n"                                              \
    "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"          \
    "[dropout]\nprobability=0.25\n"                                          \
    "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=relu\n" \
    "[avgpool]\n[connected]\noutput=5\nactivation=linear\n[softmax]\n"

static void two_gpus_match_one(const char *cfg)
{
    int count = 0;
    cudaGetDeviceCount(&count);
    if (count < 2) {
        printf("  skipped: %d CUDA device(s); data parallelism needs two\n",
               count);
        return;
    }
    dn_error err;
    dn_net *one = gt_build(cfg, "one"), *two = gt_build(cfg, "two");
    dn_devices d2 = {.n = 2, .ids = {0, 1}};
    gt_to_gpu(one);
    if (dn_net_use_devices(two, &d2, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    for (int s = 0; s < 3; s++) {
        double a = step(one, s, 0.05), b = step(two, s, 0.05);
        printf("  update %d: loss 1 GPU %.7f, 2 GPUs %.7f\n", s, a, b);
        assert_true(fabs(a - b) <= 1e-4 * fabs(a));
    }
    if (dn_net_pull(one, &err) || dn_net_pull(two, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    int ok = 1;
    for (int i = 0; i < one->n; i++)
        for (int k = 0; k < one->layers[i].n_saved; k++)
            ok &= gt_check(one->layers[i].type->name, one->layers[i].saved[k],
                           two->layers[i].saved[k], one->layers[i].saved_n[k],
                           1e-4);
    dn_net_free(one);
    dn_net_free(two);
    assert_true(ok);
}

/* dn_eval_classifier of one weights file (random weights and batch-norm
 * statistics) on the CPU, on GPU 0 and, with two devices, on both */
static void test_evaluation_matches_cpu(void **state)
{
    (void)state;
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    char weights[600];
    snprintf(weights, sizeof weights, "%s/eval.weights", tu_tmpdir());
    if (dn_cfg_load(cfg_path, &cfg, &err) || dn_net_make(cfg, NULL, &net, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    gt_randomize(net, 21);
    if (dn_weights_save(net, weights, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    dn_net_free(net);
    int count = 0;
    cudaGetDeviceCount(&count);
    const dn_devices devices[3] = {{.n = 0}, {.n = 1, .ids = {0}},
                                   {.n = 2, .ids = {0, 1}}};
    dn_eval_result r[3];
    if (!(cfg = tu_load_cfg(cfg_path, 0, NULL, NULL, &err)))
        fail_msg("%s", err.msg);
    for (int d = 0; d < (count >= 2 ? 3 : 2); d++) {
        dn_eval_args a = {.data_path = data_path, .cfg = cfg,
                          .weights = weights, .devices = devices[d]};
        if (dn_eval_classifier(&a, &r[d], &err)) {
            print_error("%s\n", err.msg);
            fail();
        }
        printf("  %s: %ld images, top-1 %.4f, loss %.6f\n",
               d == 0 ? "CPU   " : d == 1 ? "1 GPU " : "2 GPUs", r[d].images,
               r[d].top1, r[d].loss);
        assert_int_equal(r[d].images, r[0].images);
        assert_true(r[d].top1 == r[0].top1);
        assert_true(fabs(r[d].loss - r[0].loss) <= 1e-4 * fabs(r[0].loss));
    }
    dn_cfg_free(cfg);
}

static void test_two_gpus_match_one_sgd(void **state)
{
    (void)state;
    two_gpus_match_one(NO_BN_NET(0));
}

/* Adam's second moments start on every replica from the front's */
static void test_two_gpus_match_one_adam(void **state)
{
    (void)state;
    two_gpus_match_one(NO_BN_NET(1));
}

int main(void)
{
    if (gt_no_device("test_gpu_train"))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_three_updates),
        cmocka_unit_test(test_adam_three_updates),
        cmocka_unit_test(test_step_moves_only_batches_and_losses),
        cmocka_unit_test(test_same_rates_on_cpu_and_gpu),
        cmocka_unit_test(test_resume_on_gpu_continues),
        cmocka_unit_test(test_nan_loss_stops_on_gpu),
        cmocka_unit_test(test_halts_on_gpu),
        cmocka_unit_test(test_two_gpus_match_one_sgd),
        cmocka_unit_test(test_two_gpus_match_one_adam),
        cmocka_unit_test(test_evaluation_matches_cpu),
    };
    int rc = cmocka_run_group_tests_name("gpu training", tests, setup, NULL);
    dn_gpu_ctx_release_all();
    return rc;
}
