/*
 * test_comm.c - the NCCL communicators (darknet/src/comm_nccl.c, the
 * interface of comm.h).
 *
 * Over two devices of this process: all_reduce_sum leaves the sum of both
 * buffers on both, broadcast leaves the root's buffer on both (from either
 * root), every buffer in place; a root that is no rank is an error. Skips
 * with fewer than two devices.
 *
 * One device per process (dn_comm_nccl_mpi_make), bootstrapped over a host
 * communicator that records its calls, with one process: rank 0's NCCL id
 * travels over the host (one broadcast of NCCL_UNIQUE_ID_BYTES floats from
 * rank 0), each step is agreed over the host (two agreements), the result
 * agrees failures through the host, and its collectives over one rank leave
 * the buffer; a host of several replicas per process is refused. (Two
 * processes: tests/gpu/test_gpu_mpi.c.) Skips in a build without NCCL.
 */
#include <stdio.h>
#include <string.h>

#ifdef DN_NCCL
#include <nccl.h>
#endif

#include "comm_nccl.h"
#include "cuda.h"
#include "gpu_testutil.h"

#define N 5

typedef struct fixture {
    dn_comm *comm;
    float *bufs[2]; /* device buffers of N floats, one per device */
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    const int devices[2] = {0, 1};
    dn_error err;
    if (dn_comm_nccl_make(2, devices, &f.comm, &err)) {
        print_error("%s\n", err.msg);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (!(f.bufs[i] = dn_gpu_floats(N, &err))) {
            print_error("%s\n", err.msg);
            return -1;
        }
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 2; i++)
        dn_gpu_free(f->bufs[i]);
    if (f->comm)
        f->comm->ops->free(f->comm);
    return 0;
}

static void put(fixture *f, const float v[2][N])
{
    for (int i = 0; i < 2; i++)
        assert_int_equal(cudaMemcpy(f->bufs[i], v[i], sizeof v[i],
                                    cudaMemcpyHostToDevice), cudaSuccess);
}

/* waits for both devices, then checks both buffers against want */
static void expect(fixture *f, const float want[N])
{
    for (int i = 0; i < 2; i++) {
        float got[N];
        assert_int_equal(cudaSetDevice(i), cudaSuccess);
        assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
        assert_int_equal(cudaMemcpy(got, f->bufs[i], sizeof got,
                                    cudaMemcpyDeviceToHost), cudaSuccess);
        for (int j = 0; j < N; j++)
            if (got[j] != want[j]) {
                print_error("replica %d, element %d: got %g, want %g\n", i, j,
                            (double)got[j], (double)want[j]);
                fail();
            }
    }
}

static void test_describes_two_local_ranks(void **state)
{
    fixture *f = *state;
    assert_string_equal(f->comm->ops->name, "nccl");
    assert_int_equal(f->comm->rank, 0);
    assert_int_equal(f->comm->size, 2);
    assert_int_equal(f->comm->local, 2);
    assert_null(f->comm->ops->agree_failure);
}

static void test_all_reduce_sums_in_place(void **state)
{
    fixture *f = *state;
    const float v[2][N] = {{1, 2, 3, 4, 5}, {10, 20, 30, 40, -5}};
    const float sum[N] = {11, 22, 33, 44, 0};
    dn_error err;
    put(f, v);
    assert_int_equal(f->comm->ops->all_reduce_sum(f->comm, f->bufs, N, &err), 0);
    expect(f, sum);
}

static void test_broadcast_copies_the_root(void **state)
{
    fixture *f = *state;
    const float v[2][N] = {{1, 2, 3, 4, 5}, {-1, -2, -3, -4, -5}};
    dn_error err;
    for (int root = 0; root < 2; root++) {
        put(f, v);
        assert_int_equal(f->comm->ops->broadcast(f->comm, f->bufs, N, root,
                                                 &err), 0);
        expect(f, v[root]);
    }
}

static void test_broadcast_from_no_rank_fails(void **state)
{
    fixture *f = *state;
    dn_error err;
    assert_int_equal(f->comm->ops->broadcast(f->comm, f->bufs, N, 2, &err), -1);
    assert_non_null(strstr(err.msg, "root 2"));
}

/* ---------------------------------------- bootstrapped over a host */

/* A host communicator of one process on host memory, counting its calls. */
typedef struct host_log {
    int sums, broadcasts, agreements;
    size_t broadcast_n;
    int broadcast_root;
} host_log;

static int host_sum(dn_comm *c, float *const *bufs, size_t n, dn_error *err)
{
    ((host_log *)c->impl)->sums++;
    return 0;
}

static int host_broadcast(dn_comm *c, float *const *bufs, size_t n, int root,
                          dn_error *err)
{
    host_log *log = c->impl;
    log->broadcasts++;
    log->broadcast_n = n;
    log->broadcast_root = root;
    return 0;
}

static int host_agree(dn_comm *c, int failed, int *any, dn_error *err)
{
    ((host_log *)c->impl)->agreements++;
    *any = failed != 0;
    return 0;
}

static const dn_comm_ops host_ops = {
    .name = "test host",
    .all_reduce_sum = host_sum,
    .broadcast = host_broadcast,
    .agree_failure = host_agree,
};

static void test_one_rank_bootstraps_over_the_host(void **state)
{
    host_log log = {0};
    dn_comm host = {.ops = &host_ops, .rank = 0, .size = 1, .local = 1,
                    .impl = &log};
    dn_comm *c = NULL;
    dn_error err;
    if (dn_comm_nccl_mpi_make(&host, 0, &c, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_string_equal(c->ops->name, "nccl over mpi");
    assert_int_equal(c->rank, 0);
    assert_int_equal(c->size, 1);
    assert_int_equal(c->local, 1);
#ifdef DN_NCCL
    assert_int_equal(log.broadcasts, 1);
    assert_int_equal(log.broadcast_n, NCCL_UNIQUE_ID_BYTES);
    assert_int_equal(log.broadcast_root, 0);
#endif
    assert_int_equal(log.agreements, 2);
    /* failures are the host's to agree on */
    int any = -1;
    assert_non_null(c->ops->agree_failure);
    assert_int_equal(c->ops->agree_failure(c, 1, &any, &err), 0);
    assert_int_equal(any, 1);
    assert_int_equal(log.agreements, 3);
    /* one rank: the sum and the broadcast leave the device buffer */
    const float v[N] = {1, -2, 3, -4, 5};
    float *buf = dn_gpu_floats(N, &err), got[N];
    assert_non_null(buf);
    assert_int_equal(cudaMemcpy(buf, v, sizeof v, cudaMemcpyHostToDevice),
                     cudaSuccess);
    assert_int_equal(c->ops->all_reduce_sum(c, &buf, N, &err), 0);
    assert_int_equal(c->ops->broadcast(c, &buf, N, 0, &err), 0);
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_int_equal(cudaMemcpy(got, buf, sizeof got, cudaMemcpyDeviceToHost),
                     cudaSuccess);
    assert_memory_equal(got, v, sizeof v);
    assert_int_equal(log.sums, 0); /* the tensors never touch the host */
    dn_gpu_free(buf);
    c->ops->free(c);
}

static void test_host_of_several_replicas_is_refused(void **state)
{
    host_log log = {0};
    dn_comm host = {.ops = &host_ops, .rank = 0, .size = 2, .local = 2,
                    .impl = &log};
    dn_comm *c = NULL;
    dn_error err;
    assert_int_equal(dn_comm_nccl_mpi_make(&host, 0, &c, &err), -1);
    assert_null(c);
    assert_non_null(strstr(err.msg, "one replica per process"));
    assert_int_equal(log.broadcasts + log.agreements, 0);
}

int main(void)
{
    if (gt_no_device("test_comm"))
        return 0;
#ifndef DN_NCCL
    printf("test_comm: skipped: built without NCCL (NCCL=0)\n");
    return 0;
#endif
    const struct CMUnitTest over_host[] = {
        cmocka_unit_test(test_one_rank_bootstraps_over_the_host),
        cmocka_unit_test(test_host_of_several_replicas_is_refused),
    };
    int rc = cmocka_run_group_tests_name("nccl over a host communicator",
                                         over_host, NULL, NULL);
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count < 2) {
        printf("test_comm: two local ranks skipped: %d CUDA device(s); the "
               "communicator needs two\n", count);
        dn_gpu_ctx_release_all();
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describes_two_local_ranks),
        cmocka_unit_test(test_all_reduce_sums_in_place),
        cmocka_unit_test(test_broadcast_copies_the_root),
        cmocka_unit_test(test_broadcast_from_no_rank_fails),
    };
    rc |= cmocka_run_group_tests_name("communicator", tests, setup, teardown);
    dn_gpu_ctx_release_all();
    return rc;
}
