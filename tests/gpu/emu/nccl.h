/*
 * nccl.h - the NCCL calls of the data-parallel trainer, emulated on the
 * CPU: an all-reduce (sum of floats) or a broadcast (root's floats to every
 * rank) completes once every rank of its communicator set has joined, and
 * is queued after all work issued before it. A host that waits while a collective lacks ranks is stopped with a
 * message (NCCL would hang). See cuda_runtime.h.
 *
 * Several processes (ncclGetUniqueId, ncclCommInitRank): in an emulator
 * built with MPI (make MPI=1) the ranks of one id are MPI processes, and a
 * collective is MPI_Allreduce or MPI_Bcast on the emulated device memory
 * (host memory). It runs when it is called, after the work queued before
 * it: NCCL runs it later, in stream order, with the same result; run
 * later, a host blocked in an MPI call of its own (an agreement) while
 * another process waits in the collective would deadlock, where a GPU
 * goes on without its host. Without MPI only a communicator of one rank
 * can be made.
 */
#ifndef DN_EMU_NCCL_H
#define DN_EMU_NCCL_H

#include "cuda_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dn_emu_nccl *ncclComm_t;
typedef enum {
    ncclSuccess = 0,
    ncclSystemError = 2,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5
} ncclResult_t;
typedef enum { ncclFloat = 7 } ncclDataType_t;
typedef enum { ncclSum = 0 } ncclRedOp_t;

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
    char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

ncclResult_t ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist);
ncclResult_t ncclGetUniqueId(ncclUniqueId *id);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id,
                              int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);
ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream);
const char *ncclGetErrorString(ncclResult_t result);

#ifdef __cplusplus
}
#endif

#endif
