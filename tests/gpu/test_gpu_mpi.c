/*
 * test_gpu_mpi.c - GPU ranks: data-parallel training under mpirun with one
 * GPU per rank (darknet/src/distributed.c over comm_nccl.c's
 * dn_comm_nccl_mpi_make: NCCL bootstrapped over MPI), against one process
 * on one GPU. Runs DARKNET_GPU_MPI, the GPU=1 MPI=1 build of bin/darknet
 * (tests/gpu/run.sh and device-check.sh set it), under
 * `mpirun --oversubscribe -np 2` with one thread per rank; on the CUDA
 * emulator its NCCL is MPI itself (tests/gpu/emu/nccl.h). Every test is
 * skipped, saying why, in a build without MPI or NCCL, without mpirun or
 * that binary, or with fewer than two devices.
 *
 *  - 2 GPU ranks end where 1 process on one GPU ends after 5 updates, SGD
 *    and Adam: the process runs each rank's share as a subdivision (the
 *    same batch-norm statistics; parameters compared, the rolling
 *    statistics are per rank); each rank drives the GPU of its local rank;
 *  - a one-GPU checkpoint (Adam's state, the clock) resumes on 2 GPU ranks
 *    and ends where an uninterrupted run ends;
 *  - a rank that fails (its checkpoint cannot be written) stops every rank
 *    with a message naming it, never a hang in NCCL;
 *  - refused before training, with a message: bn_sync=1 on GPUs (naming
 *    the key), several GPUs per rank (-gpus 0,1 under mpirun), and ranks
 *    placed differently (one on a GPU, one on the CPU).
 *
 * Bound: the sums of a batch run in another order (per rank, then across
 * ranks) and each process picks its own convolution algorithms, so values
 * agree to |a - b| <= BOUND * (|a| + 0.01), not bit for bit; the largest
 * deviation is printed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda.h"
#include "gpu_testutil.h"
#include "mpitest.h"

/* the emulator computes exactly (the order of sums alone differs: 1.4e-6
 * measured); a GPU adds cuDNN's per-process choice of algorithms, in
 * strict fp32 */
#ifdef DN_CUDA_EMU
#define BOUND 2e-5
#else
#define BOUND 1e-3
#endif

/* Every test skips, saying why, unless this build has MPI and NCCL and
 * there are two devices (mpitest.h checks mpirun and the binary). */
static int setup(void **state)
{
    static char why_not[128];
    const char *unbuilt = NULL;
    int devices = 0;
#ifndef DN_MPI
    unbuilt = "built without MPI (make MPI=1)";
#endif
#ifndef DN_NCCL
    unbuilt = "built without NCCL (NCCL=0)";
#endif
    if (unbuilt)
        snprintf(why_not, sizeof why_not, "%s", unbuilt);
    else if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 2)
        snprintf(why_not, sizeof why_not, "%d CUDA device(s); two ranks "
                 "take one each", devices);
    mt_setup("DARKNET_GPU_MPI", "the GPU=1 MPI=1 build of bin/darknet",
             why_not[0] ? why_not : NULL, 0);
    return 0;
}

/* Trains on 2 ranks (each on its local rank's GPU) or 1 process on GPU 0,
 * into backup dir `out` with extra words. */
static int train(int ranks, const char *out, const char *extra)
{
    char words[1024];
    snprintf(words, sizeof words, "%s %s", ranks > 1 ? "" : "-gpus 0", extra);
    return mt_train(ranks, 120, out, words);
}

/* rank r's share of forward batch k is subdivision 2k+r of one process */
static void check_against_one_gpu(const char *set, const char *name)
{
    char one[64], two[64], set1[256], w1[128], w2[128];
    snprintf(one, sizeof one, "%s_1", name);
    snprintf(two, sizeof two, "%s_2", name);
    snprintf(set1, sizeof set1, "%s -set subdivisions=2", set);
    mt_expect_ok(train(1, one, set1), one);
    mt_expect_ok(train(2, two, set), two);
    const char *out = mt_output_of(two);
    assert_contains(out, "rank 0 uses GPU 0");
    assert_contains(out, "rank 1 uses GPU 1");
    assert_contains(out, "5, 0.833: "); /* one process's clock */
    assert_contains(out, "80 images");
    snprintf(w1, sizeof w1, "%s/m_final.weights", one);
    snprintf(w2, sizeof w2, "%s/m_final.weights", two);
    mt_assert_weights_close(w1, w2, 0, BOUND);
}

static void test_sgd_two_gpu_ranks_match_one_gpu(void **state)
{
    MT_SKIP_UNLESS_READY();
    check_against_one_gpu("-set adam=0", "sgd");
}

static void test_adam_two_gpu_ranks_match_one_gpu(void **state)
{
    MT_SKIP_UNLESS_READY();
    check_against_one_gpu("-set adam=1 -set learning_rate=0.001", "adam");
}

/* 1 epoch on one GPU, resumed to 2 epochs on 2 GPU ranks, against 2
 * epochs on one GPU */
static void test_one_gpu_checkpoint_resumes_on_two_ranks(void **state)
{
    MT_SKIP_UNLESS_READY();
    const char *keys = "-set max_batches=0 -set epochs=2 -set adam=1 "
                       "-set learning_rate=0.001";
    char extra[512];
    snprintf(extra, sizeof extra, "%s -set subdivisions=2", keys);
    mt_expect_ok(train(1, "straight", extra), "straight");
    snprintf(extra, sizeof extra, "%s -set subdivisions=2 -set epochs=1", keys);
    mt_expect_ok(train(1, "first", extra), "first");
    snprintf(extra, sizeof extra, "first/m_final.weights %s", keys);
    mt_expect_ok(train(2, "then", extra), "then");
    assert_contains(mt_output_of("then"), "resuming a checkpoint of 1 process "
                                       "with 2");
    mt_assert_weights_close("straight/m_final.weights",
                            "then/m_final.weights", 0, BOUND);
}

static void test_failing_rank_stops_every_rank(void **state)
{
    MT_SKIP_UNLESS_READY();
    /* rank 0 alone writes checkpoints: a directory in the way of its
     * first one fails it at the end of epoch 1 */
    char path[700];
    mkdir(tu_tmp_path("fail"), 0777);
    snprintf(path, sizeof path, "%s/fail/m_last.weights", mt.dir);
    assert_int_equal(mkdir(path, 0777), 0);
    int rc = train(2, "fail", "-set max_batches=0 -set epochs=3");
    assert_int_not_equal(rc, 0);
    assert_int_not_equal(rc, 124); /* no timeout: nobody hung */
    const char *out = mt_output_of("fail");
    assert_contains(out, "rank 0: ");
    assert_contains(out, "m_last.weights");
    assert_contains(out, "rank 1: stopped because rank 0 failed: ");
    assert_contains(out, "6, 1.000: ");
    assert_null(strstr(out, "7, 1.167: "));
}

/* refusals before the first batch: (extra words, what the output says) */
static void test_refusals_come_before_training(void **state)
{
    MT_SKIP_UNLESS_READY();
    static const struct {
        const char *name, *extra, *says;
    } cases[] = {
        {"bnsync", "-set bn_sync=1", "bn_sync=1 (batch norm over every "
         "process's share of the batch) runs on the CPU only"},
        {"twogpus", "-gpus 0,1", "-gpus 0,1: under an MPI launcher each of "
         "the 2 processes drives one GPU"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = train(2, cases[i].name, cases[i].extra);
        const char *out = mt_output_of(cases[i].name);
        if (rc == 0 || !strstr(out, cases[i].says))
            print_error("%s: exit %d:\n%s\n", cases[i].name, rc, out);
        assert_int_not_equal(rc, 0);
        assert_contains(out, cases[i].says);
        assert_null(strstr(out, "1, 0.167: "));
    }
}

/* rank 1 on the CPU, rank 0 on a GPU: both refuse, neither waits */
static void test_ranks_placed_differently_are_refused(void **state)
{
    MT_SKIP_UNLESS_READY();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && timeout 120 mpirun --oversubscribe "
             "-np 2 sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then "
             "set -- -nogpu; fi; exec %s classifier train m.data m.cfg "
             "-backup mixed \"$@\"' > mixed.txt 2>&1", mt.dir, mt.darknet);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) != 0 &&
                WEXITSTATUS(rc) != 124);
    const char *out = mt_output_of("mixed");
    assert_contains(out, "1 of 2 processes placed the network on a GPU and "
                         "the others on the CPU");
    assert_null(strstr(out, "1, 0.167: "));
}

int main(void)
{
    if (gt_no_device("test_gpu_mpi"))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_two_gpu_ranks_match_one_gpu),
        cmocka_unit_test(test_adam_two_gpu_ranks_match_one_gpu),
        cmocka_unit_test(test_one_gpu_checkpoint_resumes_on_two_ranks),
        cmocka_unit_test(test_failing_rank_stops_every_rank),
        cmocka_unit_test(test_refusals_come_before_training),
        cmocka_unit_test(test_ranks_placed_differently_are_refused),
    };
    int rc = cmocka_run_group_tests_name("gpu ranks", tests, setup, NULL);
    dn_gpu_ctx_release_all();
    return rc;
}
