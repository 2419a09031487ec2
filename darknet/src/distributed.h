/*
 * distributed.h - data-parallel training across processes (MPI ranks, or
 * any communicator of comm.h whose buffers live in host memory), each
 * rank on the CPU or each on one GPU.
 *
 * The cfg's batch stays the global batch: the clock, the schedule,
 * net->seen, the printed lines and the checkpoints are those of one
 * process. Each forward batch (batch / subdivisions images) is split into
 * `ranks` contiguous shares; rank r builds its network for one share and
 * takes images r*share .. r*share+share-1 of the batch every rank loads
 * (the loader is a pure function of seed and index), so N ranks see
 * exactly the images one process sees. After the subdivisions, one
 * all-reduce sums every parameter's gradient (packed into one flat buffer,
 * with the loss and the top-1 count), and every rank applies the same
 * update with the global batch's scaling. On GPUs the gradients stay on
 * the device: the backend joins the ranks through NCCL, bootstrapped over
 * the host communicator, and sums its gradient arena there (the loss and
 * the top-1 count go over the host communicator). Rank 0 alone prints, logs,
 * validates and writes checkpoints; every rank reads the resume state,
 * then rank 0's weights, batch-norm statistics and optimiser state are
 * broadcast.
 *
 * Failures: every collective phase starts with an agreement (comm.h's
 * agree_failure), so a rank that fails (an error, a NaN) makes every rank
 * stop with a message naming that rank and its cause, never a hang. A
 * rank killed by a signal is the launcher's business (mpirun ends the
 * job).
 *
 * Every function takes d = NULL as "this process alone" and then does
 * what one process does.
 */
#ifndef DN_DISTRIBUTED_H
#define DN_DISTRIBUTED_H

#include <stdio.h>

#include "comm.h"
#include "darknet.h"
#include "dn_data.h"

typedef struct dn_dist dn_dist;

/* A communicator of one replica, or none: *out = NULL. The communicator
 * stays the caller's. */
int dn_dist_make(dn_comm *comm, dn_dist **out, dn_error *err);
void dn_dist_free(dn_dist *d);

int dn_dist_ranks(const dn_dist *d);     /* 1 alone */
int dn_dist_is_writer(const dn_dist *d); /* rank 0, or alone */
/* Where this rank prints: out on the writer, a sink on the others. */
FILE *dn_dist_out(const dn_dist *d, FILE *out);

/*
 * This rank's share of a forward batch of the planned network (0 alone),
 * or -1 with an error naming batch, subdivisions and the ranks when the
 * forward batch does not split into equal shares.
 */
int dn_dist_check_batch(const dn_dist *d, const dn_net *plan,
                        const char *cfg_path, dn_error *err);
/* Images of a whole forward batch, over every rank: what the loader
 * produces and the clock advances by per subdivision. */
long dn_dist_forward_batch(const dn_dist *d, const dn_net *net);

/*
 * Before the first batch, on every rank, after the weights (and state)
 * were loaded and the network placed: joins net to the group (its first
 * image, its world size, sync batch norm when [net] bn_sync=1; on GPUs the
 * device communicator), and gives every rank rank 0's weights, batch-norm
 * statistics, optimiser state and clock. Says on out when the loaded
 * state was saved by another number of processes. Refuses ranks placed
 * differently (some on a GPU, some on the CPU), several GPUs in one rank,
 * and bn_sync=1 on GPUs (sync batch norm runs on the CPU only).
 */
int dn_dist_start(dn_dist *d, dn_net *net, FILE *out, dn_error *err);

/* This rank's share of forward batch `index` into net->input_data,
 * net->truth and labels[net->batch]. */
int dn_dist_take_share(const dn_dist *d, dn_loader *l, long index,
                       dn_net *net, int *labels);

/* At the top of every weight update: -1 when another rank failed (err
 * names it and its cause); *stop = 1 when any rank was asked to stop. */
int dn_dist_batch_begin(dn_dist *d, int stop_requested, int *stop,
                        dn_error *err);

/* After the subdivisions: every gradient, the loss and the top-1 count
 * summed over the ranks, in place (one all-reduce). */
int dn_dist_all_reduce_gradients(dn_dist *d, dn_net *net, double *loss,
                                 long *correct, dn_error *err);

/*
 * Where training ends, on every path (rc: 0 or -1 with err set): the
 * ranks agree on the outcome. Returns -1 when this rank or another
 * failed; err then names the rank that failed and its cause. The writer
 * prints the all-reduce's share of a step on out.
 */
int dn_dist_finish(dn_dist *d, int rc, FILE *out, dn_error *err);

/* Bytes the gradient all-reduce of net moves per step (both ways). */
double dn_dist_bytes_per_step(const dn_net *net);

#endif
