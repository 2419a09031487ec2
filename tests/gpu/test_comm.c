/*
 * test_comm.c - the NCCL communicator (darknet/src/comm_nccl.c, the
 * interface of comm.h) over two devices: all_reduce_sum leaves the sum of
 * both buffers on both, broadcast leaves the root's buffer on both (from
 * either root), every buffer in place; a root that is no rank is an error.
 * Skips with fewer than two devices or in a build without NCCL.
 */
#include <stdio.h>
#include <string.h>

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

static void describes_two_local_ranks(void **state)
{
    fixture *f = *state;
    assert_string_equal(f->comm->ops->name, "nccl");
    assert_int_equal(f->comm->rank, 0);
    assert_int_equal(f->comm->size, 2);
    assert_int_equal(f->comm->local, 2);
    assert_null(f->comm->ops->agree_failure);
}

static void all_reduce_sums_in_place(void **state)
{
    fixture *f = *state;
    const float v[2][N] = {{1, 2, 3, 4, 5}, {10, 20, 30, 40, -5}};
    const float sum[N] = {11, 22, 33, 44, 0};
    dn_error err;
    put(f, v);
    assert_int_equal(f->comm->ops->all_reduce_sum(f->comm, f->bufs, N, &err), 0);
    expect(f, sum);
}

static void broadcast_copies_the_root(void **state)
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

static void broadcast_from_no_rank_fails(void **state)
{
    fixture *f = *state;
    dn_error err;
    assert_int_equal(f->comm->ops->broadcast(f->comm, f->bufs, N, 2, &err), -1);
    assert_non_null(strstr(err.msg, "root 2"));
}

int main(void)
{
    if (gt_no_device("test_comm"))
        return 0;
#ifndef DN_NCCL
    printf("test_comm: skipped: built without NCCL (NCCL=0)\n");
    return 0;
#endif
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count < 2) {
        printf("test_comm: skipped: %d CUDA device(s); the communicator "
               "needs two\n", count);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(describes_two_local_ranks),
        cmocka_unit_test(all_reduce_sums_in_place),
        cmocka_unit_test(broadcast_copies_the_root),
        cmocka_unit_test(broadcast_from_no_rank_fails),
    };
    int rc = cmocka_run_group_tests_name("communicator", tests, setup,
                                         teardown);
    dn_gpu_ctx_release_all();
    return rc;
}
