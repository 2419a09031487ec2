/*
 * comm_nccl.c - the communicator of comm.h over the devices of one process:
 * NCCL's single-process mode (ncclCommInitAll, one communicator per
 * device). Every collective issues one call per device inside one
 * ncclGroupStart/ncclGroupEnd, as NCCL requires when one thread drives
 * several devices (without the group the first call would wait for ranks
 * that are never issued).
 */
#include <stdlib.h>
#include <string.h>

#include "comm_nccl.h"

#if defined(DN_GPU) && defined(DN_NCCL)

#include <nccl.h>

#include "cuda.h"

typedef struct nccl_comm {
    ncclComm_t comms[DN_MAX_GPUS];
    cudaStream_t streams[DN_MAX_GPUS];
} nccl_comm;

/* The group's outcome: the first failed call, else ncclGroupEnd's. */
static int group_end(ncclResult_t first, const char *what, int n,
                     dn_error *err)
{
    ncclResult_t end = ncclGroupEnd();
    ncclResult_t r = first != ncclSuccess ? first : end;
    if (r == ncclSuccess)
        return 0;
    return dn_fail(err, "%s over %d GPUs: %s", what, n, ncclGetErrorString(r));
}

static int nccl_all_reduce_sum(dn_comm *c, float *const *bufs, size_t n,
                               dn_error *err)
{
    nccl_comm *impl = c->impl;
    ncclResult_t r = ncclGroupStart();
    for (int i = 0; i < c->local && r == ncclSuccess; i++)
        r = ncclAllReduce(bufs[i], bufs[i], n, ncclFloat, ncclSum,
                          impl->comms[i], impl->streams[i]);
    return group_end(r, "ncclAllReduce", c->local, err);
}

static int nccl_broadcast(dn_comm *c, float *const *bufs, size_t n, int root,
                          dn_error *err)
{
    nccl_comm *impl = c->impl;
    if (root < 0 || root >= c->size)
        return dn_fail(err, "ncclBroadcast: root %d is not one of the %d "
                       "ranks", root, c->size);
    ncclResult_t r = ncclGroupStart();
    for (int i = 0; i < c->local && r == ncclSuccess; i++)
        r = ncclBroadcast(bufs[i], bufs[i], n, ncclFloat, root,
                          impl->comms[i], impl->streams[i]);
    return group_end(r, "ncclBroadcast", c->local, err);
}

static void nccl_free(dn_comm *c)
{
    if (!c)
        return;
    nccl_comm *impl = c->impl;
    for (int i = 0; impl && i < c->local; i++)
        if (impl->comms[i])
            ncclCommDestroy(impl->comms[i]);
    free(impl);
    free(c);
}

static const dn_comm_ops nccl_ops = {
    .name = "nccl",
    .all_reduce_sum = nccl_all_reduce_sum,
    .broadcast = nccl_broadcast,
    .agree_failure = NULL,
    .free = nccl_free,
};

int dn_comm_nccl_make(int n, const int *devices, dn_comm **out, dn_error *err)
{
    *out = NULL;
    if (n < 1 || n > DN_MAX_GPUS)
        return dn_fail(err, "NCCL: %d devices (1 to %d)", n, DN_MAX_GPUS);
    dn_comm *c = calloc(1, sizeof *c);
    nccl_comm *impl = calloc(1, sizeof *impl);
    if (!c || !impl) {
        free(c);
        free(impl);
        return dn_fail(err, "out of memory");
    }
    *c = (dn_comm){.ops = &nccl_ops, .rank = 0, .size = n, .local = n,
                   .impl = impl};
    for (int i = 0; i < n; i++) {
        dn_gpu_ctx *ctx;
        if (dn_gpu_ctx_get(devices[i], &ctx, err)) {
            nccl_free(c);
            return -1;
        }
        impl->streams[i] = ctx->stream;
    }
    if (DN_CUDA_OK(cudaSetDevice(devices[0]), err)) {
        nccl_free(c);
        return -1;
    }
    ncclResult_t r = ncclCommInitAll(impl->comms, n, devices);
    if (r != ncclSuccess) {
        memset(impl->comms, 0, sizeof impl->comms);
        nccl_free(c);
        return dn_fail(err, "ncclCommInitAll over %d GPUs: %s", n,
                       ncclGetErrorString(r));
    }
    *out = c;
    return 0;
}

#else /* no NCCL in this build */

int dn_comm_nccl_make(int n, const int *devices, dn_comm **out, dn_error *err)
{
    (void)devices;
    *out = NULL;
    return dn_fail(err, "%d GPUs need NCCL, and this darknet was built with "
                   "NCCL=0; use one GPU or rebuild with NCCL=1", n);
}

#endif
