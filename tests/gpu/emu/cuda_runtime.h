/*
 * cuda_runtime.h - a CPU emulation of the part of the CUDA runtime this
 * framework uses, so that the GPU backend's own code (every kernel of
 * darknet/src/<layer>.cu, the device-resident network of network_gpu.c, the
 * optimiser kernel) runs, and is tested against the CPU, on a machine
 * without a GPU. It is a test tool, not a backend: it is slow, and it says
 * nothing about cuDNN or about speed. tests/gpu/emu/README.md says what it
 * checks and what it cannot.
 *
 * Model:
 *  - Device memory is host memory; every allocation is recorded, so a copy
 *    whose direction or bounds disagree with its pointers is an error (as
 *    it is on a GPU, where it would read garbage or fault).
 *  - Streams are queues. A kernel launch, an async copy or memset, a cuBLAS
 *    call is queued and runs only when the host synchronises (stream or
 *    device synchronise, a blocking cudaMemcpy/cudaMemset, cudaFree), so a
 *    host that reads a result before it waits for it sees stale memory, as
 *    it would on a GPU. Kernel arguments are taken at the launch.
 *  - A kernel runs block by block; each thread of a block is a fiber
 *    (ucontext), so __syncthreads and __shfl_down_sync really wait for the
 *    other threads. A barrier that not every thread reaches (a thread
 *    returned early, a shuffle inside a partial warp) is reported and
 *    stops the program, where a GPU would hang or return garbage.
 *  - DN_EMU_ORDER=reverse runs blocks and threads in reverse order, which
 *    changes the result of a kernel with a race between threads.
 *
 * Built only by `make GPU=1 EMU=1` (tests/gpu/run.sh --emu), which puts
 * this directory first on the include path instead of CUDA's.
 */
#ifndef DN_EMU_CUDA_RUNTIME_H
#define DN_EMU_CUDA_RUNTIME_H

#include <stddef.h>

#define DN_CUDA_EMU 1

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorLaunchFailure = 719
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

typedef struct dn_emu_stream *cudaStream_t;

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor;
    int multiProcessorCount;
    int maxThreadsPerBlock;
    int warpSize;
};

#define cudaHostAllocDefault 0u
#define cudaHostAllocPortable 1u

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

cudaError_t cudaStreamCreate(cudaStream_t *stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);

cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes,
                       enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes,
                            enum cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src,
                              size_t spitch, size_t width, size_t height,
                              enum cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes,
                            cudaStream_t stream);

cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);

/* ---- what the program asked of the device so far (tests read it: the
 * emulator's alone; CUDA has no such call) */
struct dn_emu_counts {
    long launches;     /* kernels queued */
    long library_calls; /* cuBLAS, cuDNN and NCCL operations queued */
    long host_waits;   /* calls that made the host wait for the device */
    long h2d_bytes, d2h_bytes, d2d_bytes; /* copied, by direction */
    long allocations;  /* cudaMalloc and cudaHostAlloc */
};
void dn_emu_counts_get(struct dn_emu_counts *out);

/* ---- for the other emulated libraries (cublas_v2.h, nccl.h) */
/* Run everything queued, on every stream. */
void dn_emu_drain(void);
/* Stop the program with an emulator error (a GPU would fault or hang). */
void dn_emu_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* 1 if [p, p + bytes) lies inside one device allocation */
int dn_emu_is_device(const void *p, size_t bytes);

#ifdef __cplusplus
}
#endif

/* ------------------------------------------------ kernels (C++ only) */
#ifdef __cplusplus
#include <functional>
#include <math.h>
#include <stdint.h>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__
/* Blocks run one at a time, so one static array per declaration is the
 * block's shared memory. */
#define __shared__ static

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

struct dn_emu_fiber;
struct dn_emu_block_state {
    uint3 block_idx;
    dim3 block_dim, grid_dim;
    dn_emu_fiber *self;
};
extern dn_emu_block_state dn_emu_now;
uint3 dn_emu_thread_idx(void);

#define threadIdx (dn_emu_thread_idx())
#define blockIdx (dn_emu_now.block_idx)
#define blockDim (dn_emu_now.block_dim)
#define gridDim (dn_emu_now.grid_dim)

/* CUDA's device min and max */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

void __syncthreads(void);
/* A shuffle: publish 8 bytes, wait for the warp, read lane src's value. */
uint64_t dn_emu_shfl_down(unsigned mask, uint64_t bits, unsigned delta, int width);

template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    uint64_t bits = 0;
    __builtin_memcpy(&bits, &v, sizeof v);
    bits = dn_emu_shfl_down(mask, bits, delta, width);
    T r;
    __builtin_memcpy(&r, &bits, sizeof r);
    return r;
}

struct dn_emu_config {
    dim3 grid, block;
    size_t shared;
    cudaStream_t stream;
};
inline dn_emu_config dn_emu_cfg(dim3 grid, dim3 block, size_t shared = 0,
                                cudaStream_t stream = 0)
{
    return dn_emu_config{grid, block, shared, stream};
}

/* Queue one operation of an emulated library on a stream. */
void dn_emu_enqueue_library_call(cudaStream_t stream, std::function<void()> body);

/* Queue a kernel: every thread of the grid runs body(), which calls the
 * kernel with the arguments copied at the launch. */
void dn_emu_launch_body(const dn_emu_config &cfg, const char *name,
                        std::function<void()> body);

template <typename K> struct dn_emu_launcher {
    K kernel;
    dn_emu_config cfg;
    const char *name;
    template <typename... A> void operator()(A &&...args)
    {
        auto saved = std::make_tuple(std::decay_t<A>(std::forward<A>(args))...);
        K k = kernel;
        dn_emu_launch_body(cfg, name, [k, saved]() { std::apply(k, saved); });
    }
};
template <typename K>
inline dn_emu_launcher<K> dn_emu_launch(K kernel, dn_emu_config cfg,
                                        const char *name)
{
    return dn_emu_launcher<K>{kernel, cfg, name};
}
#endif /* __cplusplus */

#endif
