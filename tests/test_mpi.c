/*
 * test_mpi.c - darknet/src/distributed.c and comm_mpi.c: data-parallel
 * training under mpirun, against one process. Runs the MPI build of the
 * command (DARKNET_MPI, built by make test where mpicc exists) under
 * `mpirun --oversubscribe -np 2` with one thread per rank; every test is
 * skipped, saying why, without mpirun or that binary.
 *
 *  - 2 ranks end where 1 process ends after 5 updates, SGD and Adam:
 *    with per-rank batch norm against one process running each rank's
 *    share as a subdivision (the same batch statistics; parameters only,
 *    the rolling statistics are per rank); with bn_sync=1 against the same
 *    cfg in one process, rolling statistics included;
 *  - a checkpoint of 2 ranks resumes in 1 process, and the reverse, ending
 *    where an uninterrupted run ends, and says so;
 *  - a rank killed mid-epoch ends the job within 30 s, and the checkpoint
 *    on disk loads;
 *  - a rank that fails (its checkpoint cannot be written) stops every rank
 *    with a message naming it and the cause;
 *  - a forward batch the ranks cannot share is refused before training.
 *
 * Bound: the sums of a batch run in another order (per rank, then across
 * ranks), so values agree to |a - b| <= 2e-4 * (|a| + 0.01), not bit for
 * bit; the largest deviation is printed.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mpitest.h"

#define BOUND 2e-4
/* Adam at its usual rate (the cfg's 0.05 is SGD's) */
#define ADAM_RATE(optimiser) (*(optimiser) == '1' ? " -set learning_rate=0.001" : "")

/* Per-rank batch norm: rank r's share of forward batch k is subdivision
 * 2k+r of one process with twice the subdivisions. */
static void check_per_rank(const char *optimiser, const char *name)
{
    char one[64], two[64], set[128], w1[128], w2[128];
    snprintf(one, sizeof one, "%s_1", name);
    snprintf(two, sizeof two, "%s_2", name);
    snprintf(set, sizeof set, "-set adam=%s%s", optimiser, ADAM_RATE(optimiser));
    char set1[160];
    snprintf(set1, sizeof set1, "%s -set subdivisions=2", set);
    mt_expect_ok(mt_train(1, 60, one, set1), one);
    mt_expect_ok(mt_train(2, 60, two, set), two);
    snprintf(w1, sizeof w1, "%s/m_final.weights", one);
    snprintf(w2, sizeof w2, "%s/m_final.weights", two);
    mt_assert_weights_close(w1, w2, 0, BOUND);
}

static void test_sgd_two_ranks_match_one_process(void **state)
{
    MT_SKIP_UNLESS_READY();
    check_per_rank("0", "sgd");
}

static void test_adam_two_ranks_match_one_process(void **state)
{
    MT_SKIP_UNLESS_READY();
    check_per_rank("1", "adam");
}

/* bn_sync=1: the same cfg; weights and rolling statistics */
static void check_bn_sync(const char *optimiser, const char *name)
{
    char one[64], two[64], set[128], w1[128], w2[128];
    snprintf(one, sizeof one, "%s_1", name);
    snprintf(two, sizeof two, "%s_2", name);
    snprintf(set, sizeof set, "-set adam=%s -set bn_sync=1%s", optimiser,
             ADAM_RATE(optimiser));
    mt_expect_ok(mt_train(1, 60, one, set), one);
    mt_expect_ok(mt_train(2, 60, two, set), two);
    snprintf(w1, sizeof w1, "%s/m_final.weights", one);
    snprintf(w2, sizeof w2, "%s/m_final.weights", two);
    mt_assert_weights_close(w1, w2, 1, BOUND);
    /* the printed lines are one process's: the same batches and clock */
    assert_contains(mt_output_of(two), "5, 0.833: ");
    assert_contains(mt_output_of(two), "80 images");
}

static void test_bn_sync_sgd_matches_with_statistics(void **state)
{
    MT_SKIP_UNLESS_READY();
    check_bn_sync("0", "syncsgd");
}

static void test_bn_sync_adam_matches_with_statistics(void **state)
{
    MT_SKIP_UNLESS_READY();
    check_bn_sync("1", "syncadam");
}

/* 1 epoch on `first` ranks, then resumed to 2 epochs on `then` ranks,
 * against 2 epochs on one process. */
static void check_resume(int first, int then, const char *name)
{
    const char *keys = "-set max_batches=0 -set epochs=2 -set bn_sync=1 "
                       "-set adam=1 -set learning_rate=0.001";
    char a[64], b[64], extra[512], w[128];
    if (!mt_exists("straight/m_final.weights"))
        mt_expect_ok(mt_train(1, 60, "straight", keys), "straight");
    snprintf(a, sizeof a, "%s_a", name);
    snprintf(b, sizeof b, "%s_b", name);
    snprintf(extra, sizeof extra, "%s -set epochs=1", keys);
    mt_expect_ok(mt_train(first, 60, a, extra), a);
    snprintf(extra, sizeof extra, "%s/m_final.weights %s", a, keys);
    mt_expect_ok(mt_train(then, 60, b, extra), b);
    char line[128];
    snprintf(line, sizeof line, "resuming a checkpoint of %d process%s with "
             "%d", first, first > 1 ? "es" : "", then);
    assert_contains(mt_output_of(b), line);
    snprintf(w, sizeof w, "%s/m_final.weights", b);
    mt_assert_weights_close("straight/m_final.weights", w, 1, BOUND);
}

static void test_two_rank_checkpoint_resumes_in_one(void **state)
{
    MT_SKIP_UNLESS_READY();
    check_resume(2, 1, "r21");
}

static void test_one_process_checkpoint_resumes_in_two(void **state)
{
    MT_SKIP_UNLESS_READY();
    check_resume(1, 2, "r12");
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A process that exists and is no zombie (an orphan whose reaper is slow,
 * or a container's init that reaps none, leaves one). */
static int alive(int pid)
{
    char path[64], text[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *paren = strrchr(text, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static void test_killed_rank_ends_the_job(void **state)
{
    MT_SKIP_UNLESS_READY();
    /* each rank notes its pid (exec keeps it); a long run */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && exec timeout 120 mpirun --oversubscribe "
             "-np 2 sh -c 'echo $$ > kill.pid.$OMPI_COMM_WORLD_RANK; exec %s "
             "classifier train m.data m.cfg -backup kill -set max_batches=0 "
             "-set epochs=100000' > kill.txt 2>&1", mt.dir, mt.darknet);
    pid_t job = fork();
    assert_true(job >= 0);
    if (job == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    double t0 = now();
    while (!(mt_exists("kill/m_last.weights") && mt_exists("kill.pid.1")) &&
           now() - t0 < 60)
        usleep(20000);
    assert_true(mt_exists("kill/m_last.weights"));
    usleep(200000); /* mid-epoch: an epoch is a few milliseconds */
    char path[700];
    snprintf(path, sizeof path, "%s/kill.pid.1", mt.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int rank1 = 0;
    assert_int_equal(fscanf(f, "%d", &rank1), 1);
    fclose(f);
    assert_int_equal(kill(rank1, SIGKILL), 0);
    double t_kill = now();
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(job, &status, WNOHANG)) == 0 && now() - t_kill < 30)
        usleep(20000);
    if (done == 0) {
        kill(job, SIGKILL);
        waitpid(job, &status, 0);
        print_error("the job did not end within 30 s of the kill\n");
        fail();
    }
    print_message("the job ended %.1f s after rank 1 was killed\n",
                  now() - t_kill);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    /* rank 0 is gone too, and the launcher said why */
    snprintf(path, sizeof path, "%s/kill.pid.0", mt.dir);
    f = fopen(path, "r");
    int rank0 = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &rank0), 1);
    fclose(f);
    assert_false(alive(rank0));
    assert_contains(mt_output_of("kill"), "signal 9");
    /* the checkpoint on disk loads, with its state */
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    snprintf(path, sizeof path, "%s/m.cfg", mt.dir);
    assert_int_equal(dn_cfg_load(path, &cfg, &err), 0);
    assert_int_equal(dn_net_make(cfg, NULL, &net, &err), 0);
    snprintf(path, sizeof path, "%s/kill/m_last.weights", mt.dir);
    int with_state = 0;
    if (dn_checkpoint_load(net, path, 1, &with_state, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_int_equal(with_state, 1);
    assert_true(net->seen > 0);
    dn_net_free(net);
}

static void test_failing_rank_stops_every_rank(void **state)
{
    MT_SKIP_UNLESS_READY();
    /* rank 0 alone writes checkpoints: a directory in the way of its
     * first one fails it at the end of epoch 1 */
    char path[700];
    snprintf(path, sizeof path, "%s/fail/m_last.weights", mt.dir);
    mkdir(tu_tmp_path("fail"), 0777);
    assert_int_equal(mkdir(path, 0777), 0);
    double t0 = now();
    int rc = mt_train(2, 60, "fail", "-set max_batches=0 -set epochs=3");
    assert_true(now() - t0 < 30);
    assert_int_not_equal(rc, 0);
    const char *out = mt_output_of("fail");
    assert_contains(out, "rank 0: ");
    assert_contains(out, "m_last.weights");
    assert_contains(out, "rank 1: stopped because rank 0 failed: ");
    /* the batch lines of epoch 1 only */
    assert_contains(out, "6, 1.000: ");
    assert_null(strstr(out, "7, 1.167: "));
}

static void test_unshareable_batch_is_refused(void **state)
{
    MT_SKIP_UNLESS_READY();
    int rc = mt_train(2, 60, "odd", "-set batch=9");
    assert_int_not_equal(rc, 0);
    const char *out = mt_output_of("odd");
    assert_contains(out, "batch=9 with subdivisions=1 makes forward batches "
                         "of 9 images, which 2 processes cannot share");
    assert_null(strstr(out, "1, 0."));
}

static int setup(void **state)
{
    mt_setup("DARKNET_MPI", "the make MPI=1 build of bin/darknet", NULL, 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_two_ranks_match_one_process),
        cmocka_unit_test(test_adam_two_ranks_match_one_process),
        cmocka_unit_test(test_bn_sync_sgd_matches_with_statistics),
        cmocka_unit_test(test_bn_sync_adam_matches_with_statistics),
        cmocka_unit_test(test_two_rank_checkpoint_resumes_in_one),
        cmocka_unit_test(test_one_process_checkpoint_resumes_in_two),
        cmocka_unit_test(test_killed_rank_ends_the_job),
        cmocka_unit_test(test_failing_rank_stops_every_rank),
        cmocka_unit_test(test_unshareable_batch_is_refused),
    };
    return cmocka_run_group_tests_name("mpi", tests, setup, NULL);
}
