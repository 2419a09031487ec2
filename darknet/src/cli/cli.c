/*
 * cli.c - Darknet-style command-line options: "-name value" pairs and "-flag"
 * switches anywhere after the command. Consumed arguments are replaced by
 * NULL so dn_positional() returns what is left, and a command can report any
 * option it did not understand.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* 1 when argv[i] is -set or -overlay and argv[i + 1] its value: the pair
 * belongs to the cfg loader, and no other option may take either word (in
 * "-set -clear" the -clear is -set's malformed value, not a flag). */
static int loader_pair(int argc, char **argv, int i)
{
    return argv[i] && i + 1 < argc && argv[i + 1] &&
           (strcmp(argv[i], "-set") == 0 || strcmp(argv[i], "-overlay") == 0);
}

const char *dn_arg_str(int argc, char **argv, const char *name, const char *def)
{
    const char *v = def;
    for (int i = 1; i < argc - 1; i++) {
        if (loader_pair(argc, argv, i)) {
            i++;
            continue;
        }
        /* without its value the option stays, for dn_check_options */
        if (argv[i] && strcmp(argv[i], name) == 0 && argv[i + 1]) {
            v = argv[i + 1];
            argv[i] = argv[i + 1] = NULL;
            i++;
        }
    }
    return v;
}

int dn_arg_flag(int argc, char **argv, const char *name)
{
    int found = 0;
    for (int i = 1; i < argc; i++) {
        if (loader_pair(argc, argv, i)) {
            i++;
            continue;
        }
        if (argv[i] && strcmp(argv[i], name) == 0) {
            argv[i] = NULL;
            found = 1;
        }
    }
    return found;
}

int dn_arg_long(int argc, char **argv, const char *name, long def, long *out,
                dn_error *err)
{
    const char *v = dn_arg_str(argc, argv, name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno)
        return dn_fail(err, "%s: expected an integer, got \"%s\"", name, v);
    *out = x;
    return 0;
}

int dn_devices_parse(const char *list, dn_devices *out, dn_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p = list;
    while (*p) {
        char *end;
        errno = 0;
        long id = strtol(p, &end, 10);
        if (end == p || errno || id < 0 || id >= DN_MAX_GPUS ||
            (*end && *end != ','))
            return dn_fail(err, "-gpus %s: expected device numbers 0..%d "
                           "separated by commas, e.g. -gpus 0,1", list,
                           DN_MAX_GPUS - 1);
        for (int i = 0; i < out->n; i++)
            if (out->ids[i] == id)
                return dn_fail(err, "-gpus %s: GPU %ld is listed twice", list,
                               id);
        if (out->n == DN_MAX_GPUS)
            return dn_fail(err, "-gpus %s: at most %d devices", list,
                           DN_MAX_GPUS);
        out->ids[out->n++] = (int)id;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return dn_fail(err, "-gpus %s: trailing comma", list);
    }
    if (out->n == 0)
        return dn_fail(err, "-gpus: expected device numbers, e.g. -gpus 0");
    return 0;
}

int dn_arg_devices(int argc, char **argv, dn_devices *out, dn_error *err)
{
    return dn_arg_rank_devices(argc, argv, NULL, out, err);
}

int dn_arg_rank_devices(int argc, char **argv, const dn_comm *comm,
                        dn_devices *out, dn_error *err)
{
    const int nogpu = dn_arg_flag(argc, argv, "-nogpu");
    const char *list = dn_arg_str(argc, argv, "-gpus", NULL);
    const int ranks = comm ? comm->size : 1;
    memset(out, 0, sizeof *out);
    if (nogpu && list)
        return dn_fail(err, "-gpus and -nogpu contradict each other");
    if (nogpu)
        return 0;
    if (list && ranks > 1) {
        if (dn_devices_parse(list, out, err))
            return -1;
        if (out->n > 1)
            return dn_fail(err, "-gpus %s: under an MPI launcher each of the "
                           "%d processes drives one GPU: give each rank one "
                           "id (-gpus ID, e.g. from a wrapper script), or "
                           "leave -gpus out for the GPU of its local rank; "
                           "several GPUs in one process are -gpus %s without "
                           "mpirun", list, ranks, list);
    }
#ifndef DN_GPU
    if (list)
        return dn_fail(err, "-gpus %s: this darknet was built without GPU "
                       "support; rebuild with make GPU=1 CUDNN=1, or drop "
                       "-gpus to run on the CPU", list);
    return 0;
#else
    if (list)
        return dn_devices_parse(list, out, err);
    const int count = dn_gpu_count();
    if (count > 0 && ranks > 1) {
        out->n = 1;
        out->ids[0] = comm->node_rank % count;
        fprintf(stderr, "darknet: rank %d uses GPU %d (local rank %d, %d "
                "GPU%s here; -gpus ID chooses, -nogpu for the CPU)\n",
                comm->rank, out->ids[0], comm->node_rank, count,
                count > 1 ? "s" : "");
    } else if (count > 0) {
        out->n = 1; /* Darknet's default: GPU 0 */
        fprintf(stderr, "darknet: using GPU 0 (-nogpu for the CPU, -gpus to "
                "choose)\n");
    } else {
        fprintf(stderr, "darknet: no CUDA device found: running on the CPU\n");
    }
    return 0;
#endif
}

int dn_cli_load_cfg(const char *path, int argc, char **argv, dn_cfg **out,
                    int *strict, dn_error *err)
{
    dn_cfg *cfg;
    if (dn_cfg_load(path, &cfg, err))
        return -1;
    /* overlays first, in order, then -set: the command line wins */
    for (int pass = 0; pass < 2; pass++) {
        const char *name = pass == 0 ? "-overlay" : "-set";
        for (int i = 1; i < argc; i++) {
            if (!argv[i] || strcmp(argv[i], name) != 0)
                continue;
            if (i + 1 >= argc || !argv[i + 1]) {
                dn_fail(err, "%s needs a value (%s)", name,
                        pass == 0 ? "a cfg file of [net] keys" : "key=value");
                goto fail;
            }
            if (pass == 0 ? dn_cfg_overlay(cfg, argv[i + 1], err)
                          : dn_cfg_set(cfg, argv[i + 1], err))
                goto fail;
            i++; /* the value is not an option of its own */
        }
    }
    if (strict)
        *strict |= dn_arg_flag(argc, argv, "-strict");
    *out = cfg;
    return 0;
fail:
    dn_cfg_free(cfg);
    return -1;
}


/* Slots that the cfg loader's option at argv[i] takes (-set/-overlay with
 * their value: 2, -strict: 1), or 0 when argv[i] is not one of them. */
static int loader_option(int argc, char **argv, int i)
{
    if (loader_pair(argc, argv, i))
        return 2;
    return strcmp(argv[i], "-strict") == 0;
}

int dn_positional(int argc, char **argv, char **pos, int max)
{
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!argv[i])
            continue;
        int skip = loader_option(argc, argv, i);
        if (skip) {
            i += skip - 1;
            continue;
        }
        if (n < max)
            pos[n] = argv[i];
        n++;
    }
    return n;
}

int dn_check_options(int argc, char **argv, dn_error *err)
{
    for (int i = 1; i < argc; i++) {
        if (!argv[i] || argv[i][0] != '-' || argv[i][1] == '\0')
            continue;
        int skip = loader_option(argc, argv, i);
        if (skip) {
            i += skip - 1;
            continue;
        }
        if (strcmp(argv[i], "-set") == 0 || strcmp(argv[i], "-overlay") == 0)
            return dn_fail(err, "%s needs a value", argv[i]);
        return dn_fail(err, "unknown option %s, or an option without its "
                       "value", argv[i]);
    }
    return 0;
}
