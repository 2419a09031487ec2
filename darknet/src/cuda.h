/*
 * cuda.h - the runtime of the CUDA backend (GPU builds only: DN_GPU).
 *
 *  - One context per device (a stream, a cuBLAS handle and, with CUDNN=1, a
 *    cuDNN handle), created on first use and shared by every network on
 *    that device, as CUDA's own context is per process.
 *  - Checks that turn CUDA, cuBLAS, cuDNN and NCCL status codes into
 *    dn_error values naming the call, file and line. Nothing here exits.
 *    Code that returns void (a layer's forward_gpu) notes the first failure
 *    in its network; dn_net_check() and dn_net_sync() report it.
 *  - Device allocation helpers.
 *  - struct dn_gpu_net: the state of a device-resident network, and the
 *    accessors layer code (darknet/src/<name>_layer.cu) uses to reach it.
 *
 * Every kernel of a network runs on its context's one stream, in order, so
 * no event or barrier is needed between layers; the host waits once per
 * forward pass (network_gpu.c).
 */
#ifndef DN_CUDA_H
#define DN_CUDA_H

#ifdef DN_GPU

#include <cuda_runtime.h>
#include <cublas_v2.h>
#ifdef DN_CUDNN
#include <cudnn.h>
#endif

#include "darknet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dn_gpu_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
#ifdef DN_CUDNN
    cudnnHandle_t dnn;
#endif
    char name[256]; /* e.g. "NVIDIA H200" */
} dn_gpu_ctx;

/* The context of a device, created on first use (selects the device). */
int dn_gpu_ctx_get(int device, dn_gpu_ctx **out, dn_error *err);
/* Destroy every context (tests and tools that want a clean exit). */
void dn_gpu_ctx_release_all(void);

/* ------------------------------------------------------------- checks */

/* 0 if ok; else -1 with "file:line: call: message" in err. */
int dn_cuda_ok(cudaError_t e, const char *call, const char *file, int line,
               dn_error *err);
int dn_cublas_ok(cublasStatus_t s, const char *call, const char *file,
                 int line, dn_error *err);
#define DN_CUDA_OK(call, err) dn_cuda_ok((call), #call, __FILE__, __LINE__, (err))
#define DN_CUBLAS_OK(call, err) \
    dn_cublas_ok((call), #call, __FILE__, __LINE__, (err))
#ifdef DN_CUDNN
int dn_cudnn_ok(cudnnStatus_t s, const char *call, const char *file, int line,
                dn_error *err);
#define DN_CUDNN_OK(call, err) dn_cudnn_ok((call), #call, __FILE__, __LINE__, (err))
#endif

/* Keep e as the network's first device error (later ones are dropped). */
void dn_gpu_note(dn_net *net, const dn_error *e);

/* In void code: check a call, noting a failure in net. */
#define DN_GPU_TRY(net, check)                                               \
    do {                                                                     \
        dn_error e_;                                                         \
        if (check)                                                           \
            dn_gpu_note((net), &e_);                                         \
    } while (0)
#define DN_GPU_CUDA(net, call) DN_GPU_TRY(net, DN_CUDA_OK(call, &e_))
#define DN_GPU_CUBLAS(net, call) DN_GPU_TRY(net, DN_CUBLAS_OK(call, &e_))
#ifdef DN_CUDNN
#define DN_GPU_CUDNN(net, call) DN_GPU_TRY(net, DN_CUDNN_OK(call, &e_))
#endif
/* after a kernel launch: a bad configuration shows here, without waiting */
#define DN_GPU_LAUNCHED(net) DN_GPU_CUDA(net, cudaGetLastError())

/* --------------------------------------------------------- allocation */

/* Zeroed device memory (at least 1 byte), or NULL with err set. */
void *dn_gpu_bytes(size_t bytes, dn_error *err);
float *dn_gpu_floats(size_t n, dn_error *err);
void dn_gpu_free(void *p); /* NULL is fine */

/* The make and free of a layer twin with no device state of its own
 * (dn_layer_gpu_ops: all four are set). */
int dn_gpu_make_stateless(dn_layer *l, dn_net *net, dn_error *err);
void dn_gpu_free_stateless(dn_layer *l);

/* Device allocations are aligned to this many bytes inside the arenas. */
#define DN_GPU_ALIGN 256

/* --------------------------------------------- a device-resident network */

/* One contiguous run of parameters for the optimiser kernel (network.cu):
 * every chunk lies inside one dn_param, so it has one decay flag. */
typedef struct dn_gpu_chunk {
    long offset; /* floats into the arenas */
    int n;
    int decay;
} dn_gpu_chunk;

#define DN_GPU_CHUNK 4096

/* Pinned host staging for what crosses the bus every forward pass: the
 * input batch and truth going up, the last layer's output and each loss
 * layer's per-image losses (one row of batch floats per loss layer)
 * coming back (network_gpu.c). */
typedef struct dn_gpu_staging {
    float *h_input, *h_truth, *h_output, *h_cost;
} dn_gpu_staging;

struct dn_gpu_net {
    dn_gpu_ctx *ctx;
    int failed;
    dn_error err;   /* the first device error since the last check */
    char name[320]; /* dn_net_device_name() */
    /* Parameters: one arena each for weights, gradients, momentum (and
     * Adam's second moment), in layer and parameter order, every slice
     * aligned; one kernel updates them all and one all-reduce sums the
     * gradients of replicas. */
    float *w, *grad, *m, *v;
    size_t arena_floats;
    dn_gpu_chunk *chunks; /* device table */
    int n_chunks;
    float *outputs, *deltas; /* arenas of every layer's output_gpu, delta_gpu */
    size_t delta_floats;
    float **extra; /* saved tensors that are not parameters (BN statistics) */
    int n_extra;
    dn_gpu_staging stage;
    int n_loss;   /* layers with is_loss */
};

static inline cudaStream_t dn_gpu_stream(const dn_net *net)
{
    return net->gpu_state->ctx->stream;
}

static inline cublasHandle_t dn_gpu_blas(const dn_net *net)
{
    return net->gpu_state->ctx->blas;
}

#ifdef DN_CUDNN
static inline cudnnHandle_t dn_gpu_dnn(const dn_net *net)
{
    return net->gpu_state->ctx->dnn;
}
#endif

/* The device twin of a host tensor of layer l: a parameter's w, or one of
 * its saved[] tensors; NULL if l has no such tensor. */
float *dn_gpu_twin(const dn_layer *l, const float *host);
/* The parameter of layer l whose host weights are w (NULL if none). */
dn_param *dn_gpu_param(dn_layer *l, const float *w);
/* The shared workspace from byte `offset` (offsets from dn_gpu_align). */
static inline void *dn_gpu_scratch(const dn_net *net, size_t offset)
{
    return (char *)net->workspace_gpu + offset;
}
static inline size_t dn_gpu_align(size_t bytes)
{
    return (bytes + DN_GPU_ALIGN - 1) / DN_GPU_ALIGN * DN_GPU_ALIGN;
}

/* Tests: copy every device tensor of a single-device net back to the host
 * (outputs, deltas, gradients, input_delta, saved tensors, optimiser
 * state), and set a layer's delta on the device from its host copy. */
int dn_net_pull_all(dn_net *net, dn_error *err);
int dn_net_push_delta(dn_net *net, int layer, dn_error *err);

/* The optimiser over the arenas (network.cu): dn_net_update's formulas. */
typedef struct dn_gpu_update_args {
    int adam;
    float lr, images, decay, momentum; /* images: B of lr / B */
    float b1, b2, eps, c1, c2;         /* Adam, with bias corrections */
} dn_gpu_update_args;
void dn_gpu_update(dn_net *net, const dn_gpu_update_args *a);

#ifdef __cplusplus
}
#endif

#endif /* DN_GPU */
#endif
