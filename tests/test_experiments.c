/*
 * test_experiments.c - the experiment scripts (experiments/run,
 * experiments/plot) and the scheduler overlays they apply.
 *
 *   plot   a fake results tree of two schedulers x two seeds (one run
 *          halted, one epoch logged twice as a resumed run does) and a
 *          single-seed tree: summary.md's means and standard deviations
 *          against values worked by hand, and the PNGs exist
 *   run    --seed puts the run in <out>/exp<N>/<net>/<sched>/seed<K>/ and
 *          sets [net] seed; log-reference is a scheduler name; bad --seed
 *          values are refused (all --dry-run: nothing trains)
 *   matrix --slurm writes a job array whose task i, run by hand with
 *          SLURM_ARRAY_TASK_ID=i, trains cell i with experiments/run;
 *          --jobs 2 trains two cells at once (tiny runs on IDX data)
 *   overlays  experiments/schedulers/log-reference.cfg is log.cfg with
 *          log_form=reference and without init_decay_epochs (the author's
 *          code has no initial decay)
 *
 * Run from the repository root (as make test does). The plot tests skip
 * without gnuplot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

static void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0777);
            *p = '/';
        }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        fail_msg("cannot create %s", path);
}

/* Write text to dir/name, creating dir. */
static void put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    mkdirs(dir);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The whole of a file, or NULL; free() it. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, out);
    fclose(out);
    fclose(f);
    return buf;
}

/* Runs a shell command; returns its exit status and its stdout and stderr
 * in *output (free() it). */
static int run(const char *cmd, char **output)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        fwrite(chunk, 1, n, out);
    fclose(out);
    int status = pclose(p);
    *output = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int have_gnuplot(void)
{
    return system("command -v gnuplot > /dev/null 2>&1") == 0;
}

static void assert_png(const char *path)
{
    char *png = slurp(path);
    if (!png)
        fail_msg("%s was not written", path);
    assert_memory_equal(png, "\x89PNG", 4);
    free(png);
}

#define HEADER "epoch,batches,images,mean_lr,train_loss,train_top1,valid_top1," \
               "valid_loss,seconds\n"

/* One run directory as experiments/run leaves it. */
static void fake_run(const char *dir, const char *status, const char *log)
{
    put(dir, "log.csv", log);
    put(dir, "status", status);
    put(dir, "seconds", "12\n");
    put(dir, "args", "net=tiny sched=x exp=1 epochs=3\n");
    put(dir, "lr.csv", "batch,epoch,lr\n0,0,0.1\n1,0.5,0.05\n2,1,0.1\n"
                       "3,1.5,0.05\n4,2,0.1\n5,2.5,0.05\n");
}

/* ------------------------------------------------------------------- plot */

/*
 * cosine: seed1 final top-1 0.80, best 0.80, loss 1.0 (epoch 2 logged
 * twice: the second row counts); seed2 final 0.82, best 0.85, loss 1.2.
 *   final top-1 mean 0.81, sample std sqrt(2 * 0.01^2 / 1) = 0.014142
 *   best        mean 0.825, std 0.05 / sqrt(2) = 0.035355
 *   final loss  mean 1.1,   std 0.2 / sqrt(2)  = 0.141421
 * log: seed1 done after 3 epochs (top-1 0.9, loss 0.9), seed2 halted
 * after 2 (top-1 0.1, loss 4.8).
 *   final = best top-1 mean 0.5, std 0.8 / sqrt(2) = 0.565685
 *   final loss mean 2.85, std 3.9 / sqrt(2) = 2.757716
 */
static void test_plot_summarises_seeds(void **state)
{
    if (!have_gnuplot())
        skip();
    char exp[600], d[700], cmd[1200], path[800], *out;
    snprintf(exp, sizeof exp, "%s/seeds/exp1", tu_tmpdir());
    snprintf(d, sizeof d, "%s/tiny/cosine/seed1", exp);
    fake_run(d, "done\n", HEADER
             "1,2,64,0.1,2.0,0.3,0.5,2.1,1\n"
             "2,2,64,0.1,9.9,0.3,0.1,2.1,1\n" /* replaced by the resume */
             "2,2,64,0.1,1.5,0.5,0.7,1.6,1\n"
             "3,2,64,0.1,1.0,0.7,0.8,1.1,1\n");
    snprintf(d, sizeof d, "%s/tiny/cosine/seed2", exp);
    fake_run(d, "done\n", HEADER
             "1,2,64,0.1,2.2,0.3,0.6,2.1,1\n"
             "2,2,64,0.1,1.7,0.5,0.85,1.6,1\n"
             "3,2,64,0.1,1.2,0.7,0.82,1.1,1\n");
    snprintf(d, sizeof d, "%s/tiny/log/seed1", exp);
    fake_run(d, "done\n", HEADER
             "1,2,64,0.1,2.5,0.3,0.4,2.1,1\n"
             "2,2,64,0.1,1.8,0.5,0.6,1.6,1\n"
             "3,2,64,0.1,0.9,0.7,0.9,1.1,1\n");
    snprintf(d, sizeof d, "%s/tiny/log/seed2", exp);
    fake_run(d, "halted\n", HEADER
             "1,2,64,0.1,5.0,0.1,0.1,5.1,1\n"
             "2,2,64,0.1,4.8,0.1,0.1,5.1,1\n");
    snprintf(cmd, sizeof cmd, "experiments/plot '%s'", exp);
    if (run(cmd, &out) != 0)
        fail_msg("%s failed:\n%s", cmd, out);
    free(out);
    snprintf(path, sizeof path, "%s/summary.md", exp);
    char *md = slurp(path);
    assert_non_null(md);
    assert_contains(md, "| cosine | 2 | 2 done | 3 | 0.8100 ± 0.0141 | "
                        "0.8250 ± 0.0354 | 1.1000 ± 0.1414 | no |");
    assert_contains(md, "| log | 2 | 1 done, 1 halted | 2..3 | 0.5000 ± 0.5657 | "
                        "0.5000 ± 0.5657 | 2.8500 ± 2.7577 | yes, 1 of 2 |");
    /* per run: the resumed epoch's last row, the seed directory */
    assert_contains(md, "| tiny | cosine | seed1 | done | 3 | 1.0000 | "
                        "0.8000 (epoch 3) | 0.8000 |");
    assert_contains(md, "| tiny | log | seed2 | halted | 2 | 4.8000 |");
    free(md);
    static const char *const pngs[] = {"loss.png", "top1.png", "lr.png"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/tiny/%s", exp, pngs[i]);
        assert_png(path);
    }
}

/* A results root holding exp<N>/ directories, and runs without seed directories (the
 * layout before --seed): one seed per scheduler, no standard deviation. */
static void test_plot_single_seed_layout_and_root(void **state)
{
    if (!have_gnuplot())
        skip();
    char root[600], d[700], cmd[1200], path[800], *out;
    snprintf(root, sizeof root, "%s/single", tu_tmpdir());
    snprintf(d, sizeof d, "%s/exp2/tiny/none", root);
    fake_run(d, "done\n", HEADER "1,2,64,0.001,2.0,0.3,0.5,2.1,1\n"
                                 "2,2,64,0.001,1.25,0.5,0.625,1.6,1\n");
    snprintf(d, sizeof d, "%s/exp2/tiny/step", root);
    fake_run(d, "done\n", HEADER "1,2,64,0.001,2.0,0.3,0.5,2.1,1\n"
                                 "2,2,64,0.0001,1.5,0.5,0.75,1.6,1\n");
    snprintf(cmd, sizeof cmd, "experiments/plot --band std '%s'", root);
    if (run(cmd, &out) != 0)
        fail_msg("%s failed:\n%s", cmd, out);
    free(out);
    snprintf(path, sizeof path, "%s/exp2/summary.md", root);
    char *md = slurp(path);
    assert_non_null(md);
    assert_contains(md, "| none | 1 | 1 done | 2 | 0.6250 | 0.6250 | 1.2500 | no |");
    assert_contains(md, "| step | 1 | 1 done | 2 | 0.7500 | 0.7500 | 1.5000 | no |");
    assert_contains(md, "| tiny | none | - | done | 2 |");
    assert_contains(md, "mean ± one standard deviation");
    free(md);
    snprintf(path, sizeof path, "%s/exp2/tiny/loss.png", root);
    assert_png(path);
}

static void test_plot_rejects_bad_options(void **state)
{
    char *out;
    assert_int_not_equal(run("experiments/plot --band wide /nonexistent", &out), 0);
    assert_contains(out, "--band: expected minmax or std");
    free(out);
    assert_int_not_equal(run("experiments/plot /nonexistent/dir", &out), 0);
    assert_contains(out, "no directory /nonexistent/dir");
    free(out);
}

/* -------------------------------------------------------------------- run */

static char data_file[600], idx_data_file[600];

static void write_be32(FILE *f, unsigned v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    assert_int_equal(fwrite(b, 4, 1, f), 1);
}

/* Fashion-MNIST's format: IDX images [n, 28, 28] (a bright bar whose place
 * is the label, on noise) and labels [n], uncompressed. */
static void write_idx(const char *images, const char *labels, int n)
{
    FILE *f = fopen(images, "wb");
    assert_non_null(f);
    write_be32(f, 0x803), write_be32(f, n), write_be32(f, 28), write_be32(f, 28);
    dn_rng r;
    dn_rng_seed(&r, 3);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
                fputc(y / 3 == i % 10 ? 250 : (int)(dn_rng_u64(&r) % 60), f);
    fclose(f);
    f = fopen(labels, "wb");
    assert_non_null(f);
    write_be32(f, 0x801), write_be32(f, n);
    for (int i = 0; i < n; i++)
        fputc(i % 10, f);
    fclose(f);
}

static int setup_data(void **state)
{
    char bin[600], img[600], lab[600], text[1400];
    snprintf(bin, sizeof bin, "%s/train.bin", tu_tmpdir());
    tu_write_cifar_pattern(bin, 256, 5);
    snprintf(text, sizeof text, "classes=10\ntrain=%s\nvalid=%s\n", bin, bin);
    snprintf(data_file, sizeof data_file, "%s", tu_write_file("tiny.data", text));
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", tu_tmpdir());
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", tu_tmpdir());
    write_idx(img, lab, 256);
    snprintf(text, sizeof text, "classes=10\ntrain=%s\nvalid=%s\n", img, img);
    snprintf(idx_data_file, sizeof idx_data_file, "%s",
             tu_write_file("tiny-idx.data", text));
    return 0;
}

/* Both experiments' overlays train as experiments/run applies them (with
 * darknet lr drawing the schedule from the same overlays): one short epoch
 * of each protocol's network on IDX data, 28x28 grey (experiment 2's
 * network pads it to 32x32 and copies it to three channels). */
static void test_run_trains_both_experiments(void **state)
{
    static const struct {
        const char *net, *sched;
        int exp;
    } runs[] = {
        {"resnet-small", "log", 1},
        {"resnet-small-hybrid", "log-reference", 2},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char cmd[1600], path[1200], *out;
        snprintf(cmd, sizeof cmd, "experiments/run %s %s --exp %d --seed 3 "
                 "--epochs 1 --subset 128 --valid-subset 64 --every 100 "
                 "--data '%s' --out %s/train", runs[i].net, runs[i].sched,
                 runs[i].exp, idx_data_file, tu_tmpdir());
        if (run(cmd, &out) != 0)
            fail_msg("%s failed:\n%s", cmd, out);
        free(out);
        snprintf(path, sizeof path, "%s/train/exp%d/%s/%s/seed3/status",
                 tu_tmpdir(), runs[i].exp, runs[i].net, runs[i].sched);
        char *status = slurp(path);
        assert_non_null(status);
        assert_string_equal(status, "done\n");
        free(status);
        strcpy(strrchr(path, '/'), "/lr.csv");
        char *lr = slurp(path);
        assert_non_null(lr);
        assert_contains(lr, "batch,epoch,lr\n0,0,");
        free(lr);
        /* experiment 1's output layer is Keras' sigmoid + CCE */
        strcpy(strrchr(path, '/'), "/train.log");
        char *log = slurp(path);
        assert_non_null(log);
        assert_int_equal(strstr(log, "softmax        sigmoid") != NULL,
                         runs[i].exp == 1);
        free(log);
        /* the runner keeps the checkpoints of <out> in backup/<out>/ */
        snprintf(cmd, sizeof cmd, "rm -rf 'backup%s'; rmdir backup/tmp backup "
                 "2> /dev/null; true", tu_tmpdir());
        assert_int_equal(system(cmd), 0);
    }
}

/* Cell status of a matrix run under root: "done\n" when it completed. */
static void assert_run_done(const char *root, const char *cell)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/status", root, cell);
    char *status = slurp(path);
    if (!status || strcmp(status, "done\n") != 0)
        fail_msg("%s: %s", path, status ? status : "missing");
    free(status);
}

/* --slurm writes a job array of one task per cell and stops; task i, run
 * by hand as Slurm would (SLURM_ARRAY_TASK_ID=i), trains cell i with
 * experiments/run, resumably; a task number outside the array is refused. */
static void test_matrix_slurm_task_runs_its_cell(void **state)
{
    char cmd[1600], path[1200], *out;
    snprintf(cmd, sizeof cmd, "experiments/matrix 1 resnet-small 'log none' "
             "--seeds 3,4 --slurm --epochs 1 --subset 64 --valid-subset 32 "
             "--every 100 --data '%s' --out %s/slurm", idx_data_file, tu_tmpdir());
    if (run(cmd, &out) != 0)
        fail_msg("%s failed:\n%s", cmd, out);
    assert_contains(out, "(4 tasks)");
    free(out);
    snprintf(path, sizeof path, "%s/slurm/exp1/slurm.sh", tu_tmpdir());
    char *script = slurp(path);
    assert_non_null(script);
    assert_contains(script, "#SBATCH --array=0-3\n");
    free(script);
    /* nothing trained yet */
    snprintf(cmd, sizeof cmd, "%s/slurm/exp1/resnet-small", tu_tmpdir());
    assert_int_equal(access(cmd, F_OK), -1);
    /* task 1 is cell 1: log, seed 4 (cells run NET x SCHED x seed) */
    snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=1 %s", path);
    if (run(cmd, &out) != 0)
        fail_msg("%s failed:\n%s", cmd, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/slurm/exp1", tu_tmpdir());
    assert_run_done(cmd, "resnet-small/log/seed4");
    snprintf(path, sizeof path, "%s/slurm/exp1/resnet-small/log/seed3",
             tu_tmpdir());
    assert_int_equal(access(path, F_OK), -1);
    /* again (a requeued task): the completed run is skipped */
    snprintf(path, sizeof path, "SLURM_ARRAY_TASK_ID=1 %s/slurm/exp1/slurm.sh",
             tu_tmpdir());
    if (run(path, &out) != 0)
        fail_msg("%s failed:\n%s", path, out);
    free(out);
    snprintf(path, sizeof path, "SLURM_ARRAY_TASK_ID=4 %s/slurm/exp1/slurm.sh",
             tu_tmpdir());
    assert_int_not_equal(run(path, &out), 0);
    assert_contains(out, "task 4: no such cell (0..3)");
    free(out);
    snprintf(path, sizeof path, "%s/slurm/exp1/slurm.sh", tu_tmpdir());
    assert_int_not_equal(run(path, &out), 0);
    assert_contains(out, "SLURM_ARRAY_TASK_ID");
    free(out);
}

/* --jobs 2 trains two cells at once, each logging to its own file, then
 * plots; bad --jobs values and --jobs with --slurm are refused. */
static void test_matrix_jobs_runs_cells_at_once(void **state)
{
    char cmd[1600], dir[1200], *out;
    snprintf(cmd, sizeof cmd, "experiments/matrix 2 resnet-small-hybrid "
             "'none log-reference' --jobs 2 --epochs 1 --subset 64 "
             "--valid-subset 32 --every 100 --data '%s' --out %s/jobs",
             idx_data_file, tu_tmpdir());
    if (run(cmd, &out) != 0)
        fail_msg("%s failed:\n%s", cmd, out);
    assert_contains(out, "=== done: resnet-small-hybrid-none");
    assert_contains(out, "=== done: resnet-small-hybrid-log-reference");
    free(out);
    snprintf(dir, sizeof dir, "%s/jobs/exp2", tu_tmpdir());
    assert_run_done(dir, "resnet-small-hybrid/none");
    assert_run_done(dir, "resnet-small-hybrid/log-reference");
    snprintf(cmd, sizeof cmd, "%s/logs/resnet-small-hybrid-none.log", dir);
    assert_int_equal(access(cmd, R_OK), 0);
    static const char *const bad[] = {"--jobs 0", "--jobs x", "--jobs 2 --slurm",
                                      "--submit"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "experiments/matrix 2 resnet-small-hybrid none "
                 "%s --out %s/bad", bad[i], tu_tmpdir());
        if (run(cmd, &out) == 0)
            fail_msg("%s was accepted:\n%s", cmd, out);
        assert_contains(out, "experiments/matrix: ");
        free(out);
    }
    snprintf(cmd, sizeof cmd, "rm -rf 'backup%s'; rmdir backup/tmp backup "
             "2> /dev/null; true", tu_tmpdir());
    assert_int_equal(system(cmd), 0);
}

static void test_run_seed_goes_to_its_directory(void **state)
{
    char cmd[1400], *out;
    snprintf(cmd, sizeof cmd, "experiments/run resnet-small-hybrid log-reference "
             "--exp 2 --seed 7 --epochs 2 --data '%s' --out %s/r --dry-run",
             data_file, tu_tmpdir());
    if (run(cmd, &out) != 0)
        fail_msg("%s failed:\n%s", cmd, out);
    assert_contains(out, "-overlay experiments/schedulers/log-reference.cfg");
    assert_contains(out, "-overlay experiments/exp2-restart.cfg");
    assert_contains(out, "-set seed=7");
    assert_contains(out, "/exp2/resnet-small-hybrid/log-reference/seed7 ");
    free(out);
    /* without --seed: no seed directory, the cfg's seed */
    snprintf(cmd, sizeof cmd, "experiments/run resnet-small-hybrid none --exp 2 "
             "--epochs 2 --data '%s' --out %s/r --dry-run", data_file, tu_tmpdir());
    if (run(cmd, &out) != 0)
        fail_msg("%s failed:\n%s", cmd, out);
    assert_null(strstr(out, "seed="));
    assert_null(strstr(out, "/seed"));
    assert_contains(out, "/exp2/resnet-small-hybrid/none ");
    free(out);
}

static void test_run_rejects_bad_seeds(void **state)
{
    static const struct {
        const char *args, *message;
    } bad[] = {
        {"--seed x", "--seed: expected an integer >= 0, got \"x\""},
        {"--seed -1", "--seed: expected an integer >= 0"},
        {"--seed 2 --set seed=3", "--seed and --set seed= contradict"},
        {"--seed", "--seed needs a value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char cmd[1400], *out;
        snprintf(cmd, sizeof cmd, "experiments/run resnet-small log --data '%s' "
                 "--dry-run %s", data_file, bad[i].args);
        assert_int_not_equal(run(cmd, &out), 0);
        assert_contains(out, bad[i].message);
        free(out);
    }
}

/* --------------------------------------------------------------- overlays */

/* The [net] key=value lines of a cfg, one per line, comments dropped. */
static char *keys_of(const char *path)
{
    char *text = slurp(path), *keys = NULL, *save;
    assert_non_null(text);
    size_t size = 0;
    FILE *out = open_memstream(&keys, &size);
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        if (line[0] != '#' && line[0] != '[' && strchr(line, '='))
            fprintf(out, "%s\n", line);
    fclose(out);
    free(text);
    return keys;
}

static void test_log_reference_is_log_with_reference_form(void **state)
{
    char *log = keys_of("experiments/schedulers/log.cfg");
    char *ref = keys_of("experiments/schedulers/log-reference.cfg");
    char *form = strstr(log, "log_form=paper\n");
    if (!form)
        fail_msg("experiments/schedulers/log.cfg has no log_form=paper line");
    /* log.cfg with its log_form line replaced and without
     * init_decay_epochs, which the author's code does not have */
    char want[4096];
    snprintf(want, sizeof want, "%.*slog_form=reference\n%s", (int)(form - log),
             log, form + strlen("log_form=paper\n"));
    char *d = strstr(want, "init_decay_epochs=");
    assert_non_null(d);
    memmove(d, strchr(d, '\n') + 1, strlen(strchr(d, '\n') + 1) + 1);
    if (strcmp(want, ref) != 0)
        fail_msg("experiments/schedulers/log-reference.cfg must set log.cfg's "
                 "keys but init_decay_epochs, with log_form=reference:\n"
                 "want:\n%sgot:\n%s", want, ref);
    free(log);
    free(ref);
}

int main(void)
{
    const struct CMUnitTest plot[] = {
        cmocka_unit_test(test_plot_summarises_seeds),
        cmocka_unit_test(test_plot_single_seed_layout_and_root),
        cmocka_unit_test(test_plot_rejects_bad_options),
    };
    const struct CMUnitTest runner[] = {
        cmocka_unit_test(test_run_seed_goes_to_its_directory),
        cmocka_unit_test(test_run_rejects_bad_seeds),
        cmocka_unit_test(test_run_trains_both_experiments),
        cmocka_unit_test(test_matrix_slurm_task_runs_its_cell),
        cmocka_unit_test(test_matrix_jobs_runs_cells_at_once),
    };
    const struct CMUnitTest overlays[] = {
        cmocka_unit_test(test_log_reference_is_log_with_reference_form),
    };
    int failed = cmocka_run_group_tests_name("plot", plot, NULL, NULL);
    failed += cmocka_run_group_tests_name("run", runner, setup_data, NULL);
    failed += cmocka_run_group_tests_name("overlays", overlays, NULL, NULL);
    return failed ? 1 : 0;
}
