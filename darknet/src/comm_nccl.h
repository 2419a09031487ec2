/*
 * comm_nccl.h - a communicator (comm.h) over several CUDA devices of this
 * process, through NCCL (comm_nccl.c).
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

#endif
