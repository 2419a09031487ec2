/*
 * cuda.c - the CUDA runtime of the GPU backend: device contexts, status
 * checks and allocation (see cuda.h). Compiled in every build; without
 * DN_GPU it holds nothing.
 */
#ifdef DN_GPU

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"

/* The contexts, indexed by device: created on first use, shared by every
 * network on the device (a stream and library handles cost milliseconds to
 * create and memory on the device). */
static dn_gpu_ctx *contexts[DN_MAX_GPUS];

int dn_cuda_ok(cudaError_t e, const char *call, const char *file, int line,
               dn_error *err)
{
    if (e == cudaSuccess)
        return 0;
    (void)cudaGetLastError(); /* clear a non-sticky error */
    return dn_fail(err, "%s:%d: %s: CUDA error %d (%s): %s", file, line, call,
                   (int)e, cudaGetErrorName(e), cudaGetErrorString(e));
}

int dn_cublas_ok(cublasStatus_t s, const char *call, const char *file,
                 int line, dn_error *err)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 0;
    return dn_fail(err, "%s:%d: %s: cuBLAS error %d (%s)", file, line, call,
                   (int)s, cublasGetStatusString(s));
}

#ifdef DN_CUDNN
int dn_cudnn_ok(cudnnStatus_t s, const char *call, const char *file, int line,
                dn_error *err)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return 0;
    return dn_fail(err, "%s:%d: %s: cuDNN error %d (%s)", file, line, call,
                   (int)s, cudnnGetErrorString(s));
}
#endif

void dn_gpu_note(dn_net *net, const dn_error *e)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g || g->failed)
        return;
    g->failed = 1;
    g->err = *e;
}

static void ctx_destroy(dn_gpu_ctx *c)
{
    if (!c)
        return;
    cudaSetDevice(c->device);
#ifdef DN_CUDNN
    if (c->dnn)
        cudnnDestroy(c->dnn);
#endif
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c);
}

static int ctx_create(int device, dn_gpu_ctx **out, dn_error *err)
{
    int count = 0;
    if (DN_CUDA_OK(cudaGetDeviceCount(&count), err))
        return -1;
    if (device < 0 || device >= count)
        return dn_fail(err, "GPU %d: there %s %d CUDA device%s (0..%d)", device,
                       count == 1 ? "is" : "are", count, count == 1 ? "" : "s",
                       count - 1);
    dn_gpu_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return dn_fail(err, "out of memory");
    c->device = device;
    struct cudaDeviceProp prop;
    if (DN_CUDA_OK(cudaSetDevice(device), err) ||
        DN_CUDA_OK(cudaGetDeviceProperties(&prop, device), err) ||
        /* a blocking stream: ordered after setup's cudaMemset/cudaMemcpy
         * on the legacy stream without explicit waits */
        DN_CUDA_OK(cudaStreamCreate(&c->stream), err) ||
        DN_CUBLAS_OK(cublasCreate(&c->blas), err) ||
        DN_CUBLAS_OK(cublasSetStream(c->blas, c->stream), err))
        goto fail;
#ifdef DN_CUDNN
    if (DN_CUDNN_OK(cudnnCreate(&c->dnn), err) ||
        DN_CUDNN_OK(cudnnSetStream(c->dnn, c->stream), err))
        goto fail;
#endif
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    *out = c;
    return 0;
fail:
    ctx_destroy(c);
    return -1;
}

int dn_gpu_ctx_get(int device, dn_gpu_ctx **out, dn_error *err)
{
    if (device < 0 || device >= DN_MAX_GPUS)
        return dn_fail(err, "GPU %d: device numbers run from 0 to %d", device,
                       DN_MAX_GPUS - 1);
    if (!contexts[device] && ctx_create(device, &contexts[device], err))
        return -1;
    *out = contexts[device];
    return DN_CUDA_OK(cudaSetDevice(device), err);
}

void dn_gpu_ctx_release_all(void)
{
    for (int i = 0; i < DN_MAX_GPUS; i++) {
        ctx_destroy(contexts[i]);
        contexts[i] = NULL;
    }
}

void *dn_gpu_bytes(size_t bytes, dn_error *err)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = 1;
    if (DN_CUDA_OK(cudaMalloc(&p, bytes), err))
        return NULL;
    if (DN_CUDA_OK(cudaMemset(p, 0, bytes), err)) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

float *dn_gpu_floats(size_t n, dn_error *err)
{
    return dn_gpu_bytes(n * sizeof(float), err);
}

void dn_gpu_free(void *p)
{
    if (p)
        cudaFree(p);
}

int dn_gpu_make_stateless(dn_layer *l, dn_net *net, dn_error *err)
{
    (void)l, (void)net, (void)err;
    return 0;
}

void dn_gpu_free_stateless(dn_layer *l) { (void)l; }

#else
/* ISO C wants a declaration in every translation unit. */
typedef int dn_cuda_unused;
#endif
