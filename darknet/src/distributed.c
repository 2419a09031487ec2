/*
 * distributed.c - data-parallel training across processes over a
 * communicator (comm.h); see distributed.h for the scheme.
 *
 * Collectives per weight update, in this order on every rank:
 *   agree_failure(0)    did a rank fail since the last update?
 *   agree_failure(stop) was any rank asked to stop (SIGINT, SIGTERM)?
 *   [bn_sync=1: two sums of C floats per batch-norm layer and forward,
 *    one of 2C per backward]
 *   all_reduce_sum      every gradient, the loss and the top-1 count
 * and one agree_failure where training ends. A rank that fails goes
 * straight to the end and agrees "failed" there; the others meet it at
 * their next agreement, learn which rank failed and its message (a sum of
 * flags, a broadcast of the text) and stop too.
 *
 * A network on one GPU per rank (its backend has join_ranks) keeps its
 * tensors on the device: the backend joins a second communicator (NCCL,
 * bootstrapped over this one) and the gradient step becomes
 *   agree_failure(0)    did the forward or backward fail on a device?
 *   all_reduce_grads    the gradient arena, on the device (NCCL)
 *   all_reduce_sum      the loss and the top-1 count (3 floats, host)
 * so that no rank enters NCCL while another has given up; agreements and
 * the loss stay on the host communicator (MPI). The start broadcasts rank
 * 0's device state over NCCL and the clock over MPI.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "batchnorm.h"
#include "distributed.h"

struct dn_dist {
    dn_comm *comm;
    dn_comm *device_comm; /* the backend's (GPU ranks), or NULL */
    int rank, size;
    float *flat;   /* [grads + 3]: every gradient, loss (hi, lo), top-1;
                      with device_comm only [3] */
    size_t flat_n; /* floats summed per step (grads + 3) */
    FILE *sink;    /* the non-writers' output */
    int stopped;   /* a failure was agreed: no further collectives */
    int broken;    /* a collective failed: no further collectives */
    dn_bn_sync bn_sync;
    dn_error bn_err; /* the first failed batch-norm sum */
    /* the all-reduce's share of a step */
    double reduce_s, step_s, t_last;
    long steps;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int dn_dist_make(dn_comm *comm, dn_dist **out, dn_error *err)
{
    *out = NULL;
    if (!comm || comm->size <= 1)
        return 0;
    if (comm->local != 1)
        return dn_fail(err, "training across processes takes one replica "
                       "per process; the %s communicator drives %d here",
                       comm->ops->name, comm->local);
    dn_dist *d = calloc(1, sizeof *d);
    if (!d)
        return dn_fail(err, "out of memory");
    d->comm = comm;
    d->rank = comm->rank;
    d->size = comm->size;
    if (d->rank != 0 && !(d->sink = fopen("/dev/null", "w"))) {
        free(d);
        return dn_fail(err, "/dev/null: cannot open");
    }
    *out = d;
    return 0;
}

void dn_dist_free(dn_dist *d)
{
    if (!d)
        return;
    if (d->sink)
        fclose(d->sink);
    if (d->device_comm)
        d->device_comm->ops->free(d->device_comm);
    free(d->flat);
    free(d);
}

int dn_dist_ranks(const dn_dist *d) { return d ? d->size : 1; }

int dn_dist_is_writer(const dn_dist *d) { return !d || d->rank == 0; }

FILE *dn_dist_out(const dn_dist *d, FILE *out)
{
    return dn_dist_is_writer(d) ? out : d->sink;
}

int dn_dist_check_batch(const dn_dist *d, const dn_net *plan,
                        const char *cfg_path, dn_error *err)
{
    if (!d)
        return 0;
    if (plan->batch % d->size)
        return dn_fail(err, "%s: [net] batch=%ld with subdivisions=%d makes "
                       "forward batches of %d images, which %d processes "
                       "cannot share equally: batch / subdivisions must be a "
                       "multiple of %d", cfg_path, plan->images_per_batch,
                       plan->subdivisions, plan->batch, d->size, d->size);
    return plan->batch / d->size;
}

long dn_dist_forward_batch(const dn_dist *d, const dn_net *net)
{
    return (long)net->batch * dn_dist_ranks(d);
}

/* ------------------------------------------------------------ agreeing */

/*
 * Every rank says whether it failed (err holds its message when it did).
 * Returns 0 when none did; else -1, with err on every rank naming the
 * first rank that failed and its message.
 */
static int agree(dn_dist *d, int failed, dn_error *err)
{
    if (d->broken || d->stopped)
        return failed ? -1 : 0;
    int any;
    dn_error cerr;
    if (dn_comm_agree(d->comm, failed, &any, &cerr)) {
        d->broken = 1;
        if (!failed)
            *err = cerr;
        return -1;
    }
    if (!any)
        return 0;
    d->stopped = 1;
    /* which ranks, then the first one's message, character by character */
    float *buf = calloc((size_t)d->size + DN_ERROR_MAX, sizeof *buf);
    if (!buf)
        return dn_fail(err, "rank %d: out of memory", d->rank);
    float *flags = buf, *text = buf + d->size;
    flags[d->rank] = failed != 0;
    if (d->comm->ops->all_reduce_sum(d->comm, &flags, (size_t)d->size, &cerr)) {
        d->broken = 1;
        free(buf);
        if (!failed)
            *err = cerr;
        return -1;
    }
    int first = -1, count = 0;
    for (int r = 0; r < d->size; r++)
        if (flags[r] > 0) {
            count++;
            if (first < 0)
                first = r;
        }
    if (d->rank == first)
        for (int i = 0; i < DN_ERROR_MAX && err->msg[i]; i++)
            text[i] = (unsigned char)err->msg[i];
    char cause[DN_ERROR_MAX] = "";
    if (first >= 0 &&
        d->comm->ops->broadcast(d->comm, &text, DN_ERROR_MAX, first, &cerr) == 0)
        for (int i = 0; i < DN_ERROR_MAX - 1 && text[i] > 0; i++)
            cause[i] = (char)text[i], cause[i + 1] = '\0';
    free(buf);
    char others[64] = "";
    if (count > 1)
        snprintf(others, sizeof others, " (and %d other rank%s)", count - 1,
                 count > 2 ? "s" : "");
    if (failed) { /* its own message, whoever else failed */
        char own[DN_ERROR_MAX];
        snprintf(own, sizeof own, "%s", err->msg);
        return dn_fail(err, "rank %d: %s", d->rank, own);
    }
    return dn_fail(err, "rank %d: stopped because rank %d%s failed: %s",
                   d->rank, first, others, cause);
}

int dn_dist_batch_begin(dn_dist *d, int stop_requested, int *stop,
                        dn_error *err)
{
    *stop = stop_requested != 0;
    if (!d)
        return 0;
    if (agree(d, 0, err))
        return -1;
    if (dn_comm_agree(d->comm, stop_requested, stop, err)) {
        d->broken = 1;
        return -1;
    }
    return 0;
}

int dn_dist_finish(dn_dist *d, int rc, FILE *out, dn_error *err)
{
    if (!d)
        return rc;
    if (agree(d, rc != 0, err))
        rc = -1;
    if (rc == 0 && d->rank == 0 && d->steps > 0 && d->step_s > 0)
        fprintf(out, "all-reduce: %s per step over %d processes, %.4f s of "
                "%.4f s per step (%.1f%%), %ld steps\n",
                dn_bytes_text(4.0 * d->flat_n), d->size, d->reduce_s / d->steps,
                d->step_s / d->steps, 100.0 * d->reduce_s / d->step_s, d->steps);
    return rc;
}

/* ------------------------------------------------------------ starting */

/* sync batch norm's sum; a failure is kept for the gradient all-reduce to
 * report (a layer's forward cannot fail) */
static int bn_sum(void *ctx, float *buf, long n)
{
    dn_dist *d = ctx;
    if (d->broken)
        return -1;
    double t0 = now();
    if (d->comm->ops->all_reduce_sum(d->comm, &buf, (size_t)n, &d->bn_err)) {
        d->broken = 1;
        return -1;
    }
    d->reduce_s += now() - t0;
    return 0;
}

static long grad_floats(const dn_net *net)
{
    return dn_net_param_count(net);
}

double dn_dist_bytes_per_step(const dn_net *net)
{
    return 4.0 * ((double)grad_floats(net) + 3);
}

/* The clock (net->seen) in 4 floats, packed or unpacked; returns 4. */
static size_t pack_seen(dn_net *net, float *to, const float *from)
{
    /* seen in 21-bit pieces: floats hold integers below 2^24 exactly */
    for (int k = 0; k < 4; k++) {
        if (to)
            to[k] = (float)((net->seen >> (21 * k)) & 0x1fffff);
        if (from && k == 0)
            net->seen = 0;
        if (from)
            net->seen |= (uint64_t)from[k] << (21 * k);
    }
    return 4;
}

/* The weights as a checkpoint holds them, the optimiser state and the
 * clock, packed (to != NULL) or unpacked (from != NULL); returns floats. */
static size_t pack_model(dn_net *net, float *to, const float *from)
{
    size_t off = 0;
#define MOVE(ptr, n)                                                          \
    do {                                                                      \
        if (to)                                                               \
            memcpy(to + off, (ptr), sizeof(float) * (size_t)(n));             \
        if (from)                                                             \
            memcpy((ptr), from + off, sizeof(float) * (size_t)(n));           \
        off += (size_t)(n);                                                   \
    } while (0)
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_saved; k++)
            MOVE(l->saved[k], l->saved_n[k]);
        for (int k = 0; k < l->n_params; k++) {
            MOVE(l->params[k].m, l->params[k].n);
            if (net->adam)
                MOVE(l->params[k].v, l->params[k].n);
        }
    }
#undef MOVE
    return off + pack_seen(net, to ? to + off : NULL, from ? from + off : NULL);
}

/* Whether every rank placed its network alike, all on the host or all on
 * a device: a rank on the CPU and one on a GPU would call different
 * collectives and wait for each other forever. */
static int same_placement(dn_dist *d, const dn_net *net, int on_device,
                          dn_error *err)
{
    float count = on_device != 0, *bufs[1] = {&count};
    if (d->comm->ops->all_reduce_sum(d->comm, bufs, 1, err)) {
        d->broken = 1;
        return -1;
    }
    if (count == 0 || count == d->size)
        return 0;
    d->stopped = 1; /* every rank knows: no agreement is needed */
    return dn_fail(err, "rank %d: %d of %d processes placed the network on a "
                   "GPU and the others on the CPU (this one on %s): give "
                   "every rank a GPU (one per local rank by default, or -gpus "
                   "ID) or none (-nogpu)", d->rank, (int)count, d->size,
                   dn_net_device_name(net));
}

/* GPU ranks: the backend's communicator, then rank 0's clock (host) and
 * device state (the backend's communicator). */
static int start_on_device(dn_dist *d, dn_net *net, dn_error *err)
{
    const dn_backend *b = dn_net_backend(net);
    /* join_ranks agrees on its failures: every rank returns alike */
    if (b->join_ranks(net, d->comm, &d->device_comm, err))
        return -1;
    float clock[4], *bufs[1] = {clock};
    pack_seen(net, clock, NULL);
    if (d->comm->ops->broadcast(d->comm, bufs, 4, 0, err)) {
        d->broken = 1;
        return -1;
    }
    pack_seen(net, NULL, clock);
    if (agree(d, b->broadcast_state(net, d->device_comm, 0, err), err))
        return -1;
    d->t_last = now();
    return 0;
}

int dn_dist_start(dn_dist *d, dn_net *net, FILE *out, dn_error *err)
{
    const int ranks = dn_dist_ranks(d);
    if (net->loaded_world_size > 0 && net->loaded_world_size != ranks)
        fprintf(out, "resuming a checkpoint of %d process%s with %d: the "
                "optimiser state is the same on every process, so it carries "
                "over\n", net->loaded_world_size,
                net->loaded_world_size > 1 ? "es" : "", ranks);
    net->world_size = ranks;
    if (!d)
        return 0;
    /* everything that can fail on one rank alone, before the agreement */
    const dn_backend *b = dn_net_backend(net);
    const int on_device = b != &dn_backend_cpu;
    int failed = 0;
    dn_trainer_keys keys;
    float *model = NULL;
    size_t n = on_device ? 0 : pack_model(net, NULL, NULL);
    size_t flat = on_device ? 3 : (size_t)grad_floats(net) + 3;
    dn_section *net_section = &net->cfg->sections[0];
    if (on_device && !b->join_ranks)
        failed = dn_fail(err, "training across processes takes one GPU per "
                         "process, and this one's network is on %s",
                         dn_net_device_name(net));
    else if (dn_trainer_keys_read(net_section, &keys, err))
        failed = -1;
    else if (on_device && keys.bn_sync)
        failed = dn_sec_fail(net_section, "bn_sync", err,
                             "bn_sync=1 (batch norm over every process's "
                             "share of the batch) runs on the CPU only: on "
                             "GPUs set bn_sync=0 (each rank normalises its "
                             "own share), or train with -nogpu");
    else if (!(d->flat = malloc(flat * sizeof *d->flat)) ||
             (!on_device && !(model = malloc(n * sizeof *model))))
        failed = dn_fail(err, "out of memory");
    if (agree(d, failed, err) || same_placement(d, net, on_device, err)) {
        free(model);
        return -1;
    }
    d->flat_n = (size_t)grad_floats(net) + 3;
    net->image_offset = (long)d->rank * net->batch;
    if (on_device)
        return start_on_device(d, net, err);
    if (keys.bn_sync) {
        d->bn_sync = (dn_bn_sync){.sum = bn_sum, .ctx = d, .replicas = d->size};
        net->bn_sync = &d->bn_sync;
    }
    pack_model(net, model, NULL);
    int rc = d->comm->ops->broadcast(d->comm, &model, n, 0, err);
    if (rc)
        d->broken = 1;
    else
        pack_model(net, NULL, model);
    free(model);
    d->t_last = now();
    return rc;
}

/* ------------------------------------------------------------ training */

int dn_dist_take_share(const dn_dist *d, dn_loader *l, long index,
                       dn_net *net, int *labels)
{
    if (!d)
        return dn_loader_get(l, index, net->input_data, net->truth, labels);
    const float *x, *truth;
    const int *all;
    int valid = dn_loader_get_ref(l, index, &x, &truth, &all);
    const long first = (long)d->rank * net->batch;
    memcpy(net->input_data, x + first * net->inputs,
           sizeof(float) * (size_t)net->batch * net->inputs);
    memcpy(net->truth, truth + first * net->truths,
           sizeof(float) * (size_t)net->batch * net->truths);
    memcpy(labels, all + first, sizeof *labels * (size_t)net->batch);
    return valid;
}

/* The step's timing: the all-reduce from t0 until now, the step since the
 * last one's end. */
static void account_reduce(dn_dist *d, double t0)
{
    double t1 = now();
    d->reduce_s += t1 - t0;
    d->step_s += t1 - d->t_last;
    d->t_last = t1;
    d->steps++;
}

/* GPU ranks: the agreement that every device got here (a rank whose pass
 * failed is at its end, agreeing "failed"), then the gradient arena over
 * the device communicator and the loss and top-1 count over the host's. */
static int all_reduce_on_device(dn_dist *d, dn_net *net, double *loss,
                                long *correct, dn_error *err)
{
    const dn_backend *b = dn_net_backend(net);
    if (agree(d, 0, err))
        return -1;
    float *scalars = d->flat;
    scalars[0] = (float)*loss;
    scalars[1] = (float)(*loss - (double)scalars[0]);
    scalars[2] = (float)*correct;
    b->sync(net, 1, NULL); /* the backward pass, so the timing is the sum's */
    double t0 = now();
    if (b->all_reduce_grads(net, d->device_comm, err) ||
        d->comm->ops->all_reduce_sum(d->comm, &scalars, 3, err)) {
        d->broken = 1;
        return -1;
    }
    /* a failure here is this rank's: the others meet it at the next
     * agreement */
    int failed = b->sync(net, 1, err);
    account_reduce(d, t0);
    *loss = (double)scalars[0] + (double)scalars[1];
    *correct = lround(scalars[2]);
    return failed;
}

int dn_dist_all_reduce_gradients(dn_dist *d, dn_net *net, double *loss,
                                 long *correct, dn_error *err)
{
    if (!d)
        return 0;
    if (d->broken) {
        *err = d->bn_err;
        return -1;
    }
    if (d->device_comm)
        return all_reduce_on_device(d, net, loss, correct, err);
    float *flat = d->flat;
    size_t off = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            const dn_param *p = &net->layers[i].params[k];
            memcpy(flat + off, p->grad, sizeof(float) * (size_t)p->n);
            off += (size_t)p->n;
        }
    /* the loss in two floats (value and rounding error) keeps most of the
     * double's digits through a float sum */
    flat[off] = (float)*loss;
    flat[off + 1] = (float)(*loss - (double)flat[off]);
    flat[off + 2] = (float)*correct;
    double t0 = now();
    if (d->comm->ops->all_reduce_sum(d->comm, &flat, d->flat_n, err)) {
        d->broken = 1;
        return -1;
    }
    account_reduce(d, t0);
    off = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            dn_param *p = &net->layers[i].params[k];
            memcpy(p->grad, flat + off, sizeof(float) * (size_t)p->n);
            off += (size_t)p->n;
        }
    *loss = (double)flat[off] + (double)flat[off + 1];
    *correct = lround(flat[off + 2]);
    return 0;
}
