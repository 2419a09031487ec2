/*
 * comm.h - the communicator data-parallel training runs over.
 *
 * Data-parallel training needs three things from the machinery that joins
 * its replicas: sum the gradients of every replica in place, give every
 * replica rank 0's weights, and agree on a failure. A communicator is a
 * table of those operations over a group of replicas, so the training code
 * never asks whether the replicas are GPUs of one process (NCCL, one
 * communicator per process, ncclCommInitAll) or processes on several
 * machines (MPI, and NCCL bootstrapped over MPI).
 *
 * A process drives `local` replicas (several GPUs of one process; one for
 * an MPI rank); its first replica has the global rank `rank`, and `size`
 * replicas take part in all. Every operation takes one buffer per local
 * replica, bufs[0 .. local-1], each of n floats, resident where the
 * implementation expects them (device memory for NCCL, host memory for
 * MPI on the CPU). Every process must call every operation in the same
 * order with the same n (collective semantics). Operations return 0, or -1
 * with err set; after a failure the communicator may only be freed.
 */
#ifndef DN_COMM_H
#define DN_COMM_H

#include <stddef.h>
#include "darknet.h"

typedef struct dn_comm dn_comm;

typedef struct dn_comm_ops {
    const char *name; /* "nccl", "mpi", ... */
    /* bufs[i] <- sum over all replicas of bufs[i], element by element */
    int (*all_reduce_sum)(dn_comm *c, float *const *bufs, size_t n,
                          dn_error *err);
    /* bufs[i] <- the buffer of the replica whose global rank is root */
    int (*broadcast)(dn_comm *c, float *const *bufs, size_t n, int root,
                     dn_error *err);
    /* *any <- 1 when any process passed failed != 0, else 0: how every
     * rank learns that one of them hit a NaN or a read error and stops
     * together instead of hanging in the next collective. May be NULL
     * when every replica lives in this process (it knows already). */
    int (*agree_failure)(dn_comm *c, int failed, int *any, dn_error *err);
    void (*free)(dn_comm *c);
} dn_comm_ops;

struct dn_comm {
    const dn_comm_ops *ops;
    int rank;  /* global rank of this process's first replica */
    int size;  /* replicas in the whole group */
    int local; /* replicas this process drives */
    /* this process's index among the group's processes on its machine
     * (what chooses a rank's GPU); 0 when the group is this process */
    int node_rank;
    void *impl;
};

/* *any <- 1 when any process passed failed != 0: the communicator's
 * agree_failure, or where it has none a sum of one float over the group
 * (host buffers only). */
static inline int dn_comm_agree(dn_comm *c, int failed, int *any,
                                dn_error *err)
{
    if (c->ops->agree_failure)
        return c->ops->agree_failure(c, failed, any, err);
    float f = failed != 0, *bufs[1] = {&f};
    if (c->ops->all_reduce_sum(c, bufs, 1, err))
        return -1;
    *any = f > 0;
    return 0;
}

#endif
