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

#include "testutil.h"

#define BOUND 2e-4
/* Adam at its usual rate (the cfg's 0.05 is SGD's) */
#define ADAM_RATE(optimiser) (*(optimiser) == '1' ? " -set learning_rate=0.001" : "")

static const char *NET =
    "[net]\nbatch=16\nsubdivisions=1\nheight=32\nwidth=32\nchannels=3\n"
    "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\npolicy=constant\n"
    "max_batches=5\nseed=7\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=2\npad=1\n"
    "activation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\n"
    "activation=leaky\n"
    "[connected]\noutput=10\nactivation=linear\n"
    "[softmax]\n";

static char darknet[1024], dir[600], skip_why[256];

static int have_mpirun(void)
{
    return system("command -v mpirun > /dev/null 2>&1") == 0;
}

static int setup(void **state)
{
    const char *d = getenv("DARKNET_MPI");
    if (!have_mpirun())
        snprintf(skip_why, sizeof skip_why, "no mpirun (apt-get install "
                 "openmpi-bin libopenmpi-dev)");
    else if (!d || access(d, X_OK) != 0)
        snprintf(skip_why, sizeof skip_why, "DARKNET_MPI (the make MPI=1 "
                 "build of bin/darknet) is not set or not built");
    else if (d[0] == '/')
        snprintf(darknet, sizeof darknet, "%s", d);
    else {
        char cwd[512];
        snprintf(darknet, sizeof darknet, "%s/%s", getcwd(cwd, sizeof cwd), d);
    }
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    char path[700], text[2400];
    snprintf(path, sizeof path, "%s/train.bin", dir);
    tu_write_cifar_pattern(path, 96, 1);
    snprintf(path, sizeof path, "%s/valid.bin", dir);
    tu_write_cifar_pattern(path, 16, 2);
    snprintf(text, sizeof text, "classes=10\ntrain=%s/train.bin\n"
             "valid=%s/valid.bin\nbackup=%s/unused\n", dir, dir, dir);
    tu_write_file("m.data", text);
    tu_write_file("m.cfg", NET);
    /* ranks as root, several ranks on few cores, one thread each */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    return 0;
}

#define SKIP_WITHOUT_MPI()                                                    \
    do {                                                                      \
        if (skip_why[0]) {                                                    \
            print_message("skipped: %s\n", skip_why);                        \
            skip();                                                           \
        }                                                                     \
    } while (0)

static const char *launcher(int ranks)
{
    static char buf[128];
    if (ranks <= 1)
        return "";
    snprintf(buf, sizeof buf, "mpirun --oversubscribe -np %d ", ranks);
    return buf;
}

/* Trains on `ranks` processes (1: no mpirun) into backup dir `out` with
 * extra words; output in dir/out.txt. Returns the exit status. */
static int train(int ranks, const char *out, const char *extra)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && timeout 60 %s%s classifier train "
             "m.data m.cfg -backup %s %s > %s.txt 2>&1", dir, launcher(ranks),
             darknet, out, extra, out);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static const char *output_of(const char *out)
{
    static char text[65536];
    char path[700];
    snprintf(path, sizeof path, "%s/%s.txt", dir, out);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    return text;
}

static dn_net *load_net(const char *weights)
{
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    char path[700];
    snprintf(path, sizeof path, "%s/m.cfg", dir);
    assert_int_equal(dn_cfg_load(path, &cfg, &err), 0);
    if (dn_net_make(cfg, NULL, &net, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    snprintf(path, sizeof path, "%s/%s", dir, weights);
    if (dn_weights_load(net, path, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    return net;
}

static int is_param(const dn_layer *l, const float *t)
{
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].w == t)
            return 1;
    return 0;
}

/* The saved tensors of two weight files agree within BOUND (the rolling
 * statistics too when stats is set) and both files hold the same clock. */
static void assert_weights_close(const char *a_path, const char *b_path,
                                 int stats)
{
    dn_net *a = load_net(a_path), *b = load_net(b_path);
    assert_true(a->seen == b->seen);
    double worst = 0;
    long compared = 0;
    for (int i = 0; i < a->n; i++) {
        const dn_layer *la = &a->layers[i], *lb = &b->layers[i];
        for (int k = 0; k < la->n_saved; k++) {
            if (!stats && !is_param(la, la->saved[k]))
                continue;
            for (long j = 0; j < la->saved_n[k]; j++) {
                double x = la->saved[k][j], y = lb->saved[k][j];
                double dev = fabs(x - y) / (fabs(x) + 0.01);
                if (!(dev <= BOUND))
                    print_error("%s vs %s: layer %d tensor %d [%ld]: %.9g vs "
                                "%.9g\n", a_path, b_path, i, k, j, x, y);
                assert_true(dev <= BOUND);
                worst = dev > worst ? dev : worst;
                compared++;
            }
        }
    }
    print_message("%s vs %s: %ld values, largest |a-b|/(|a|+0.01) = %.2g "
                  "(bound %g)\n", a_path, b_path, compared, worst, BOUND);
    dn_net_free(a);
    dn_net_free(b);
}

static void expect_ok(int rc, const char *out)
{
    if (rc != 0)
        print_error("exit %d:\n%s\n", rc, output_of(out));
    assert_int_equal(rc, 0);
}

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
    expect_ok(train(1, one, set1), one);
    expect_ok(train(2, two, set), two);
    snprintf(w1, sizeof w1, "%s/m_final.weights", one);
    snprintf(w2, sizeof w2, "%s/m_final.weights", two);
    assert_weights_close(w1, w2, 0);
}

static void test_sgd_two_ranks_match_one_process(void **state)
{
    SKIP_WITHOUT_MPI();
    check_per_rank("0", "sgd");
}

static void test_adam_two_ranks_match_one_process(void **state)
{
    SKIP_WITHOUT_MPI();
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
    expect_ok(train(1, one, set), one);
    expect_ok(train(2, two, set), two);
    snprintf(w1, sizeof w1, "%s/m_final.weights", one);
    snprintf(w2, sizeof w2, "%s/m_final.weights", two);
    assert_weights_close(w1, w2, 1);
    /* the printed lines are one process's: the same batches and clock */
    assert_contains(output_of(two), "5, 0.833: ");
    assert_contains(output_of(two), "80 images");
}

static void test_bn_sync_sgd_matches_with_statistics(void **state)
{
    SKIP_WITHOUT_MPI();
    check_bn_sync("0", "syncsgd");
}

static void test_bn_sync_adam_matches_with_statistics(void **state)
{
    SKIP_WITHOUT_MPI();
    check_bn_sync("1", "syncadam");
}

static int exists(const char *name)
{
    char path[700];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* 1 epoch on `first` ranks, then resumed to 2 epochs on `then` ranks,
 * against 2 epochs on one process. */
static void check_resume(int first, int then, const char *name)
{
    const char *keys = "-set max_batches=0 -set epochs=2 -set bn_sync=1 "
                       "-set adam=1 -set learning_rate=0.001";
    char a[64], b[64], extra[512], w[128];
    if (!exists("straight/m_final.weights"))
        expect_ok(train(1, "straight", keys), "straight");
    snprintf(a, sizeof a, "%s_a", name);
    snprintf(b, sizeof b, "%s_b", name);
    snprintf(extra, sizeof extra, "%s -set epochs=1", keys);
    expect_ok(train(first, a, extra), a);
    snprintf(extra, sizeof extra, "%s/m_final.weights %s", a, keys);
    expect_ok(train(then, b, extra), b);
    char line[128];
    snprintf(line, sizeof line, "resuming a checkpoint of %d process%s with "
             "%d", first, first > 1 ? "es" : "", then);
    assert_contains(output_of(b), line);
    snprintf(w, sizeof w, "%s/m_final.weights", b);
    assert_weights_close("straight/m_final.weights", w, 1);
}

static void test_two_rank_checkpoint_resumes_in_one(void **state)
{
    SKIP_WITHOUT_MPI();
    check_resume(2, 1, "r21");
}

static void test_one_process_checkpoint_resumes_in_two(void **state)
{
    SKIP_WITHOUT_MPI();
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
    SKIP_WITHOUT_MPI();
    /* each rank notes its pid (exec keeps it); a long run */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && exec timeout 120 mpirun --oversubscribe "
             "-np 2 sh -c 'echo $$ > kill.pid.$OMPI_COMM_WORLD_RANK; exec %s "
             "classifier train m.data m.cfg -backup kill -set max_batches=0 "
             "-set epochs=100000' > kill.txt 2>&1", dir, darknet);
    pid_t job = fork();
    assert_true(job >= 0);
    if (job == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    double t0 = now();
    while (!(exists("kill/m_last.weights") && exists("kill.pid.1")) &&
           now() - t0 < 60)
        usleep(20000);
    assert_true(exists("kill/m_last.weights"));
    usleep(200000); /* mid-epoch: an epoch is a few milliseconds */
    char path[700];
    snprintf(path, sizeof path, "%s/kill.pid.1", dir);
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
    snprintf(path, sizeof path, "%s/kill.pid.0", dir);
    f = fopen(path, "r");
    int rank0 = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &rank0), 1);
    fclose(f);
    assert_false(alive(rank0));
    assert_contains(output_of("kill"), "signal 9");
    /* the checkpoint on disk loads, with its state */
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    snprintf(path, sizeof path, "%s/m.cfg", dir);
    assert_int_equal(dn_cfg_load(path, &cfg, &err), 0);
    assert_int_equal(dn_net_make(cfg, NULL, &net, &err), 0);
    snprintf(path, sizeof path, "%s/kill/m_last.weights", dir);
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
    SKIP_WITHOUT_MPI();
    /* rank 0 alone writes checkpoints: a directory in the way of its
     * first one fails it at the end of epoch 1 */
    char path[700];
    snprintf(path, sizeof path, "%s/fail/m_last.weights", dir);
    mkdir(tu_tmp_path("fail"), 0777);
    assert_int_equal(mkdir(path, 0777), 0);
    double t0 = now();
    int rc = train(2, "fail", "-set max_batches=0 -set epochs=3");
    assert_true(now() - t0 < 30);
    assert_int_not_equal(rc, 0);
    const char *out = output_of("fail");
    assert_contains(out, "rank 0: ");
    assert_contains(out, "m_last.weights");
    assert_contains(out, "rank 1: stopped because rank 0 failed: ");
    /* the batch lines of epoch 1 only */
    assert_contains(out, "6, 1.000: ");
    assert_null(strstr(out, "7, 1.167: "));
}

static void test_unshareable_batch_is_refused(void **state)
{
    SKIP_WITHOUT_MPI();
    int rc = train(2, "odd", "-set batch=9");
    assert_int_not_equal(rc, 0);
    const char *out = output_of("odd");
    assert_contains(out, "batch=9 with subdivisions=1 makes forward batches "
                         "of 9 images, which 2 processes cannot share");
    assert_null(strstr(out, "1, 0."));
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
