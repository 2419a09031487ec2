/*
 * test_train.c - darknet/src/train.c: the training loop end to end on
 * CIFAR-format files generated here (a learnable pattern: each class is a
 * bright square at its own place).
 *  - the loss falls and validation top-1 beats chance;
 *  - an interrupted-then-resumed run ends with the same weights as an
 *    uninterrupted one;
 *  - halting on halt_loss, stopping on NaN, stopping on request;
 *  - the per-epoch CSV log;
 *  - the update hook sees every update's batch and the scheduler's rate;
 *  - -gpus in a build without GPU support is an error that says so;
 *  - bad input: classes mismatch.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "testutil.h"

#define TRAIN_N 240
#define VALID_N 60

static const char *NET =
    "[net]\nbatch=20\nsubdivisions=2\nheight=32\nwidth=32\nchannels=3\n"
    "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\n"
    "policy=cosine_restart\nrestart_interval=1\nmin_lr=0.001\n"
    "epochs=3\nseed=7\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=2\npad=1\n"
    "activation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[dropout]\nprobability=0.1\n"
    "[connected]\noutput=10\nactivation=linear\n"
    "[softmax]\n";

static char data_path[512], cfg_path[512];

static int setup(void **state)
{
    char train[512], valid[512], text[2048];
    snprintf(train, sizeof train, "%s/train.bin", tu_tmpdir());
    snprintf(valid, sizeof valid, "%s/valid.bin", tu_tmpdir());
    tu_write_cifar_pattern(train, TRAIN_N, 1);
    tu_write_cifar_pattern(valid, VALID_N, 2);
    snprintf(text, sizeof text, "classes=10\ntrain=%s\nvalid=%s\nbackup=%s/backup\n",
             train, valid, tu_tmpdir());
    snprintf(data_path, sizeof data_path, "%s", tu_write_file("t.data", text));
    snprintf(cfg_path, sizeof cfg_path, "%s", tu_write_file("tiny.cfg", NET));
    return 0;
}

/* Train with the cfg overridden as on the command line (extra: e.g.
 * "-set", "epochs=1"). */
static int train(const char *backup, const char *weights,
                 volatile sig_atomic_t *stop, dn_train_outcome *outcome,
                 dn_error *err, int nextra, const char **extra)
{
    int strict;
    dn_cfg *cfg = tu_load_cfg(cfg_path, nextra, extra, &strict, err);
    if (!cfg)
        return -1;
    FILE *quiet = fopen("/dev/null", "w");
    dn_train_args a = {.data_path = data_path, .cfg = cfg, .strict = strict,
                       .weights = weights, .backup = backup, .stop = stop,
                       .out = quiet};
    int rc = dn_train_classifier(&a, outcome, err);
    fclose(quiet);
    dn_cfg_free(cfg);
    return rc;
}

static char *backup_dir(const char *name)
{
    static char p[8][512];
    static int i;
    char *s = p[i++ % 8];
    snprintf(s, 512, "%s/%s", tu_tmpdir(), name);
    return s;
}

/* Column `col` (0-based) of the CSV's data rows, into v; returns rows. */
static int csv_column(const char *path, int col, double *v, int max)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int rows = 0;
    assert_non_null(fgets(line, sizeof line, f));
    assert_contains(line, "epoch,batches,images,mean_lr,train_loss,train_top1,"
                          "valid_top1,valid_loss,seconds");
    while (fgets(line, sizeof line, f) && rows < max) {
        char *p = line;
        for (int c = 0; c < col; c++)
            p = strchr(p, ',') + 1;
        v[rows++] = atof(p);
    }
    fclose(f);
    return rows;
}

static void test_loss_falls_and_log_is_written(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *dir = backup_dir("run");
    if (train(dir, NULL, NULL, &outcome, &err, 0, NULL)) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_int_equal(outcome, DN_TRAIN_DONE);
    char log[600];
    snprintf(log, sizeof log, "%s/tiny.log.csv", dir);
    double loss[8], valid[8], lr[8];
    assert_int_equal(csv_column(log, 4, loss, 8), 3);
    csv_column(log, 6, valid, 8);
    csv_column(log, 3, lr, 8);
    print_message("train loss per epoch: %.3f %.3f %.3f; valid top-1 %.3f\n",
                  loss[0], loss[1], loss[2], valid[2]);
    assert_true(loss[2] < loss[0]);
    assert_true(loss[0] < 2.6); /* ~ln(10) at the start */
    assert_true(valid[2] > 0.3); /* chance is 0.1 */
    /* cosine restarting every epoch: the mean rate repeats per epoch */
    assert_true(fabs(lr[0] - lr[1]) < 1e-6 && fabs(lr[1] - lr[2]) < 1e-6);
    char final[600];
    snprintf(final, sizeof final, "%s/tiny_final.weights", dir);
    struct stat st;
    assert_int_equal(stat(final, &st), 0);
}

static void read_floats(const char *path, float **out, long *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc(size);
    assert_int_equal(fread(*out, 1, size, f), size);
    fclose(f);
    *n = size / 4;
}

static void test_resumed_run_matches_uninterrupted(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *two[] = {"-set", "epochs=2"}, *one[] = {"-set", "epochs=1"};
    const char *a = backup_dir("straight"), *b = backup_dir("resumed");
    assert_int_equal(train(a, NULL, NULL, &outcome, &err, 2, two), 0);
    assert_int_equal(train(b, NULL, NULL, &outcome, &err, 2, one), 0);
    char last[600], fa[600], fb[600];
    snprintf(last, sizeof last, "%s/tiny_last.weights", b);
    if (train(b, last, NULL, &outcome, &err, 2, two)) {
        print_error("%s\n", err.msg);
        fail();
    }
    snprintf(fa, sizeof fa, "%s/tiny_final.weights", a);
    snprintf(fb, sizeof fb, "%s/tiny_final.weights", b);
    float *wa, *wb;
    long na, nb;
    read_floats(fa, &wa, &na);
    read_floats(fb, &wb, &nb);
    assert_int_equal(na, nb);
    /* header + seen identical; every float within 1e-5 relative */
    assert_memory_equal(wa, wb, 20);
    double worst = 0;
    for (long i = 5; i < na; i++) {
        double d = fabs((double)wa[i] - wb[i]) / fmax(fabs(wa[i]), 1e-3);
        if (d > worst)
            worst = d;
    }
    print_message("resumed vs uninterrupted: largest relative difference %.2e\n",
                  worst);
    assert_true(worst <= 1e-5);
    free(wa);
    free(wb);
}

/*
 * The paper's halting rule, "halt training iff T_t < T_n and loss > 4.5":
 * epochs are numbered from 1 and the check runs only in epochs after
 * halt_after_epochs = T_t. With a halt_loss every epoch exceeds, T_t = 2
 * halts at the end of epoch 3 (never 2) and T_t = 0 at the end of epoch 1.
 */
static void test_halts_after_halt_after_epochs(void **state)
{
    const struct {
        const char *after;
        int rows;
    } cases[] = {{"halt_after_epochs=2", 3}, {"halt_after_epochs=0", 1}};
    for (int i = 0; i < 2; i++) {
        dn_error err;
        dn_train_outcome outcome;
        const char *extra[] = {"-set", "halt_loss=0.0001", "-set",
                               cases[i].after, "-set", "epochs=4"};
        const char *dir = backup_dir(i ? "halt0" : "halt2");
        assert_int_equal(train(dir, NULL, NULL, &outcome, &err, 6, extra), 0);
        assert_int_equal(outcome, DN_TRAIN_HALTED);
        char path[600];
        snprintf(path, sizeof path, "%s/tiny_halt.weights", dir);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        snprintf(path, sizeof path, "%s/tiny.log.csv", dir);
        double v[8];
        assert_int_equal(csv_column(path, 0, v, 8), cases[i].rows);
        assert_true(v[cases[i].rows - 1] == cases[i].rows);
    }
}

static void test_nan_loss_stops_with_message(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *extra[] = {"-set", "learning_rate=1e30", "-set",
                           "policy=constant"};
    const char *dir = backup_dir("nan");
    assert_int_equal(train(dir, NULL, NULL, &outcome, &err, 4, extra), -1);
    assert_contains(err.msg, "loss is");
    assert_contains(err.msg, "training stopped");
    char path[600];
    snprintf(path, sizeof path, "%s/tiny_final.weights", dir);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
}

static void test_stop_request_saves_last(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    volatile sig_atomic_t stop = 1;
    const char *dir = backup_dir("stop");
    assert_int_equal(train(dir, NULL, &stop, &outcome, &err, 0, NULL), 0);
    assert_int_equal(outcome, DN_TRAIN_INTERRUPTED);
    char path[600];
    snprintf(path, sizeof path, "%s/tiny_last.weights", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
}

static void test_classes_mismatch_is_an_error(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *extra[] = {"-overlay", tu_write_file("o.cfg", "[net]\nepochs=1\n")};
    char text[1024];
    snprintf(text, sizeof text, "classes=7\ntrain=%s/train.bin\nbackup=%s/b\n",
             tu_tmpdir(), tu_tmpdir());
    char saved[512];
    snprintf(saved, sizeof saved, "%s", data_path);
    snprintf(data_path, sizeof data_path, "%s", tu_write_file("seven.data", text));
    int rc = train(backup_dir("seven"), NULL, NULL, &outcome, &err, 2, extra);
    snprintf(data_path, sizeof data_path, "%s", saved);
    assert_int_equal(rc, -1);
    assert_contains(err.msg, "seven.data");
    assert_contains(err.msg, "classes");
    assert_contains(err.msg, "10 outputs");
}

typedef struct rates {
    int n;
    long batch[64];
    double lr[64];
} rates;

static void record_rate(void *ctx, long batch, double lr, double loss)
{
    rates *r = ctx;
    (void)loss;
    if (r->n < 64) {
        r->batch[r->n] = batch;
        r->lr[r->n++] = lr;
    }
}

static void test_update_hook_sees_every_rate(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    rates seen = {0};
    FILE *quiet = fopen("/dev/null", "w");
    dn_cfg *train_cfg = tu_load_cfg(cfg_path, 0, NULL, NULL, &err);
    assert_non_null(train_cfg);
    dn_train_args a = {.data_path = data_path, .cfg = train_cfg,
                       .backup = backup_dir("hook"), .out = quiet,
                       .on_update = record_rate, .on_update_ctx = &seen};
    int rc = dn_train_classifier(&a, &outcome, &err);
    fclose(quiet);
    dn_cfg_free(train_cfg);
    if (rc) {
        print_error("%s\n", err.msg);
        fail();
    }
    /* the rates the scheduler gives at each update's clock (batch 20, 12
     * updates per epoch, 3 epochs) */
    dn_cfg *cfg;
    dn_net *net;
    if (dn_cfg_load(cfg_path, &cfg, &err) || dn_net_make(cfg, NULL, &net, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    const long bpe = TRAIN_N / 20, total = 3 * bpe;
    assert_int_equal(seen.n, total);
    for (long b = 0; b < total; b++) {
        dn_clock clock = dn_clock_at((uint64_t)b * 20, 20, bpe, total);
        assert_int_equal(seen.batch[b], b);
        assert_true(seen.lr[b] == dn_schedule_rate(net->schedule, &clock));
    }
    dn_net_free(net);
}

static void test_gpus_need_a_gpu_build(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    if (dn_gpu_count() > 0)
        skip(); /* a GPU build on a GPU machine: tests/gpu covers it */
    dn_cfg *cfg = tu_load_cfg(cfg_path, 0, NULL, NULL, &err);
    assert_non_null(cfg);
    dn_train_args a = {.data_path = data_path, .cfg = cfg,
                       .backup = backup_dir("gpus"),
                       .devices = {.n = 1, .ids = {0}}};
    assert_int_equal(dn_train_classifier(&a, &outcome, &err), -1);
    dn_cfg_free(cfg);
    assert_true(strstr(err.msg, "without GPU support") ||
                strstr(err.msg, "CUDA"));
}

static void test_unknown_override_key_is_an_error(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *extra[] = {"-set", "restart_mutl=2"};
    assert_int_equal(train(backup_dir("typo"), NULL, NULL, &outcome, &err, 2,
                           extra), -1);
    assert_contains(err.msg, "restart_mutl");
}

/* A misspelt .data key (vaild=, trian_limit=) is reported like a cfg key:
 * an error under -strict, naming the file, line and key. */
static void test_misspelt_data_key_is_reported(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *extra[] = {"-strict"};
    char text[1024], saved[512];
    snprintf(text, sizeof text, "classes=10\ntrain=%s/train.bin\n"
             "trian_limit=5\nbackup=%s/b\n", tu_tmpdir(), tu_tmpdir());
    snprintf(saved, sizeof saved, "%s", data_path);
    snprintf(data_path, sizeof data_path, "%s", tu_write_file("typo.data", text));
    int rc = train(backup_dir("datatypo"), NULL, NULL, &outcome, &err, 1, extra);
    snprintf(data_path, sizeof data_path, "%s", saved);
    assert_int_equal(rc, -1);
    assert_contains(err.msg, "typo.data:3: [data] trian_limit: unknown key");
}

#ifndef DN_TEST_PLUGIN_DIR
#define DN_TEST_PLUGIN_DIR "build/plugins"
#endif

/* A NaN that comes after a checkpoint names that checkpoint, which exists
 * and loads; one before any checkpoint says there is none (it named a
 * _last.weights that did not exist). steps x1e30 after epoch 1 (12
 * updates) makes the loss NaN in epoch 2. */
static void test_nan_names_a_checkpoint_that_exists(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *extra[] = {"-set", "policy=steps", "-set", "steps=12", "-set",
                           "scales=1e30", "-set", "epochs=3"};
    const char *dir = backup_dir("nan2");
    assert_int_equal(train(dir, NULL, NULL, &outcome, &err, 8, extra), -1);
    char want[700];
    snprintf(want, sizeof want, "the last good checkpoint is %s/tiny_last."
             "weights", dir);
    assert_contains(err.msg, "training stopped");
    assert_contains(err.msg, want);
    dn_cfg *cfg;
    dn_net *net;
    assert_int_equal(dn_cfg_load(cfg_path, &cfg, &err), 0);
    assert_int_equal(dn_net_make(cfg, NULL, &net, &err), 0);
    int with_state;
    if (dn_checkpoint_load(net, want + strlen("the last good checkpoint is "),
                           1, &with_state, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(with_state, 1);
    assert_true(net->seen == 240); /* after epoch 1 */
    dn_net_free(net);
    /* before any checkpoint */
    const char *early[] = {"-set", "learning_rate=1e30", "-set",
                           "policy=constant"};
    assert_int_equal(train(backup_dir("nan3"), NULL, NULL, &outcome, &err, 4,
                           early), -1);
    assert_contains(err.msg, "no checkpoint was saved yet");
}

/* A plugin's NaN or negative rate stops training, naming the plugin, the
 * batch and the epoch (a negative rate trained to the end). */
static void test_bad_plugin_rates_stop_training(void **state)
{
    const struct {
        const char *file, *message;
    } cases[] = {
        {"libdn_bad_nanrate.so", "policy bad_nan (plugin " DN_TEST_PLUGIN_DIR
         "/libdn_bad_nanrate.so) gives the rate nan at batch 5 (epoch 0.417)"},
        {"libdn_bad_negrate.so", "policy bad_negative (plugin "
         DN_TEST_PLUGIN_DIR "/libdn_bad_negrate.so) gives the rate -0.01 at "
         "batch 3 (epoch 0.250)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dn_error err;
        dn_train_outcome outcome;
        char plugin[600];
        snprintf(plugin, sizeof plugin, "plugin=%s/%s", DN_TEST_PLUGIN_DIR,
                 cases[i].file);
        const char *extra[] = {"-set", "policy=plugin", "-set", plugin};
        assert_int_equal(train(backup_dir("badrate"), NULL, NULL, &outcome,
                               &err, 4, extra), -1);
        assert_contains(err.msg, cases[i].message);
        assert_contains(err.msg, "training stopped; no checkpoint was saved");
    }
}

/* The CSV holds exactly the epochs of the checkpoint a run resumes from:
 * rows a kill left behind (written before their checkpoint) are dropped,
 * and a fresh run starts the file anew. */
static void test_log_holds_the_checkpoint_epochs(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *one[] = {"-set", "epochs=1"}, *two[] = {"-set", "epochs=2"};
    const char *dir = backup_dir("csv");
    char log[600], last[600];
    snprintf(log, sizeof log, "%s/tiny.log.csv", dir);
    snprintf(last, sizeof last, "%s/tiny_last.weights", dir);
    assert_int_equal(train(dir, NULL, NULL, &outcome, &err, 2, one), 0);
    FILE *f = fopen(log, "a"); /* rows of epochs never checkpointed */
    fputs("2,12,240,0.05,9,0,,,1\n3,12,240,0.05,9,0,,,1\n", f);
    fclose(f);
    if (train(dir, last, NULL, &outcome, &err, 2, two))
        fail_msg("%s", err.msg);
    double epoch[8], loss[8];
    assert_int_equal(csv_column(log, 0, epoch, 8), 2);
    csv_column(log, 4, loss, 8);
    assert_true(epoch[0] == 1 && epoch[1] == 2);
    assert_true(loss[1] < 5); /* the real row 2, not the one left behind */
    /* a fresh run into the same directory */
    assert_int_equal(train(dir, NULL, NULL, &outcome, &err, 2, one), 0);
    assert_int_equal(csv_column(log, 0, epoch, 8), 1);
}

/* A -backup path that does not fit is an error, never cut (files landed in
 * another directory). */
static void test_too_long_backup_path_is_an_error(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    char dir[5000];
    int n = snprintf(dir, sizeof dir, "%s/", tu_tmpdir());
    while (n < 4200)
        n += snprintf(dir + n, sizeof dir - n, "d123456789/");
    assert_int_equal(train(dir, NULL, NULL, &outcome, &err, 0, NULL), -1);
    assert_contains(err.msg, "path too long");
}

/* Scores that are not finite rank an image wrong: NaN compared false and
 * ranked every image first (top-1 1.0). Huge, finite weights overflow the
 * connected layer's outputs to inf, and the softmax to NaN. */
static void test_non_finite_scores_rank_wrong(void **state)
{
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    assert_int_equal(dn_cfg_load(cfg_path, &cfg, &err), 0);
    assert_int_equal(dn_net_make(cfg, NULL, &net, &err), 0);
    dn_layer *fc = &net->layers[3];
    assert_string_equal(fc->type->name, "connected");
    for (long j = 0; j < fc->params[1].n; j++)
        fc->params[1].w[j] = 3e38f;
    char path[600];
    snprintf(path, sizeof path, "%s/huge.weights", tu_tmpdir());
    assert_int_equal(dn_weights_save(net, path, &err), 0);
    dn_net_free(net);
    assert_non_null(cfg = tu_load_cfg(cfg_path, 0, NULL, NULL, &err));
    dn_eval_args a = {.data_path = data_path, .cfg = cfg, .weights = path};
    dn_eval_result r;
    int rc = dn_eval_classifier(&a, &r, &err);
    dn_cfg_free(cfg);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(r.images, VALID_N);
    assert_int_equal(r.nonfinite, VALID_N);
    assert_true(r.top1 == 0 && r.topk == 0);
}

/* A network that does not fit the data fails before its tensors are
 * allocated (channels=65536 built 5 GiB of tensors first). */
static void test_data_checked_before_the_network_is_built(void **state)
{
    dn_error err;
    dn_train_outcome outcome;
    const char *extra[] = {"-set", "channels=65536"};
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    assert_int_equal(train(backup_dir("wide"), NULL, NULL, &outcome, &err, 2,
                           extra), -1);
    getrusage(RUSAGE_SELF, &after);
    assert_contains(err.msg, "images have 3 channels but the network input "
                             "has 65536");
    /* the peak resident size grew by less than 256 MiB */
    assert_true(after.ru_maxrss - before.ru_maxrss < 256 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_falls_and_log_is_written),
        cmocka_unit_test(test_resumed_run_matches_uninterrupted),
        cmocka_unit_test(test_halts_after_halt_after_epochs),
        cmocka_unit_test(test_nan_loss_stops_with_message),
        cmocka_unit_test(test_stop_request_saves_last),
        cmocka_unit_test(test_classes_mismatch_is_an_error),
        cmocka_unit_test(test_unknown_override_key_is_an_error),
        cmocka_unit_test(test_misspelt_data_key_is_reported),
        cmocka_unit_test(test_nan_names_a_checkpoint_that_exists),
        cmocka_unit_test(test_bad_plugin_rates_stop_training),
        cmocka_unit_test(test_log_holds_the_checkpoint_epochs),
        cmocka_unit_test(test_too_long_backup_path_is_an_error),
        cmocka_unit_test(test_non_finite_scores_rank_wrong),
        cmocka_unit_test(test_data_checked_before_the_network_is_built),
        cmocka_unit_test(test_update_hook_sees_every_rate),
        cmocka_unit_test(test_gpus_need_a_gpu_build),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
