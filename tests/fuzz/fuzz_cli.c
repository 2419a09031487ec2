/*
 * fuzz_cli.c - the command line: words (one per input line) given to
 * `darknet summary` or `darknet lr` (the first byte chooses), with -set,
 * -overlay, -strict and the commands' own options anywhere. The words @cfg,
 * @sched and @overlay stand for files written here; -csv writes into the
 * fuzzing directory, -png becomes -csv (no gnuplot); runs that would write
 * more than 10^5 rows are skipped (that many rates take seconds).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "fuzz.h"

#define MAX_WORDS 32

static const char *CFG =
    "[net]\nbatch=4\nheight=8\nwidth=8\nchannels=3\nlearning_rate=0.1\n"
    "max_batches=20\npolicy=steps\nsteps=5,10\nscales=.5,.5\n"
    "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
    "[shortcut]\nfrom=-1\n[connected]\noutput=10\n[softmax]\n";
static const char *SCHED =
    "[net]\nbatch=128\nmax_batches=50\nlearning_rate=0.1\n"
    "policy=cosine_restart\nrestart_interval=1\nmin_lr=0.001\n";
static const char *OVERLAY = "[net]\nlearning_rate=0.05\nmomentum=0.8\n";

typedef struct command {
    int (*run)(int argc, char **argv);
    int argc;
    char **argv;
} command;

static int run_command(void *arg)
{
    command *c = arg;
    return c->run(c->argc, c->argv);
}

/* The number in "-set key=N" when v is such an assignment of key, or -1. */
static double set_value(const char *v, const char *key)
{
    const char *eq = strchr(v, '=');
    if (!eq || !strstr(v, key))
        return -1;
    return fabs(strtod(eq + 1, NULL));
}

/* 1 when lr could write more than 10^5 rows: the epochs (-epochs, else a
 * -set epochs=) times the batches per epoch (at most -batches-per-epoch,
 * or -train-size, or 50000 with batch=1), or without epochs a -set
 * max_batches= above it. */
static int too_many_rows(char **w, int n)
{
    double epochs = -1, set_epochs = -1, per = 50000, max_batches = 50;
    for (int i = 1; i + 1 < n; i++) {
        const char *v = w[i + 1];
        if (!strcmp(w[i], "-epochs"))
            epochs = fabs(strtod(v, NULL));
        else if (!strcmp(w[i], "-batches-per-epoch") ||
                 !strcmp(w[i], "-train-size"))
            per = fabs(strtod(v, NULL));
        else if (!strcmp(w[i], "-set") && set_value(v, "max_batches") >= 0)
            max_batches = set_value(v, "max_batches");
        else if (!strcmp(w[i], "-set") && set_value(v, "epochs") >= 0)
            set_epochs = set_value(v, "epochs");
    }
    if (epochs < 0)
        epochs = set_epochs;
    const double rows = epochs >= 0 ? epochs * per : max_batches;
    return !(rows <= 1e5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    static const char *cfg, *sched, *overlay, *csv;
    if (!cfg) {
        cfg = strdup(fz_write("cli.cfg", CFG, strlen(CFG)));
        sched = strdup(fz_write("sched.cfg", SCHED, strlen(SCHED)));
        overlay = strdup(fz_write("overlay.cfg", OVERLAY, strlen(OVERLAY)));
        csv = strdup(fz_write("out.csv", "", 0));
    }
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char *words[MAX_WORDS + 1];
    int n = 1;
    words[0] = data[0] & 1 ? "lr" : "summary";
    for (char *save = NULL, *w = strtok_r(text, "\n", &save);
         w && n < MAX_WORDS; w = strtok_r(NULL, "\n", &save)) {
        if (!strcmp(w, "@cfg"))
            w = (char *)cfg;
        else if (!strcmp(w, "@sched"))
            w = (char *)sched;
        else if (!strcmp(w, "@overlay"))
            w = (char *)overlay;
        else if (!strcmp(w, "-png"))
            w = "-csv";
        words[n++] = w;
    }
    for (int i = 1; i + 1 < n; i++)
        if (!strcmp(words[i], "-csv"))
            words[++i] = (char *)csv;
    words[n] = NULL;
    if (!too_many_rows(words, n)) {
        command c = {data[0] & 1 ? dn_cmd_lr : dn_cmd_summary, n, words};
        fz_silently(run_command, &c);
    }
    free(text);
    return 0;
}
