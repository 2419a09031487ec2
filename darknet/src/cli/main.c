/* main.c - the darknet command: dispatches to darknet/src/cli/cmd_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wait_policy.h"

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

int main(int argc, char **argv)
{
    dn_default_wait_policy(argv); /* first: see wait_policy.h */
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
