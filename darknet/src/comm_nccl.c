/*
 * comm_nccl.c - the communicator of comm.h over CUDA devices, in NCCL's two
 * modes:
 *   - the devices of one process (dn_comm_nccl_make): ncclCommInitAll, one
 *     communicator per device. Every collective issues one call per device
 *     inside one ncclGroupStart/ncclGroupEnd, as NCCL requires when one
 *     thread drives several devices (without the group the first call
 *     would wait for ranks that are never issued);
 *   - one device per process (dn_comm_nccl_mpi_make): ncclCommInitRank
 *     from an id rank 0 draws and a host communicator (MPI) broadcasts;
 *     the same collectives with one call each, and failures agreed over
 *     the host communicator.
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
    dn_comm *host; /* one device per process: the bootstrap's communicator */
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
    return group_end(r, "ncclAllReduce", c->size, err);
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
    return group_end(r, "ncclBroadcast", c->size, err);
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

/* ------------------------------------------- one device per process */

static int nccl_agree_failure(dn_comm *c, int failed, int *any, dn_error *err)
{
    nccl_comm *impl = c->impl;
    return dn_comm_agree(impl->host, failed, any, err);
}

static const dn_comm_ops nccl_mpi_ops = {
    .name = "nccl over mpi",
    .all_reduce_sum = nccl_all_reduce_sum,
    .broadcast = nccl_broadcast,
    .agree_failure = nccl_agree_failure,
    .free = nccl_free,
};

/* Every process says whether its step (what) failed, mine holding its
 * message when it did: 0 when none did; else -1, err holding this
 * process's message or naming the step another process failed. */
static int agreed(dn_comm *host, int failed, const dn_error *mine,
                  const char *what, dn_error *err)
{
    int any = 0;
    if (dn_comm_agree(host, failed, &any, err))
        return -1;
    if (!any)
        return 0;
    if (failed) {
        *err = *mine;
        return -1;
    }
    return dn_fail(err, "NCCL across %d processes: another process failed "
                   "%s (its own message says why)", host->size, what);
}

int dn_comm_nccl_mpi_make(dn_comm *host, int device, dn_comm **out,
                          dn_error *err)
{
    *out = NULL;
    if (host->local != 1) /* the same on every process: no agreement */
        return dn_fail(err, "NCCL across processes takes one replica per "
                       "process; the %s communicator drives %d here",
                       host->ops->name, host->local);
    dn_comm *c = calloc(1, sizeof *c);
    nccl_comm *impl = calloc(1, sizeof *impl);
    dn_error mine = {0};
    dn_gpu_ctx *ctx = NULL;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    int failed = 0;
    if (!c || !impl)
        failed = dn_fail(&mine, "out of memory");
    else if (dn_gpu_ctx_get(device, &ctx, &mine))
        failed = -1;
    else if (host->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess)
            failed = dn_fail(&mine, "ncclGetUniqueId: %s",
                             ncclGetErrorString(r));
    }
    if (agreed(host, failed, &mine, "to prepare its GPU", err))
        goto fail;
    *c = (dn_comm){.ops = &nccl_mpi_ops, .rank = host->rank,
                   .size = host->size, .local = 1,
                   .node_rank = host->node_rank, .impl = impl};
    impl->host = host;
    impl->streams[0] = ctx->stream;
    /* rank 0's id to every process, a byte per float (exact) */
    float bytes[NCCL_UNIQUE_ID_BYTES], *bufs[1] = {bytes};
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++)
        bytes[i] = (unsigned char)id.internal[i];
    if (host->ops->broadcast(host, bufs, NCCL_UNIQUE_ID_BYTES, 0, err))
        goto fail;
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++)
        id.internal[i] = (char)(unsigned char)bytes[i];
    if (DN_CUDA_OK(cudaSetDevice(device), &mine))
        failed = -1;
    else {
        ncclResult_t r = ncclCommInitRank(&impl->comms[0], host->size, id,
                                          host->rank);
        if (r != ncclSuccess) {
            impl->comms[0] = NULL;
            failed = dn_fail(&mine, "ncclCommInitRank (rank %d of %d, GPU "
                             "%d): %s", host->rank, host->size, device,
                             ncclGetErrorString(r));
        }
    }
    if (agreed(host, failed, &mine, "to join the NCCL communicator", err))
        goto fail;
    *out = c;
    return 0;
fail:
    if (c && c->ops)
        nccl_free(c);
    else {
        free(impl);
        free(c);
    }
    return -1;
}

#else /* no NCCL in this build */

int dn_comm_nccl_make(int n, const int *devices, dn_comm **out, dn_error *err)
{
    (void)devices;
    *out = NULL;
    return dn_fail(err, "%d GPUs need NCCL, and this darknet was built with "
                   "NCCL=0; use one GPU or rebuild with NCCL=1", n);
}

int dn_comm_nccl_mpi_make(dn_comm *host, int device, dn_comm **out,
                          dn_error *err)
{
    (void)device;
    *out = NULL;
    return dn_fail(err, "training across %d processes on GPUs needs NCCL, "
                   "and this darknet was built without it (NCCL=0, or no "
                   "GPU support); rebuild with GPU=1 NCCL=1, or train with "
                   "-nogpu", host->size);
}

#endif
