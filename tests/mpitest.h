/*
 * mpitest.h - what the tests of training under mpirun share (test_mpi.c on
 * CPU ranks, tests/gpu/test_gpu_mpi.c on GPU ranks): the small network and
 * data they train, the darknet they launch and its output, and the
 * comparison of two weight files within a bound.
 *
 * One test directory per test program (mt.dir): m.cfg (mt_net), m.data
 * over CIFAR-format records the tests generate, and one backup directory
 * plus <out>.txt per run.
 */
#ifndef DN_MPITEST_H
#define DN_MPITEST_H

#include "testutil.h"

typedef struct mt_env {
    char darknet[1024]; /* absolute path of the MPI build of bin/darknet */
    char dir[600];      /* the test directory */
    char skip_why[256]; /* why every test skips; empty when they run */
} mt_env;

extern mt_env mt;

/* 16 images per batch, two convolutions with batch norm, 5 updates */
extern const char *const mt_net;

/*
 * Fills mt and the test directory. The binary is the one the environment
 * variable env_var names (what is a phrase for the skip message: "the
 * make MPI=1 build of bin/darknet"). Every test skips with why_not when it
 * is not NULL, else without mpirun or that binary. with_valid adds a
 * validation set. Sets what mpirun needs on a test machine: ranks as root,
 * several ranks on few cores, one thread each.
 */
void mt_setup(const char *env_var, const char *what, const char *why_not,
              int with_valid);

#define MT_SKIP_UNLESS_READY()                                                \
    do {                                                                      \
        if (mt.skip_why[0]) {                                                 \
            print_message("skipped: %s\n", mt.skip_why);                      \
            skip();                                                           \
        }                                                                     \
    } while (0)

/* `darknet classifier train m.data m.cfg -backup out extra` on `ranks`
 * processes (1: no mpirun), killed after timeout_s; output in out.txt.
 * Returns the exit status (128 when it did not exit). */
int mt_train(int ranks, int timeout_s, const char *out, const char *extra);

/* The output of run `out` (static buffer, up to 64 KiB). */
const char *mt_output_of(const char *out);

/* The run exited 0; else its output is printed and the test fails. */
void mt_expect_ok(int rc, const char *out);

/* A file or directory of the test directory exists. */
int mt_exists(const char *name);

/* m.cfg with the weights of a file of the test directory (no state). */
dn_net *mt_load_net(const char *weights);

/*
 * Two weight files of the test directory hold the same clock and
 * parameters within |a - b| <= bound * (|a| + 0.01); with stats, every
 * other saved tensor (batch norm's rolling statistics) too. Prints the
 * largest deviation.
 */
void mt_assert_weights_close(const char *a_path, const char *b_path,
                             int stats, double bound);

#endif
