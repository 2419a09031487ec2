/*
 * comm_nccl.h - communicators (comm.h) over CUDA devices through NCCL
 * (comm_nccl.c): several devices of this process, or one device per
 * process of an MPI job.
 */
#ifndef DN_COMM_NCCL_H
#define DN_COMM_NCCL_H

#include "comm.h"

/*
 * One NCCL communicator per device (ncclCommInitAll): rank 0, size and
 * local n. Buffers are device memory, bufs[i] on devices[i]; each
 * collective is queued on the stream of that device's context (cuda.h), in
 * order with the work already queued there, and is not waited for.
 * agree_failure is NULL: every replica lives in this process. In a build
 * without NCCL (NCCL=0, or a CPU build) it fails and says so.
 */
int dn_comm_nccl_make(int n, const int *devices, dn_comm **out, dn_error *err);

/*
 * One device per process (NCCL's multi-process mode, the usual multi-node
 * recipe): the processes of host, a communicator of one replica per
 * process on host memory (comm_mpi.h's), each call this with its own
 * device. Rank 0 draws NCCL's id (ncclGetUniqueId), host broadcasts it
 * (MPI_Bcast), every process joins with ncclCommInitRank(host rank, host
 * size). The result has host's rank, size and node_rank and local 1; its
 * buffers are device memory on `device`, its collectives queued on that
 * device's stream; agree_failure is host's (MPI_Allreduce with MPI_MAX),
 * so that ranks agree on a failure over MPI and never wait in NCCL for
 * one that gave up. Collective over host: each failure (no device, no
 * id, the init) is agreed before the next step, so every process returns
 * -1 together. host must outlive the result. In a build without NCCL it
 * fails and says so.
 */
int dn_comm_nccl_mpi_make(dn_comm *host, int device, dn_comm **out,
                          dn_error *err);

#endif
