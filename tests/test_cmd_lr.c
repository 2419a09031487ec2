/*
 * test_cmd_lr.c - darknet/src/cli/cmd_lr.c, the `darknet lr` command: CSV
 * format, the clock it builds (batches per epoch, rows: the updates a
 * training run makes), overrides and the errors that must exit non-zero
 * without writing output.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "testutil.h"

/* dn_cmd_lr(argv) with a writable copy of args (the command NULLs what it
 * consumes). args ends with NULL; args[0] is "lr". */
static int run_lr(const char *const *args)
{
    char *argv[32];
    int argc = 0;
    for (; args[argc]; argc++)
        argv[argc] = (char *)args[argc];
    argv[argc] = NULL;
    fflush(stdout);
    return dn_cmd_lr(argc, argv);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static const char *csv_path(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/out.csv", tu_tmpdir());
    unlink(p);
    return p;
}

#define STEPS_CFG "[net]\nbatch=10\nheight=8\nwidth=8\nchannels=3\n" \
                  "learning_rate=0.1\npolicy=steps\nsteps=4\nscales=.5\n"

static void test_csv_single_cfg(void **state)
{
    const char *cfg = tu_write_file("steps.cfg", STEPS_CFG);
    const char *csv = csv_path();
    const char *args[] = {"lr", cfg, "-epochs", "2", "-batches-per-epoch", "4",
                          "-csv", csv, NULL};
    assert_int_equal(run_lr(args), 0);
    assert_string_equal(slurp(csv), "batch,epoch,lr\n"
                                    "0,0,0.1\n1,0.25,0.1\n2,0.5,0.1\n3,0.75,0.1\n"
                                    "4,1,0.05\n5,1.25,0.05\n6,1.5,0.05\n"
                                    "7,1.75,0.05\n");
}

static void test_csv_several_cfgs(void **state)
{
    char a[600], b[600];
    snprintf(a, sizeof a, "%s", tu_write_file("a.cfg", STEPS_CFG));
    snprintf(b, sizeof b, "%s", tu_write_file("b,c.cfg", "[net]\nbatch=10\n"
                                              "learning_rate=0.123456789123\n"));
    const char *csv = csv_path();
    const char *args[] = {"lr", a, b, "-epochs", "1", "-batches-per-epoch", "2",
                          "-csv", csv, NULL};
    assert_int_equal(run_lr(args), 0);
    const char *out = slurp(csv);
    char want[2600];
    snprintf(want, sizeof want, "cfg,batch,epoch,lr\n%s,0,0,0.1\n%s,1,0.5,0.1\n"
             "\"%s\",0,0,0.123456789\n", a, a, b);
    if (strncmp(out, want, strlen(want)) != 0)
        fail_msg("got:\n%s\nwant prefix:\n%s", out, want);
    assert_int_equal(count_lines(out), 1 + 2 + 2);
}

/* Default clock: train size 50000 (CIFAR-10), batches per epoch
 * floor(50000 / batch); -train-size changes it. */
static void test_batches_per_epoch(void **state)
{
    const char *cfg = tu_write_file("b100.cfg", "[net]\nbatch=100\n");
    const char *csv = csv_path();
    const char *args[] = {"lr", cfg, "-epochs", "1", "-csv", csv, NULL};
    assert_int_equal(run_lr(args), 0);
    const char *out = slurp(csv);
    assert_int_equal(count_lines(out), 1 + 500); /* updates 0..499 */
    assert_non_null(strstr(out, "\n499,0.998,0.001\n"));

    const char *cfg2 = tu_write_file("b128.cfg", "[net]\nbatch=128\n");
    const char *args2[] = {"lr", cfg2, "-epochs", "1", "-train-size", "1000",
                           "-csv", csv, NULL};
    assert_int_equal(run_lr(args2), 0);
    out = slurp(csv);
    assert_int_equal(count_lines(out), 1 + 7); /* 1000/128 = 7 per epoch */
    assert_non_null(strstr(out, "\n6,0.857142857,0.001\n"));
}

/* Without -epochs the rows are the max_batches updates of a training run. */
static void test_runs_to_max_batches(void **state)
{
    const char *cfg = tu_write_file("max.cfg", "[net]\nbatch=1\nmax_batches=5\n"
                                               "policy=poly\npower=1\n"
                                               "learning_rate=1\n");
    const char *csv = csv_path();
    const char *args[] = {"lr", cfg, "-batches-per-epoch", "5", "-csv", csv, NULL};
    assert_int_equal(run_lr(args), 0);
    assert_string_equal(slurp(csv), "batch,epoch,lr\n0,0,1\n1,0.2,0.8\n"
                                    "2,0.4,0.6\n3,0.6,0.4\n4,0.8,0.2\n");
}

static void test_set_and_overlay(void **state)
{
    const char *cfg = tu_write_file("set.cfg", STEPS_CFG);
    const char *ov = tu_write_file("ov.cfg", "[net]\nlearning_rate=0.3\nsteps=2\n");
    const char *csv = csv_path();
    const char *args[] = {"lr", cfg, "-overlay", ov, "-set", "learning_rate=0.5",
                          "-epochs", "2", "-batches-per-epoch", "2", "-csv",
                          csv, NULL};
    assert_int_equal(run_lr(args), 0);
    assert_string_equal(slurp(csv), "batch,epoch,lr\n0,0,0.5\n1,0.5,0.5\n"
                                    "2,1,0.25\n3,1.5,0.25\n");
}

/* An overlay made for training (the trainer's epochs and halting keys)
 * draws its schedule without errors. */
static void test_trainer_keys_accepted(void **state)
{
    const char *cfg = tu_write_file("trainer.cfg", STEPS_CFG);
    const char *ov = tu_write_file("trainer-ov.cfg", "[net]\nepochs=60\n"
                                   "halt_loss=4.5\nhalt_after_epochs=2\n");
    const char *csv = csv_path();
    const char *args[] = {"lr", cfg, "-overlay", ov, "-strict", "-epochs", "1",
                          "-batches-per-epoch", "2", "-csv", csv, NULL};
    assert_int_equal(run_lr(args), 0);
    assert_non_null(slurp(csv));
}

/* Each of these exits non-zero and writes no CSV. */
static void test_errors(void **state)
{
    const char *good = tu_write_file("good.cfg", STEPS_CFG);
    const char *typo = tu_write_file("typo.cfg", "[net]\nbatch=1\nmax_batches=3\n"
                                                 "learnig_rate=0.1\n");
    const char *nomax = tu_write_file("nomax.cfg", "[net]\nbatch=1\n");
    const char *badpolicy = tu_write_file("badpolicy.cfg", "[net]\nbatch=1\n"
                                                           "policy=cosine\n");
    const char *csv = csv_path();
    const char *cases[][12] = {
        {"lr", NULL},
        {"lr", nomax, "-csv", csv, NULL}, /* no -epochs, no max_batches */
        {"lr", good, "-csv", csv, "-epochs", NULL}, /* option without value */
        {"lr", good, "-epochs", "1", "-set", "learnin_rate=1", "-csv", csv, NULL},
        {"lr", typo, "-strict", "-csv", csv, NULL},
        {"lr", good, "-epochs", "1", "-bogus", "-csv", csv, NULL},
        {"lr", good, "-epochs", "1", "-train-size", "10", "-batches-per-epoch",
         "2", "-csv", csv, NULL},
        {"lr", good, "-epochs", "abc", "-csv", csv, NULL},
        {"lr", good, "-epochs", "0", "-csv", csv, NULL},
        {"lr", good, "-epochs", "1", "-train-size", "0", "-csv", csv, NULL},
        {"lr", badpolicy, "-epochs", "1", "-csv", csv, NULL},
        {"lr", "no/such.cfg", "-epochs", "1", "-csv", csv, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (run_lr(cases[i]) == 0)
            fail_msg("case %zu: darknet lr succeeded", i);
        assert_int_not_equal(access(csv, F_OK), 0);
    }
    /* the typo is only a warning without -strict */
    const char *ok[] = {"lr", typo, "-csv", csv, NULL};
    assert_int_equal(run_lr(ok), 0);
}

#ifndef DN_TEST_PLUGIN_DIR
#define DN_TEST_PLUGIN_DIR "build/plugins"
#endif

/* Fuzzed and probed: each fails before any output (stdout stays empty),
 * with a message naming the problem. */
static void test_refused_before_output(void **state)
{
    const char *good = tu_write_file("good2.cfg", STEPS_CFG);
    const char *layers = tu_write_file("layers.cfg", STEPS_CFG
                                       "[convolutional]\nfilterz=4\n");
    const struct {
        const char *args[12];
        const char *message;
    } cases[] = {
        /* overflowed and wrote a CSV without end */
        {{"lr", good, "-epochs", "1e30"}, "more images than the clock counts"},
        {{"lr", good, "-set", "max_batches=9223372036854775807"},
         "more images than the clock counts"},
        /* the trainer's keys are checked, not ignored */
        {{"lr", good, "-epochs", "1", "-set", "epochs=nonsense"},
         "-set: [net] epochs: expected an integer"},
        {{"lr", good, "-epochs", "1", "-set", "halt_loss=nan"},
         "-set: [net] halt_loss: expected a number"},
        /* layer sections are checked as training checks them */
        {{"lr", layers, "-epochs", "1", "-strict"},
         "[convolutional] filterz: unknown key"},
        /* a plugin's NaN or negative rate, with the plugin and the batch */
        {{"lr", good, "-epochs", "1", "-batches-per-epoch", "10", "-set",
          "policy=plugin", "-set",
          "plugin=" DN_TEST_PLUGIN_DIR "/libdn_bad_nanrate.so"},
         "policy bad_nan (plugin " DN_TEST_PLUGIN_DIR "/libdn_bad_nanrate.so) "
         "gives the rate nan at batch 5 (epoch 0.500)"},
        {{"lr", good, "-epochs", "1", "-batches-per-epoch", "10", "-set",
          "policy=plugin", "-set",
          "plugin=" DN_TEST_PLUGIN_DIR "/libdn_bad_negrate.so"},
         "gives the rate -0.01 at batch 3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *out, *errs;
        if (tu_run_cmd(dn_cmd_lr, cases[i].args, &out, &errs) == 0)
            fail_msg("case %zu: darknet lr succeeded", i);
        assert_string_equal(out, "");
        if (!strstr(errs, cases[i].message))
            fail_msg("case %zu: stderr \"%s\" lacks \"%s\"", i, errs,
                     cases[i].message);
    }
}

/* A legal but implausible rate is warned about, once per cause, and the
 * schedule still written (the log schedule at learning_rate=1 peaks far
 * above 10). */
static void test_implausible_rate_is_warned(void **state)
{
    const char *cfg = tu_write_file("big-lr.cfg", STEPS_CFG);
    const char *args[] = {"lr", cfg, "-epochs", "1", "-batches-per-epoch", "4",
                          "-set", "learning_rate=50", NULL};
    const char *out, *errs;
    assert_int_equal(tu_run_cmd(dn_cmd_lr, args, &out, &errs), 0);
    assert_contains(out, "0,0,50\n");
    assert_contains(errs, "-set: [net] learning_rate: warning: 50 is "
                          "implausibly large for a learning rate (above 10)");
    assert_contains(errs, "policy steps gives the rate 50 at batch 0");
    const char *warning = strstr(errs, "gives the rate");
    assert_null(strstr(warning + 1, "gives the rate")); /* once */
}

static void test_png(void **state)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "[  SKIPPED ] gnuplot is not installed\n");
        skip();
    }
    const char *a = tu_write_file("pa.cfg", STEPS_CFG);
    const char *b = tu_write_file("pb.cfg", "[net]\nbatch=10\npolicy=log_restart\n"
                                            "learning_rate=0.1\nmin_lr=0.001\n"
                                            "restart_interval=1\n");
    char png[600];
    snprintf(png, sizeof png, "%s/out.png", tu_tmpdir());
    const char *args[] = {"lr", a, b, "-epochs", "3", "-batches-per-epoch",
                          "20", "-png", png, NULL};
    assert_int_equal(run_lr(args), 0);
    const char *out = slurp(png);
    assert_non_null(out);
    assert_memory_equal(out, "\x89PNG", 4);
}

/* The rate of each update of a training run (its update hook). */
typedef struct update_rates {
    int n;
    long batch[64];
    double lr[64];
} update_rates;

static void record_update(void *ctx, long batch, double lr, double loss)
{
    update_rates *u = ctx;
    (void)loss;
    if (u->n < 64) {
        u->batch[u->n] = batch;
        u->lr[u->n++] = lr;
    }
}

/* darknet lr and training derive the run's length in one place
 * (dn_train_length): on 50 images in batches of 8 (not a whole number of
 * batches: 6 per epoch) and [net] epochs=2, lr -train-size 50 prints the 12
 * updates training makes, each at the rate training used. */
static void test_rows_are_the_updates_training_makes(void **state)
{
    const char *net =
        "[net]\nbatch=8\nsubdivisions=2\nheight=32\nwidth=32\nchannels=3\n"
        "learning_rate=0.1\npolicy=cosine_restart\nrestart_interval=1\n"
        "min_lr=0.001\nepochs=2\nseed=3\n"
        "[connected]\noutput=10\nactivation=linear\n[softmax]\n";
    const char *cfg_path = tu_write_file("agree.cfg", net);
    char train[512], text[1024];
    snprintf(train, sizeof train, "%s/agree.bin", tu_tmpdir());
    tu_write_cifar_pattern(train, 50, 4);
    snprintf(text, sizeof text, "classes=10\ntrain=%s\nbackup=%s/agree\n",
             train, tu_tmpdir());
    const char *data_path = tu_write_file("agree.data", text);

    dn_error err;
    dn_cfg *cfg = tu_load_cfg(cfg_path, 0, NULL, NULL, &err);
    assert_non_null(cfg);
    update_rates trained = {0};
    FILE *quiet = fopen("/dev/null", "w");
    dn_train_args a = {.data_path = data_path, .cfg = cfg, .out = quiet,
                       .on_update = record_update, .on_update_ctx = &trained};
    dn_train_outcome outcome;
    int rc = dn_train_classifier(&a, &outcome, &err);
    fclose(quiet);
    dn_cfg_free(cfg);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(trained.n, 12);

    const char *csv = csv_path();
    const char *args[] = {"lr", cfg_path, "-train-size", "50", "-csv", csv,
                          NULL};
    assert_int_equal(run_lr(args), 0);
    char *text_csv = slurp(csv);
    assert_non_null(text_csv);
    assert_int_equal(count_lines(text_csv), 1 + trained.n);
    char *line = strchr(text_csv, '\n') + 1;
    for (int i = 0; i < trained.n; i++, line = strchr(line, '\n') + 1) {
        long batch;
        double epoch, lr;
        assert_int_equal(sscanf(line, "%ld,%lf,%lf", &batch, &epoch, &lr), 3);
        assert_int_equal(batch, trained.batch[i]);
        assert_true(fabs(epoch - batch / 6.0) < 1e-8);
        assert_true(fabs(lr - trained.lr[i]) <= 1e-8 * trained.lr[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_single_cfg),
        cmocka_unit_test(test_csv_several_cfgs),
        cmocka_unit_test(test_batches_per_epoch),
        cmocka_unit_test(test_runs_to_max_batches),
        cmocka_unit_test(test_set_and_overlay),
        cmocka_unit_test(test_trainer_keys_accepted),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_refused_before_output),
        cmocka_unit_test(test_implausible_rate_is_warned),
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_rows_are_the_updates_training_makes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
