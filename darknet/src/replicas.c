/*
 * replicas.c - data parallel over several CUDA devices of one process:
 * dn_backend_replicas (backend.h; GPU builds).
 *
 * The network placed (dn_replicas_place) becomes a front that holds no
 * device twins; it owns one replica per device, each a network built from
 * a clone of its cfg (dn_cfg_clone) with batch/n images per forward pass
 * and placed on its device by the one-device backend (network_gpu.c), and
 * a communicator joining them (comm.h, here NCCL's: comm_nccl.c). A pass
 * scatters the batch (replica r takes images r*b .. r*b+b-1, b = batch/n,
 * and knows its offset so that dropout draws the masks a single device
 * would), gathers the outputs and losses, and an update first sums the
 * gradient arenas of all replicas (all_reduce_sum), so every replica
 * applies the same update to the same weights. Weights go to replica 0 and
 * from it to the others (broadcast from rank 0), at placement and at every
 * push. Batch-norm statistics are those of each replica's images;
 * checkpoints take replica 0's (as PyTorch's DistributedDataParallel
 * broadcasts rank 0's buffers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "darknet.h"

#ifdef DN_GPU

#include "comm_nccl.h"
#include "cuda.h"
#include "network_gpu.h"

struct dn_replicas {
    int n;
    dn_net *nets[DN_MAX_GPUS]; /* replica i on device ids[i] */
    dn_comm *comm;
    dn_gpu_staging stage; /* the front's whole batch; replica i its slice */
    char name[320];       /* dn_net_device_name() */
};

static void replicas_free(dn_net *net)
{
    struct dn_replicas *r = net->replicas;
    if (!r)
        return;
    if (r->comm)
        r->comm->ops->free(r->comm);
    for (int i = 0; i < r->n; i++)
        dn_net_free(r->nets[i]);
    dn_gpu_staging_free(&r->stage);
    free(r);
    net->replicas = NULL;
    net->backend = &dn_backend_cpu;
}

/* ------------------------------------------------------------- weights */

/* Broadcast n floats at one offset of each replica's tensor from rank 0. */
static int broadcast(struct dn_replicas *r, float *(*at)(dn_net *, void *),
                     void *arg, size_t n, dn_error *err)
{
    float *bufs[DN_MAX_GPUS];
    for (int i = 0; i < r->n; i++)
        bufs[i] = at(r->nets[i], arg);
    return r->comm->ops->broadcast(r->comm, bufs, n, 0, err);
}

static float *arena_w(dn_net *net, void *arg) { return net->gpu_state->w; }
static float *arena_m(dn_net *net, void *arg) { return net->gpu_state->m; }
static float *arena_v(dn_net *net, void *arg) { return net->gpu_state->v; }

/* saved tensor k of layer i that is not a parameter (batch-norm statistics) */
typedef struct saved_ref {
    int layer, k;
} saved_ref;

static float *saved_twin(dn_net *net, void *arg)
{
    const saved_ref *s = arg;
    return net->layers[s->layer].saved_gpu[s->k];
}

static int is_param(const dn_layer *l, const float *w)
{
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].w == w)
            return 1;
    return 0;
}

/* Every replica gets replica 0's weights, optimiser state and saved
 * tensors; waits. */
static int from_rank0(struct dn_replicas *r, dn_error *err)
{
    dn_net *first = r->nets[0];
    const size_t n = first->gpu_state->arena_floats;
    if (broadcast(r, arena_w, NULL, n, err) ||
        broadcast(r, arena_m, NULL, n, err) ||
        (first->adam && broadcast(r, arena_v, NULL, n, err)))
        return -1;
    for (int i = 0; i < first->n; i++) {
        const dn_layer *l = &first->layers[i];
        for (int k = 0; k < l->n_saved; k++) {
            saved_ref s = {i, k};
            if (!is_param(l, l->saved[k]) &&
                broadcast(r, saved_twin, &s, (size_t)l->saved_n[k], err))
                return -1;
        }
    }
    for (int i = 0; i < r->n; i++)
        if (r->nets[i]->backend->sync(r->nets[i], 1, err))
            return -1;
    return 0;
}

static int replicas_push(dn_net *net, dn_error *err)
{
    struct dn_replicas *r = net->replicas;
    for (int i = 0; i < r->n; i++)
        r->nets[i]->seen = net->seen;
    if (dn_gpu_copy_tensors(net, r->nets[0], 1, DN_GPU_COPY_STATE, err))
        return -1;
    return from_rank0(r, err);
}

static int replicas_pull(const dn_net *net, dn_error *err)
{
    dn_net *host = (dn_net *)net; /* only the host copies change */
    return dn_gpu_copy_tensors(host, net->replicas->nets[0], 0,
                               DN_GPU_COPY_STATE, err);
}

/* ------------------------------------------------------------- placing */

int dn_replicas_place(dn_net *net, const dn_devices *dev, dn_error *err)
{
    const int n = dev->n;
    if (net->batch % n)
        return dn_fail(err, "the forward batch of %d images (batch / "
                       "subdivisions) does not split evenly over %d GPUs",
                       net->batch, n);
    struct dn_replicas *r = calloc(1, sizeof *r);
    if (!r)
        return dn_fail(err, "out of memory");
    net->replicas = r;
    net->backend = &dn_backend_replicas;
    if (dn_comm_nccl_make(n, dev->ids, &r->comm, err))
        goto fail;
    for (int i = 0; i < n; i++) {
        dn_cfg *copy = dn_cfg_clone(net->cfg);
        dn_net_options opt = {.batch_override = net->batch / n};
        if (dn_net_make(copy, &opt, &r->nets[i], err)) {
            dn_cfg_free(copy);
            goto fail;
        }
        r->n++;
        dn_net *rep = r->nets[i];
        rep->image_offset = (long)i * rep->batch;
        if (dn_gpu_place(rep, dev->ids[i], err))
            goto fail;
    }
    /* the replicas start from the front's weights and state */
    if (dn_gpu_staging_make(net, &r->stage, err) || replicas_push(net, err))
        goto fail;
    char ids[DN_MAX_GPUS * 4] = "";
    for (int i = 0; i < n; i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d",
                 i ? "," : "", dev->ids[i]);
    dn_gpu_describe(r->name, sizeof r->name, net, ids,
                    r->nets[0]->gpu_state->ctx->name);
    return 0;
fail:
    replicas_free(net);
    return -1;
}

/* ----------------------------------------------------------- the passes */

static void replicas_forward(dn_net *net, int train)
{
    struct dn_replicas *r = net->replicas;
    dn_gpu_staging *st = &r->stage;
    const long outputs = net->layers[net->n - 1].outputs;
    net->train = train;
    memcpy(st->h_input, net->input_data, sizeof(float) * net->batch * net->inputs);
    memcpy(st->h_truth, net->truth, sizeof(float) * net->batch * net->truths);
    for (int i = 0; i < r->n; i++) {
        dn_net *rep = r->nets[i];
        const long b0 = rep->image_offset;
        rep->seen = net->seen;
        dn_gpu_queue_forward(rep, st->h_input + b0 * net->inputs,
                             st->h_truth + b0 * net->truths, train);
        dn_gpu_queue_results(rep, st->h_output + b0 * outputs,
                             st->h_cost + b0, net->batch);
    }
    for (int i = 0; i < r->n; i++)
        r->nets[i]->backend->sync(r->nets[i], 1, NULL);
    dn_gpu_take_results(net, st);
}

static void replicas_backward(dn_net *net)
{
    struct dn_replicas *r = net->replicas;
    for (int i = 0; i < r->n; i++)
        r->nets[i]->backend->backward(r->nets[i]);
}

static void replicas_zero_deltas(dn_net *net)
{
    struct dn_replicas *r = net->replicas;
    for (int i = 0; i < r->n; i++)
        r->nets[i]->backend->zero_deltas(r->nets[i]);
}

/* The sum of every replica's gradients, in place on every replica, then
 * each replica's own (identical) update. */
static void replicas_update(dn_net *net, double lr)
{
    struct dn_replicas *r = net->replicas;
    float *grads[DN_MAX_GPUS];
    for (int i = 0; i < r->n; i++)
        grads[i] = r->nets[i]->gpu_state->grad;
    dn_error e;
    if (r->comm->ops->all_reduce_sum(r->comm, grads,
                                     r->nets[0]->gpu_state->arena_floats, &e))
        dn_gpu_note(r->nets[0], &e);
    for (int i = 0; i < r->n; i++) {
        r->nets[i]->seen = net->seen;
        r->nets[i]->backend->update(r->nets[i], lr);
    }
}

/* ----------------------------------------------------- host interface */

/* The first noted error of the replicas, in replica order. */
static int replicas_sync(dn_net *net, int wait, dn_error *err)
{
    struct dn_replicas *r = net->replicas;
    if (wait)
        for (int i = 0; i < r->n; i++)
            r->nets[i]->backend->sync(r->nets[i], 1, NULL);
    if (!err)
        return 0;
    for (int i = 0; i < r->n; i++)
        if (r->nets[i]->backend->sync(r->nets[i], 0, err))
            return -1;
    return 0;
}

/* the host copies are stale: a checkpoint checks what it pulls */
static int replicas_check_weights(const dn_net *net, dn_error *err)
{
    (void)net, (void)err;
    return 0;
}

static const char *replicas_device_name(const dn_net *net)
{
    return net->replicas->name;
}

const dn_backend dn_backend_replicas = {
    .name = "replicas",
    .forward = replicas_forward,
    .backward = replicas_backward,
    .update = replicas_update,
    .zero_deltas = replicas_zero_deltas,
    .push = replicas_push,
    .pull = replicas_pull,
    .sync = replicas_sync,
    .check_weights = replicas_check_weights,
    .device_name = replicas_device_name,
    .free = replicas_free,
};

#else
/* ISO C wants a declaration in every translation unit. */
typedef int dn_replicas_unused;
#endif
