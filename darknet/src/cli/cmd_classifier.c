/*
 * cmd_classifier.c - `darknet classifier train|valid|predict`, Darknet's CLI.
 *
 *   darknet classifier train DATA CFG [WEIGHTS] [-clear] [-every N]
 *                            [-save-epochs] [-backup DIR]
 *   darknet classifier valid DATA CFG WEIGHTS
 *   darknet classifier predict DATA CFG WEIGHTS [IMAGE] [-index N]
 * and on each: -set key=value, -overlay FILE, -strict, and the device:
 * -gpus 0[,1,...] (CUDA devices; several train data-parallel) or -nogpu.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "comm_mpi.h"

static volatile sig_atomic_t stop_requested;

/* The first SIGINT or SIGTERM asks training to stop after its batch (and
 * save); a second one kills at once, so a run is always interruptible. */
static void on_signal(int sig)
{
    stop_requested = 1;
    signal(sig, SIG_DFL);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: darknet classifier train DATA CFG [WEIGHTS] [-clear] [-every N]\n"
            "                                [-save-epochs] [-backup DIR]\n"
            "       darknet classifier valid DATA CFG WEIGHTS\n"
            "       darknet classifier predict DATA CFG WEIGHTS [IMAGE] [-index N] [-top K]\n"
            "options for all: -set key=value, -overlay FILE, -strict,\n"
            "                 -gpus 0[,1,...] (GPU build; default GPU 0), -nogpu\n");
    return 2;
}

/* The cfg at path with the line's -overlay and -set applied, and -strict:
 * 0, or 1 with the error printed. */
static int load_cfg(const char *mode, const char *path, int argc, char **argv,
                    dn_cfg **cfg, int *strict)
{
    dn_error err;
    *strict = 0;
    if (dn_cli_load_cfg(path, argc, argv, cfg, strict, &err) == 0)
        return 0;
    fprintf(stderr, "darknet classifier %s: %s\n", mode, err.msg);
    return 1;
}

static int train(int argc, char **argv)
{
    dn_error err;
    dn_train_args a = {0};
    long every;
    /* under mpirun: data-parallel across its processes (comm_mpi.h), one
     * GPU per rank; MPI gets no argv (it needs none) */
    if (dn_comm_mpi_open(NULL, NULL, &a.comm, &err)) {
        fprintf(stderr, "darknet classifier train: %s\n", err.msg);
        return 1;
    }
    int rc = 2;
    dn_cfg *cfg = NULL;
    a.clear = dn_arg_flag(argc, argv, "-clear");
    a.save_every_epoch = dn_arg_flag(argc, argv, "-save-epochs");
    a.backup = dn_arg_str(argc, argv, "-backup", NULL);
    if (dn_arg_long(argc, argv, "-every", 1, &every, &err) ||
        dn_arg_rank_devices(argc, argv, a.comm, &a.devices, &err) ||
        dn_check_options(argc, argv, &err)) {
        fprintf(stderr, "darknet classifier train: %s\n", err.msg);
        goto done;
    }
    char *pos[4];
    int n = dn_positional(argc, argv, pos, 4);
    if (n < 2 || n > 3) {
        rc = usage();
        goto done;
    }
    rc = 1;
    if (load_cfg("train", pos[1], argc, argv, &cfg, &a.strict))
        goto done;
    a.data_path = pos[0];
    a.cfg = cfg;
    a.weights = n == 3 ? pos[2] : NULL;
    a.print_every = (int)every;
    a.stop = &stop_requested;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    dn_train_outcome outcome;
    if (dn_train_classifier(&a, &outcome, &err))
        fprintf(stderr, "darknet classifier train: %s\n", err.msg);
    else
        rc = outcome == DN_TRAIN_INTERRUPTED ? 130 : 0;
done:
    dn_cfg_free(cfg);
    if (a.comm)
        a.comm->ops->free(a.comm);
    return rc;
}

static int valid(int argc, char **argv)
{
    dn_error err;
    dn_eval_args a = {0};
    char *pos[4];
    if (dn_arg_devices(argc, argv, &a.devices, &err) ||
        dn_check_options(argc, argv, &err)) {
        fprintf(stderr, "darknet classifier valid: %s\n", err.msg);
        return 2;
    }
    if (dn_positional(argc, argv, pos, 4) != 3)
        return usage();
    dn_cfg *cfg;
    if (load_cfg("valid", pos[1], argc, argv, &cfg, &a.strict))
        return 1;
    a.data_path = pos[0];
    a.cfg = cfg;
    a.weights = pos[2];
    dn_eval_result r;
    int rc = dn_eval_classifier(&a, &r, &err);
    dn_cfg_free(cfg);
    if (rc) {
        fprintf(stderr, "darknet classifier valid: %s\n", err.msg);
        return 1;
    }
    if (r.k > 1)
        printf("%ld images: top-1 %.4f, top-%d %.4f, loss %.4f\n", r.images,
               r.top1, r.k, r.topk, r.loss);
    else
        printf("%ld images: top-1 %.4f, loss %.4f\n", r.images, r.top1, r.loss);
    if (r.nonfinite) {
        fprintf(stderr, "darknet classifier valid: %ld of %ld images got "
                "scores that are not finite (ranked wrong; the loss cannot be "
                "trusted): the weights overflow on them\n", r.nonfinite,
                r.images);
        return 1;
    }
    return 0;
}

/* One image or record (p->image, p->index), or each path read from stdin
 * when neither is given, as Darknet does. */
static int predict_with(dn_predict_args *p)
{
    dn_error err;
    if (!p->image && p->index < 0) {
        /* Darknet reads image paths from stdin when none is given; what
         * does not depend on the image is checked first */
        if (dn_predict_check(p, &err)) {
            fprintf(stderr, "darknet classifier predict: %s\n", err.msg);
            return 1;
        }
        char line[4096];
        int rc = 0;
        printf("Enter Image Path: ");
        fflush(stdout);
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (!line[0])
                continue;
            p->image = line;
            if (dn_predict_classifier(p, stdout, &err)) {
                fprintf(stderr, "darknet classifier predict: %s\n", err.msg);
                rc = 1;
            }
            printf("Enter Image Path: ");
            fflush(stdout);
        }
        printf("\n");
        return rc;
    }
    if (dn_predict_classifier(p, stdout, &err)) {
        fprintf(stderr, "darknet classifier predict: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int predict(int argc, char **argv)
{
    dn_error err;
    long index, top;
    dn_devices dev;
    if (dn_arg_long(argc, argv, "-index", -1, &index, &err) ||
        dn_arg_long(argc, argv, "-top", 0, &top, &err) ||
        dn_arg_devices(argc, argv, &dev, &err) ||
        dn_check_options(argc, argv, &err)) {
        fprintf(stderr, "darknet classifier predict: %s\n", err.msg);
        return 2;
    }
    char *pos[5];
    int n = dn_positional(argc, argv, pos, 5);
    if (n < 3 || n > 4)
        return usage();
    dn_predict_args p = {.data_path = pos[0], .weights = pos[2],
                         .image = n == 4 ? pos[3] : NULL, .index = index,
                         .top = (int)top, .devices = dev};
    dn_cfg *cfg;
    if (load_cfg("predict", pos[1], argc, argv, &cfg, &p.strict))
        return 1;
    p.cfg = cfg;
    int rc = predict_with(&p);
    dn_cfg_free(cfg);
    return rc;
}

int dn_cmd_classifier(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "train") == 0)
        return train(argc - 1, argv + 1);
    if (strcmp(argv[1], "valid") == 0)
        return valid(argc - 1, argv + 1);
    if (strcmp(argv[1], "predict") == 0)
        return predict(argc - 1, argv + 1);
    fprintf(stderr, "darknet classifier: unknown mode \"%s\"\n", argv[1]);
    return usage();
}
