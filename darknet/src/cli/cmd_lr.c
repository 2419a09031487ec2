/*
 * cmd_lr.c - `darknet lr`: the learning-rate schedule of one or more cfgs,
 * without training. Schedulers are pure functions of the clock, so this is
 * exactly the rate training would use at each batch.
 *
 *   darknet lr CFG [CFG...] [-epochs N] [-train-size N | -batches-per-epoch B]
 *              [-csv FILE] [-png FILE] [-set k=v] [-overlay F] [-strict]
 *
 * Clock: the run's length comes from dn_train_length, as training's does:
 * batches_per_epoch = B, or max(1, floor(train_size / batch)) with batch =
 * [net] batch (images per weight update) and train_size 50000 by default
 * (CIFAR-10's training set, the paper's benchmark). Rows cover batches
 * 0..N-1, N = ceil(epochs * batches_per_epoch) with epochs = -epochs, else
 * [net] epochs=, else N = [net] max_batches: the rates of exactly the N
 * updates a training run of that length makes, on its clock.
 *
 * Output: CSV with header batch,epoch,lr (numbers %.9g); with several cfgs a
 * first column cfg holds the cfg path as given, one block of rows per cfg
 * (long format: each cfg keeps its own batch grid). The CSV goes to -csv FILE
 * or, when neither -csv nor -png is given, to stdout. -png draws every cfg on
 * one chart with gnuplot (x: epoch, y: learning rate, one line per cfg,
 * labelled with its policy, or with the cfg's file name when two cfgs share
 * a policy). Files are written under a temporary name and renamed.
 *
 * Unused keys: the command reads only the schedule, but -set/-overlay keys
 * must still be keys something reads. What training reads beyond the
 * schedule is validated and then marked read through the key tables
 * (keys.h: network, training, augmentation), so any known key is accepted;
 * an unknown [net] key, or a schedule key this policy does not read, is
 * reported by dn_cfg_check_unused: a warning for a key in the cfg file, an
 * error for one from an override or under -strict.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "keys.h"

#define DEFAULT_TRAIN_SIZE 50000 /* CIFAR-10's training images */
#define MAX_CFGS 64
/* Rows of one cfg at most (a CSV of about 300 MB), refused before output */
#define MAX_ROWS 10000000L

typedef struct lr_options {
    double epochs;          /* 0: run to max_batches */
    long train_size;
    long batches_per_epoch; /* 0: from train_size */
    const char *csv, *png;
    int strict;
} lr_options;

typedef struct lr_run {
    const char *path;
    dn_cfg *cfg;
    dn_schedule *schedule;
    dn_run_length length; /* images per batch, batches per epoch, updates */
    long last_batch; /* rows are batches 0..last_batch (the last update) */
    char label[256];
} lr_run;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "darknet lr: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* ---------------------------------------------------------------- options */

static int parse_options(int argc, char **argv, lr_options *o, dn_error *err)
{
    memset(o, 0, sizeof *o);
    const char *epochs = dn_arg_str(argc, argv, "-epochs", NULL);
    if (dn_arg_long(argc, argv, "-train-size", -1, &o->train_size, err) ||
        dn_arg_long(argc, argv, "-batches-per-epoch", -1, &o->batches_per_epoch,
                    err))
        return -1;
    o->csv = dn_arg_str(argc, argv, "-csv", NULL);
    o->png = dn_arg_str(argc, argv, "-png", NULL);
    o->strict = dn_arg_flag(argc, argv, "-strict");
    if (epochs) {
        char *end;
        errno = 0;
        o->epochs = strtod(epochs, &end);
        if (end == epochs || *end || errno || !isfinite(o->epochs) ||
            o->epochs <= 0)
            return dn_fail(err, "-epochs: expected a number > 0, got \"%s\"",
                           epochs);
    }
    if (o->train_size != -1 && o->batches_per_epoch != -1)
        return dn_fail(err, "give -train-size or -batches-per-epoch, not both");
    if (o->train_size == -1)
        o->train_size = DEFAULT_TRAIN_SIZE;
    else if (o->train_size < 1)
        return dn_fail(err, "-train-size: expected an integer >= 1, got %ld",
                       o->train_size);
    if (o->batches_per_epoch == -1)
        o->batches_per_epoch = 0;
    else if (o->batches_per_epoch < 1)
        return dn_fail(err, "-batches-per-epoch: expected an integer >= 1, got "
                       "%ld", o->batches_per_epoch);
    return 0;
}

/* --------------------------------------------------------------- loading */

/* What training reads beyond the schedule is checked as training checks
 * it: the trainer's keys, and the network, planned (no tensor), when the
 * cfg has layers; a schedule-only cfg marks the network's keys read. */
static int check_other_keys(dn_cfg *cfg, dn_section *net, dn_error *err)
{
    if (dn_trainer_keys_check(net, err))
        return -1;
    dn_key_mark(net, dn_net_keys);
    dn_key_mark(net, dn_train_keys);
    dn_key_mark(net, dn_augment_keys);
    if (cfg->n_sections < 2)
        return 0;
    dn_net *plan;
    if (dn_net_plan(cfg, NULL, &plan, err))
        return -1;
    plan->cfg = NULL; /* the run keeps it */
    dn_net_free(plan);
    return 0;
}

static int load_run(const char *path, int argc, char **argv,
                    const lr_options *o, lr_run *r, dn_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    if (dn_cli_load_cfg(path, argc, argv, &r->cfg, NULL, err))
        return -1;
    dn_section *net = r->cfg->n_sections ? &r->cfg->sections[0] : NULL;
    if (!net || (strcmp(net->type, "net") && strcmp(net->type, "network")))
        return dn_fail(err, "%s: error: the first section must be [net]", path);
    long batch, max_batches;
    dn_trainer_keys keys;
    if (dn_sec_int(net, "batch", 1, 1, 1 << 20, &batch, err) ||
        dn_sec_int(net, "max_batches", 0, 0, __LONG_MAX__, &max_batches,
                   err) ||
        dn_schedule_parse(net, &r->schedule, err) ||
        dn_trainer_keys_read(net, &keys, err) ||
        check_other_keys(r->cfg, net, err) ||
        dn_cfg_check_unused(r->cfg, o->strict, stderr, err))
        return -1;
    const dn_length_inputs length_of = {
        .train_images = o->train_size, .images_per_batch = batch,
        .batches_per_epoch = o->batches_per_epoch,
        .epochs = o->epochs > 0 ? o->epochs : (double)keys.epochs,
        .max_batches = max_batches};
    if (dn_train_length(&length_of, &r->length, err)) {
        char why[DN_ERROR_MAX];
        snprintf(why, sizeof why, "%s", err->msg);
        return dn_fail(err, "%s: %s%s", path, why, o->epochs > 0 || keys.epochs
                       ? "" : " (or give -epochs)");
    }
    const long rows = r->length.max_batches;
    if (rows > MAX_ROWS)
        return dn_fail(err, "%s: %ld batches (%.4g epochs of %ld): more than "
                       "the %ld rows darknet lr writes; give fewer -epochs or "
                       "-batches-per-epoch", path, rows,
                       (double)rows / (double)r->length.batches_per_epoch,
                       r->length.batches_per_epoch, MAX_ROWS);
    r->last_batch = rows - 1;
    return 0;
}

/* The clock of update b, as training has it there. */
static dn_clock lr_clock(const lr_run *r, long b)
{
    const dn_run_length *n = &r->length;
    return dn_clock_at((uint64_t)b * (uint64_t)n->images_per_batch,
                       n->images_per_batch, n->batches_per_epoch,
                       n->max_batches);
}

/* Every rate of the run, before any output: a NaN, infinite or negative one
 * is an error naming the policy and the batch; one above
 * DN_IMPLAUSIBLE_RATE is warned about once. */
static int check_rates(const lr_run *r, dn_error *err)
{
    int warned = 0;
    for (long b = 0; b <= r->last_batch; b++) {
        dn_clock c = lr_clock(r, b);
        double lr;
        int rc = dn_schedule_rate_checked(r->schedule, &c, &lr, err);
        if (rc < 0) {
            char why[DN_ERROR_MAX];
            snprintf(why, sizeof why, "%s", err->msg);
            return dn_fail(err, "%s: %s", r->path, why);
        }
        if (rc > 0 && !warned++)
            fprintf(stderr, "darknet lr: %s: warning: %s\n", r->path, err->msg);
    }
    return 0;
}

static void free_run(lr_run *r)
{
    dn_schedule_free(r->schedule);
    dn_cfg_free(r->cfg);
}

/* Policy names, or file names where two cfgs share a policy. */
static void set_labels(lr_run *runs, int n)
{
    for (int i = 0; i < n; i++) {
        const char *policy = dn_schedule_policy(runs[i].schedule);
        int shared = 0;
        for (int j = 0; j < n; j++)
            if (j != i && !strcmp(policy, dn_schedule_policy(runs[j].schedule)))
                shared = 1;
        const char *base = strrchr(runs[i].path, '/');
        base = base ? base + 1 : runs[i].path;
        if (shared)
            snprintf(runs[i].label, sizeof runs[i].label, "%s (%s)", base, policy);
        else
            snprintf(runs[i].label, sizeof runs[i].label, "%s", policy);
    }
}

static double rate_at(const lr_run *r, long b, double *epoch)
{
    dn_clock c = lr_clock(r, b);
    *epoch = c.epoch;
    return dn_schedule_rate(r->schedule, &c);
}

/* ---------------------------------------------------------------- output */

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(FILE *f, const lr_run *runs, int n)
{
    fputs(n > 1 ? "cfg,batch,epoch,lr\n" : "batch,epoch,lr\n", f);
    for (int i = 0; i < n; i++)
        for (long b = 0; b <= runs[i].last_batch; b++) {
            double epoch, lr = rate_at(&runs[i], b, &epoch);
            if (n > 1) {
                csv_field(f, runs[i].path);
                fputc(',', f);
            }
            fprintf(f, "%ld,%.9g,%.9g\n", b, epoch, lr);
        }
}

/* A temporary file beside path, to be renamed over it when complete. */
static FILE *open_temp(const char *path, char *tmp, size_t n, dn_error *err)
{
    snprintf(tmp, n, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd >= 0) { /* mkstemp creates 0600: give it a normal file's mode */
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
    }
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        dn_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
    }
    return f;
}

static int commit_temp(const char *tmp, const char *path, dn_error *err)
{
    if (rename(tmp, path) == 0)
        return 0;
    dn_fail(err, "%s: cannot write: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
}

static int save_csv(const char *path, const lr_run *runs, int n, dn_error *err)
{
    char tmp[4096];
    FILE *f = open_temp(path, tmp, sizeof tmp, err);
    if (!f)
        return -1;
    write_csv(f, runs, n);
    int bad = ferror(f);
    if (fclose(f) || bad) {
        unlink(tmp);
        return dn_fail(err, "%s: write error", path);
    }
    return commit_temp(tmp, path, err);
}

/* A gnuplot single-quoted string: '' stands for one quote. */
static void gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('\'', f);
}

static void gnuplot_script(FILE *gp, const char *terminal, const char *out,
                           const lr_run *runs, int n)
{
    fprintf(gp, "set terminal %s size 1000,600 noenhanced\nset output ",
            terminal);
    gp_string(gp, out);
    fprintf(gp, "\nset title 'Learning-rate schedule'\nset xlabel 'epoch'\n"
                "set ylabel 'learning rate'\nset grid\nset key top right\n"
                "set xrange [0:*]\nplot ");
    for (int i = 0; i < n; i++) {
        fprintf(gp, "%s'-' using 1:2 with lines linewidth 2 title ",
                i ? ", " : "");
        gp_string(gp, runs[i].label);
    }
    fputc('\n', gp);
    for (int i = 0; i < n; i++) {
        for (long b = 0; b <= runs[i].last_batch; b++) {
            double epoch, lr = rate_at(&runs[i], b, &epoch);
            fprintf(gp, "%.9g %.9g\n", epoch, lr);
        }
        fputs("e\n", gp);
    }
}

/* pngcairo where gnuplot has it (Debian's gnuplot-nox does), else png. */
static const char *png_terminal(void)
{
    if (system("gnuplot -e 'set terminal pngcairo' </dev/null >/dev/null 2>&1") == 0)
        return "pngcairo";
    if (system("gnuplot -e 'set terminal png' </dev/null >/dev/null 2>&1") == 0)
        return "png";
    return NULL;
}

static int save_png(const char *path, const lr_run *runs, int n, dn_error *err)
{
    const char *terminal = png_terminal();
    if (!terminal)
        return dn_fail(err, "-png: gnuplot with a png terminal is needed "
                       "(Debian: apt install gnuplot-nox)");
    char tmp[4096];
    FILE *f = open_temp(path, tmp, sizeof tmp, err);
    if (!f)
        return -1;
    fclose(f);
    FILE *gp = popen("gnuplot", "w");
    if (!gp) {
        unlink(tmp);
        return dn_fail(err, "-png: cannot run gnuplot: %s", strerror(errno));
    }
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN); /* gnuplot may quit early */
    gnuplot_script(gp, terminal, tmp, runs, n);
    int status = pclose(gp);
    signal(SIGPIPE, old_pipe);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        unlink(tmp);
        return dn_fail(err, "-png: gnuplot failed (status %d)", status);
    }
    return commit_temp(tmp, path, err);
}

/* One readable line per cfg (to stderr when the CSV goes to stdout): the
 * lowest and highest rate the schedule reaches, so that a user sees before
 * training that, e.g., eq. 4's log cycles never fall to min_lr. */
static void summary(FILE *f, const lr_run *r)
{
    double lo = HUGE_VAL, hi = -HUGE_VAL, epoch = 0;
    for (long b = 0; b <= r->last_batch; b++) {
        double lr = rate_at(r, b, &epoch);
        lo = fmin(lo, lr);
        hi = fmax(hi, lr);
    }
    fprintf(f, "%s: policy %s, batches 0..%ld (%ld per epoch, %.4g epochs), "
               "lowest rate %.6g, highest %.6g\n", r->path, dn_schedule_policy(r->schedule),
            r->last_batch, r->length.batches_per_epoch, epoch, lo, hi);
}

/* ------------------------------------------------------------------ main */

static int run(lr_run *runs, int n, const lr_options *o, dn_error *err)
{
    for (int i = 0; i < n; i++)
        if (check_rates(&runs[i], err))
            return -1;
    set_labels(runs, n);
    if (o->csv && save_csv(o->csv, runs, n, err))
        return -1;
    if (o->png && save_png(o->png, runs, n, err))
        return -1;
    if (!o->csv && !o->png) {
        write_csv(stdout, runs, n);
        if (fflush(stdout) || ferror(stdout))
            return dn_fail(err, "stdout: write error");
        for (int i = 0; i < n; i++)
            summary(stderr, &runs[i]);
        return 0;
    }
    for (int i = 0; i < n; i++)
        summary(stdout, &runs[i]);
    if (o->csv)
        printf("wrote %s\n", o->csv);
    if (o->png)
        printf("wrote %s\n", o->png);
    return 0;
}

int dn_cmd_lr(int argc, char **argv)
{
    lr_options o;
    dn_error err = {{0}};
    char *paths[MAX_CFGS];
    if (parse_options(argc, argv, &o, &err))
        return fail("%s", err.msg);
    int n = dn_positional(argc, argv, paths, MAX_CFGS);
    for (int i = 0; i < n && i < MAX_CFGS; i++)
        if (paths[i][0] == '-' && paths[i][1])
            return fail("unknown option or missing value: %s", paths[i]);
    if (n == 0)
        return fail("usage: darknet lr CFG [CFG...] [-epochs N] [-train-size N "
                    "| -batches-per-epoch B] [-csv FILE] [-png FILE] "
                    "[-set k=v] [-overlay F] [-strict]");
    if (n > MAX_CFGS)
        return fail("at most %d cfgs", MAX_CFGS);
    lr_run runs[MAX_CFGS];
    int loaded = 0, rc = 0;
    for (; loaded < n && !rc; loaded++)
        rc = load_run(paths[loaded], argc, argv, &o, &runs[loaded], &err);
    if (!rc)
        rc = run(runs, n, &o, &err);
    for (int i = 0; i < loaded; i++)
        free_run(&runs[i]);
    return rc ? fail("%s", err.msg) : 0;
}
