/*
 * test_emu.cu - the CUDA emulator (tests/gpu/emu) does what the GPU tests
 * rely on: barriers and shuffles really wait, launches are checked, work
 * waits in its stream until the host synchronises, copies are checked
 * against the allocations, an early return before a barrier stops the
 * program, the thread order can be reversed, cuBLAS is column-major, and
 * an all-reduce sums its ranks. Built and run only by `make GPU=1 EMU=1`
 * (tests/gpu/run.sh --emu).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

extern "C" { /* cmocka.h has no C++ guard */
#include <cmocka.h>
}

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

static float *device_floats(size_t n)
{
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, n * sizeof(float)), cudaSuccess);
    return (float *)p;
}

/* sums[block] = sum of in[block * blockDim + t], through one shuffle tree
 * per warp and shared memory between warps */
__global__ void block_sums(const float *in, float *sums)
{
    __shared__ float warp_sums[32];
    float v = in[blockIdx.x * blockDim.x + threadIdx.x];
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0)
        warp_sums[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0;
        for (unsigned w = 0; w < blockDim.x / 32; w++)
            s += warp_sums[w];
        sums[blockIdx.x] = s;
    }
}

static void shuffles_and_barriers_sum_blocks(void **state)
{
    const int blocks = 3, threads = 128, n = blocks * threads;
    float host[384], sums[3];
    for (int i = 0; i < n; i++)
        host[i] = (float)(i % 7);
    float *in = device_floats(n), *out = device_floats(blocks);
    assert_int_equal(cudaMemcpy(in, host, sizeof host, cudaMemcpyHostToDevice), cudaSuccess);
    block_sums<<<blocks, threads>>>(in, out);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_int_equal(cudaMemcpy(sums, out, sizeof sums, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int b = 0; b < blocks; b++) {
        float want = 0;
        for (int t = 0; t < threads; t++)
            want += host[b * threads + t];
        assert_true(sums[b] == want);
    }
    cudaFree(in);
    cudaFree(out);
}

__global__ void set_one(float *x) { x[threadIdx.x] = 1; }

static void bad_launch_is_an_error(void **state)
{
    float *x = device_floats(2048);
    set_one<<<1, 1025>>>(x);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
    set_one<<<0, 32>>>(x);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
    assert_int_equal(cudaGetLastError(), cudaSuccess); /* read clears it */
    cudaFree(x);
}

static void work_waits_for_the_host_to_synchronise(void **state)
{
    cudaStream_t s;
    float *pinned, *x = device_floats(32);
    assert_int_equal(cudaStreamCreate(&s), cudaSuccess);
    assert_int_equal(cudaHostAlloc((void **)&pinned, 32 * sizeof(float), cudaHostAllocPortable), cudaSuccess);
    for (int i = 0; i < 32; i++)
        pinned[i] = -1;
    set_one<<<1, 32, 0, s>>>(x);
    assert_int_equal(cudaMemcpyAsync(pinned, x, 32 * sizeof(float), cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_true(pinned[5] == -1); /* not yet: the host has not waited */
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(pinned[5] == 1);
    /* a pageable destination: the copy itself waits */
    float pageable[32] = {0};
    assert_int_equal(cudaMemsetAsync(x, 0, 32 * sizeof(float), s), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(pageable, x, sizeof pageable, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_true(pageable[5] == 0);
    cudaFreeHost(pinned);
    cudaStreamDestroy(s);
    cudaFree(x);
}

static void copies_are_checked_against_allocations(void **state)
{
    float host[8] = {0}, *x = device_floats(8);
    /* host pointer as destination of a host-to-device copy */
    assert_int_equal(cudaMemcpy(host, host, sizeof host, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    (void)cudaGetLastError();
    /* one float past the allocation */
    assert_int_equal(cudaMemcpy(x + 1, host, sizeof host, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    (void)cudaGetLastError();
    assert_int_equal(cudaMemcpy(x, host, sizeof host, cudaMemcpyHostToDevice), cudaSuccess);
    cudaFree(x);
}

__global__ void early_return_then_barrier(float *x)
{
    if (threadIdx.x == 3)
        return;
    __syncthreads();
    x[threadIdx.x] = 2;
}

static void barrier_after_early_return_stops_the_program(void **state)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 2); /* the emulator's message is expected */
        float *x = device_floats(32);
        early_return_then_barrier<<<1, 32>>>(x);
        cudaDeviceSynchronize();
        _exit(0); /* should not get here */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

__global__ void last_writer_wins(int *x) { *x = blockIdx.x * blockDim.x + threadIdx.x; }

static void reverse_order_reverses_blocks_and_threads(void **state)
{
    int got, *x;
    assert_int_equal(cudaMalloc((void **)&x, sizeof(int)), cudaSuccess);
    setenv("DN_EMU_ORDER", "forward", 1);
    last_writer_wins<<<2, 64>>>(x);
    cudaMemcpy(&got, x, sizeof got, cudaMemcpyDeviceToHost);
    assert_int_equal(got, 127);
    setenv("DN_EMU_ORDER", "reverse", 1);
    last_writer_wins<<<2, 64>>>(x);
    cudaMemcpy(&got, x, sizeof got, cudaMemcpyDeviceToHost);
    assert_int_equal(got, 0);
    unsetenv("DN_EMU_ORDER");
    cudaFree(x);
}

static void cublas_is_column_major(void **state)
{
    /* A (2x3) and B (3x2) column-major; C = A B by hand */
    const float a[6] = {1, 4, 2, 5, 3, 6}, b[6] = {7, 9, 11, 8, 10, 12};
    const float want[4] = {58, 139, 64, 154};
    float c[4], *da = device_floats(6), *db = device_floats(6), *dc = device_floats(4);
    cublasHandle_t h;
    const float one = 1, zero = 0;
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    cudaMemcpy(db, b, sizeof b, cudaMemcpyHostToDevice);
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, da, 2, db, 3, &zero, dc, 2), CUBLAS_STATUS_SUCCESS);
    cudaMemcpy(c, dc, sizeof c, cudaMemcpyDeviceToHost);
    assert_memory_equal(c, want, sizeof want);
    /* lda below the rows of A is refused, as cuBLAS refuses it */
    assert_int_equal(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, da, 1, db, 3, &zero, dc, 2), CUBLAS_STATUS_INVALID_VALUE);
    cublasDestroy(h);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
}

static void all_reduce_sums_the_ranks(void **state)
{
    ncclComm_t comms[2];
    const int devices[2] = {0, 1};
    float *x[2], got[3];
    const float v[2][3] = {{1, 2, 3}, {10, 20, 30}};
    assert_int_equal(ncclCommInitAll(comms, 2, devices), ncclSuccess);
    for (int r = 0; r < 2; r++) {
        x[r] = device_floats(3);
        cudaMemcpy(x[r], v[r], sizeof v[r], cudaMemcpyHostToDevice);
    }
    ncclGroupStart();
    for (int r = 0; r < 2; r++)
        assert_int_equal(ncclAllReduce(x[r], x[r], 3, ncclFloat, ncclSum, comms[r], NULL), ncclSuccess);
    ncclGroupEnd();
    cudaDeviceSynchronize();
    for (int r = 0; r < 2; r++) {
        cudaMemcpy(got, x[r], sizeof got, cudaMemcpyDeviceToHost);
        assert_true(got[0] == 11 && got[1] == 22 && got[2] == 33);
        cudaFree(x[r]);
        ncclCommDestroy(comms[r]);
    }
}

/* ncclCommInitRank: one rank in this process works (a sum over one rank
 * is the buffer); an id no ncclGetUniqueId drew is refused; ranks in other
 * processes need MPI running (outside mpirun: a usage error, not a hang) */
static void comm_init_rank_checks_its_id_and_processes(void **state)
{
    ncclUniqueId id, foreign;
    ncclComm_t comm;
    float *x = device_floats(2), got[2];
    const float v[2] = {3, -4};
    assert_int_equal(ncclGetUniqueId(&id), ncclSuccess);
    memset(&foreign, 7, sizeof foreign);
    assert_int_equal(ncclCommInitRank(&comm, 1, foreign, 0), ncclInvalidArgument);
    assert_int_equal(ncclCommInitRank(&comm, 2, id, 2), ncclInvalidArgument);
    assert_int_equal(ncclCommInitRank(&comm, 2, id, 1), ncclInvalidUsage);
    assert_int_equal(ncclCommInitRank(&comm, 1, id, 0), ncclSuccess);
    cudaMemcpy(x, v, sizeof v, cudaMemcpyHostToDevice);
    assert_int_equal(ncclAllReduce(x, x, 2, ncclFloat, ncclSum, comm, NULL), ncclSuccess);
    cudaDeviceSynchronize();
    cudaMemcpy(got, x, sizeof got, cudaMemcpyDeviceToHost);
    assert_true(got[0] == 3 && got[1] == -4);
    ncclCommDestroy(comm);
    cudaFree(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shuffles_and_barriers_sum_blocks),
        cmocka_unit_test(bad_launch_is_an_error),
        cmocka_unit_test(work_waits_for_the_host_to_synchronise),
        cmocka_unit_test(copies_are_checked_against_allocations),
        cmocka_unit_test(barrier_after_early_return_stops_the_program),
        cmocka_unit_test(reverse_order_reverses_blocks_and_threads),
        cmocka_unit_test(cublas_is_column_major),
        cmocka_unit_test(all_reduce_sums_the_ranks),
        cmocka_unit_test(comm_init_rank_checks_its_id_and_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
