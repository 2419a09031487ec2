/* main.c - the darknet command: dispatches to darknet/src/cli/cmd_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"classifier", dn_cmd_classifier, "classifier train|valid|predict DATA CFG [WEIGHTS] ..."},
    {"lr", dn_cmd_lr, "lr CFG [CFG...] [-epochs N] [-train-size N | -batches-per-epoch B] [-csv FILE] [-png FILE]"},
    {"summary", dn_cmd_summary, "summary CFG"},
};

static int usage(FILE *f)
{
    fprintf(f, "usage: darknet <command> [options]\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  darknet %s\n", commands[i].usage);
    fprintf(f, "options on every command that reads a cfg:\n"
               "  -set key=value   override a [net] key (repeatable)\n"
               "  -overlay FILE    apply FILE's [net] keys (repeatable)\n"
               "  -strict          unused cfg keys are errors\n");
    return f == stdout ? 0 : 2;
}

/*
 * OpenMP's threads spin at every barrier by default. Alone on the machine
 * that costs nothing, but when another busy process shares the cores the
 * spinning threads take turns burning each other's time: the small demo
 * ResNet kept 26% of its speed beside one busy process, and 45% with
 * OMP_WAIT_POLICY=passive, which loses nothing alone (results/bench/).
 * So passive is the default when the user set neither OMP_WAIT_POLICY nor
 * GOMP_SPINCOUNT. libgomp reads them once, when it is loaded, before main
 * runs: the program runs itself again with the variable set. If that exec
 * fails, it carries on as it is.
 */
static void default_wait_policy(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
        execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    default_wait_policy(argv);
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
        return usage(stdout);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "darknet: unknown command \"%s\"\n", argv[1]);
    return usage(stderr);
}
