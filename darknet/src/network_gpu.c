/*
 * network_gpu.c - a network on one CUDA device: dn_backend_gpu (backend.h;
 * GPU builds, a CPU build keeps only dn_gpu_count, which says 0).
 *
 * Placing a network on a device (dn_gpu_place) creates, once:
 *   - the device twins of every buffer: one arena each for the parameters'
 *     weights, gradients and optimiser state (one kernel updates them all,
 *     one all-reduce sums them across replicas), one for the outputs and
 *     one for the deltas (one memset zeroes them), the saved tensors that
 *     are not parameters (batch-norm statistics), input, truth, and the
 *     shared workspace;
 *   - each layer's device state (its twin's make: cuDNN descriptors,
 *     algorithms chosen by measurement), with a large search workspace
 *     while they are chosen, then the workspace the chosen ones need;
 *   - pinned host staging for what crosses the bus every pass: the input
 *     batch and truth going up, the last layer's output and the per-image
 *     losses coming back.
 * Then the weights are pushed once and stay there: a training step copies
 * the batch up and the output and losses down, and waits once, at the end
 * of the forward pass (dn_net_forward's contract). Backward and update are
 * only queued. Checkpoints pull (dn_weights_save calls dn_net_pull), loads
 * push.
 *
 * Several devices are replicas.c's: one network placed here per device,
 * driven through the pieces network_gpu.h exports. Several processes, one
 * device each (distributed.c), join through NCCL bootstrapped over MPI
 * (dn_comm_nccl_mpi_make) and sum the gradient arena in place.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "layer_util.h"

#ifdef DN_GPU

#include "backend.h"
#include "comm_nccl.h"
#include "cuda.h"
#include "network_gpu.h"

/* While the layers choose their algorithms (cuDNN's searches) they may try
 * ones that need this much scratch (or half the free memory, if less);
 * without cuDNN there is no search. */
#ifdef DN_CUDNN
#define SEARCH_WORKSPACE_BYTES (1024UL << 20)
#else
#define SEARCH_WORKSPACE_BYTES 0UL
#endif

int dn_gpu_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

static size_t aligned_floats(size_t n)
{
    const size_t a = DN_GPU_ALIGN / sizeof(float);
    return (n + a - 1) / a * a;
}

static int param_is_saved(const dn_layer *l, const float *w)
{
    for (int k = 0; k < l->n_saved; k++)
        if (l->saved[k] == w)
            return 1;
    return 0;
}

float *dn_gpu_twin(const dn_layer *l, const float *host)
{
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].w == host)
            return l->params[p].w_gpu;
    for (int k = 0; k < l->n_saved; k++)
        if (l->saved[k] == host)
            return l->saved_gpu[k];
    return NULL;
}

dn_param *dn_gpu_param(dn_layer *l, const float *w)
{
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].w == w)
            return &l->params[p];
    return NULL;
}

/* ------------------------------------------------------------ building */

/* The parameter arenas and the optimiser's chunk table. */
static int alloc_params(dn_net *net, struct dn_gpu_net *g, dn_error *err)
{
    size_t total = 0;
    long n_chunks = 0;
    for (int i = 0; i < net->n; i++)
        for (int p = 0; p < net->layers[i].n_params; p++) {
            const long n = net->layers[i].params[p].n;
            total += aligned_floats((size_t)n);
            n_chunks += (n + DN_GPU_CHUNK - 1) / DN_GPU_CHUNK;
        }
    g->arena_floats = total;
    g->n_chunks = (int)n_chunks;
    if (!(g->w = dn_gpu_floats(total, err)) ||
        !(g->grad = dn_gpu_floats(total, err)) ||
        !(g->m = dn_gpu_floats(total, err)) ||
        (net->adam && !(g->v = dn_gpu_floats(total, err))))
        return -1;
    dn_gpu_chunk *table = calloc(n_chunks ? n_chunks : 1, sizeof *table);
    if (!table)
        return dn_fail(err, "out of memory");
    size_t off = 0;
    long c = 0;
    for (int i = 0; i < net->n; i++)
        for (int p = 0; p < net->layers[i].n_params; p++) {
            dn_param *pr = &net->layers[i].params[p];
            pr->w_gpu = g->w + off;
            pr->grad_gpu = g->grad + off;
            pr->m_gpu = g->m + off;
            pr->v_gpu = g->v ? g->v + off : NULL;
            for (long j = 0; j < pr->n; j += DN_GPU_CHUNK) {
                table[c].offset = (long)off + j;
                table[c].n = (int)(pr->n - j < DN_GPU_CHUNK ? pr->n - j
                                                             : DN_GPU_CHUNK);
                table[c++].decay = pr->decay;
            }
            off += aligned_floats((size_t)pr->n);
        }
    int rc = 0;
    g->chunks = dn_gpu_bytes(sizeof *table * (n_chunks ? n_chunks : 1), err);
    if (!g->chunks ||
        DN_CUDA_OK(cudaMemcpy(g->chunks, table, sizeof *table * n_chunks,
                           cudaMemcpyHostToDevice), err))
        rc = -1;
    free(table);
    return rc;
}

/* Twins of the saved tensors: a parameter's w_gpu, or a buffer of its own. */
static int alloc_saved(dn_net *net, struct dn_gpu_net *g, dn_error *err)
{
    int n = 0;
    for (int i = 0; i < net->n; i++)
        n += net->layers[i].n_saved;
    g->extra = calloc(n ? n : 1, sizeof *g->extra);
    if (!g->extra)
        return dn_fail(err, "out of memory");
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_saved; k++) {
            for (int p = 0; p < l->n_params; p++)
                if (l->params[p].w == l->saved[k])
                    l->saved_gpu[k] = l->params[p].w_gpu;
            if (l->saved_gpu[k])
                continue;
            if (!(l->saved_gpu[k] = dn_gpu_floats(l->saved_n[k], err)))
                return -1;
            g->extra[g->n_extra++] = l->saved_gpu[k];
        }
    }
    return 0;
}

static int alloc_activations(dn_net *net, struct dn_gpu_net *g, dn_error *err)
{
    size_t total = 0;
    for (int i = 0; i < net->n; i++)
        total += aligned_floats((size_t)net->layers[i].batch *
                                net->layers[i].outputs);
    g->delta_floats = total;
    if (!(g->outputs = dn_gpu_floats(total, err)) ||
        !(g->deltas = dn_gpu_floats(total, err)))
        return -1;
    size_t off = 0;
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        l->output_gpu = g->outputs + off;
        l->delta_gpu = g->deltas + off;
        off += aligned_floats((size_t)l->batch * l->outputs);
        if (l->is_loss) {
            if (!(l->cost_gpu = dn_gpu_floats(l->batch, err)))
                return -1;
            g->n_loss++;
        }
    }
    const size_t in = (size_t)net->batch * net->inputs;
    if (!(net->input_data_gpu = dn_gpu_floats(in, err)) ||
        !(net->truth_gpu = dn_gpu_floats((size_t)net->batch * net->truths,
                                         err)) ||
        (net->input_delta && !(net->input_delta_gpu = dn_gpu_floats(in, err))))
        return -1;
    return 0;
}

static void *pinned(size_t bytes, dn_error *err)
{
    void *p = NULL;
    if (DN_CUDA_OK(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable),
                err))
        return NULL;
    memset(p, 0, bytes ? bytes : 1);
    return p;
}

int dn_gpu_staging_make(const dn_net *net, dn_gpu_staging *st, dn_error *err)
{
    const size_t B = (size_t)net->batch, f = sizeof(float);
    const dn_layer *last = &net->layers[net->n - 1];
    int n_loss = 0;
    for (int i = 0; i < net->n; i++)
        n_loss += net->layers[i].is_loss;
    if (!(st->h_input = pinned(B * net->inputs * f, err)) ||
        !(st->h_truth = pinned(B * net->truths * f, err)) ||
        !(st->h_output = pinned(B * last->outputs * f, err)) ||
        !(st->h_cost = pinned(B * (n_loss ? n_loss : 1) * f, err)))
        return -1;
    return 0;
}

void dn_gpu_staging_free(dn_gpu_staging *st)
{
    float *const bufs[] = {st->h_input, st->h_truth, st->h_output, st->h_cost};
    for (int i = 0; i < 4; i++)
        if (bufs[i])
            cudaFreeHost(bufs[i]);
    memset(st, 0, sizeof *st);
}

/* The layers' device state, the algorithms they choose, the workspace. */
static int make_layers(dn_net *net, dn_error *err)
{
    size_t free_bytes = 0, total_bytes = 0;
    if (DN_CUDA_OK(cudaMemGetInfo(&free_bytes, &total_bytes), err))
        return -1;
    size_t search = SEARCH_WORKSPACE_BYTES;
    if (search > free_bytes / 2)
        search = free_bytes / 2;
    /* scratch only: not cleared */
    if (search && DN_CUDA_OK(cudaMalloc(&net->workspace_gpu, search), err))
        return -1;
    net->workspace_gpu_bytes = search;
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        dn_net_enter_layer(net, i);
        if (l->type->gpu->make(l, net, err)) {
            char msg[DN_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return dn_fail(err, "layer %d [%s] on the GPU: %s", i,
                           l->type->name, msg);
        }
    }
    dn_gpu_free(net->workspace_gpu);
    net->workspace_gpu = NULL;
    size_t need = 0;
    for (int i = 0; i < net->n; i++)
        if (net->layers[i].workspace_gpu > need)
            need = net->layers[i].workspace_gpu;
    net->workspace_gpu_bytes = need;
    return (net->workspace_gpu = dn_gpu_bytes(need, err)) ? 0 : -1;
}

/* host <-> device copies of n floats on the net's stream, waited for */
static int copy_floats(dn_net *dev, float *dst, const float *src, long n,
                       enum cudaMemcpyKind kind, dn_error *err)
{
    if (n <= 0 || dst == src)
        return 0;
    return DN_CUDA_OK(cudaMemcpyAsync(dst, src, (size_t)n * sizeof(float), kind,
                                   dn_gpu_stream(dev)), err);
}

/*
 * Copy between host's host tensors and dev's device twins (host and dev
 * are the same network, or a network and its replica: same layers). Saved
 * tensors and parameters always; optimiser state and gradients on request.
 */
int dn_gpu_copy_tensors(dn_net *host, dn_net *dev, int up, int what,
                        dn_error *err)
{
    const enum cudaMemcpyKind kind = up ? cudaMemcpyHostToDevice
                                        : cudaMemcpyDeviceToHost;
    if (DN_CUDA_OK(cudaSetDevice(dev->gpu), err) ||
        DN_CUDA_OK(cudaStreamSynchronize(dn_gpu_stream(dev)), err))
        return -1;
    for (int i = 0; i < host->n; i++) {
        dn_layer *h = &host->layers[i], *d = &dev->layers[i];
        for (int k = 0; k < h->n_saved; k++)
            if (copy_floats(dev, up ? d->saved_gpu[k] : h->saved[k],
                            up ? h->saved[k] : d->saved_gpu[k], h->saved_n[k],
                            kind, err))
                return -1;
        for (int p = 0; p < h->n_params; p++) {
            dn_param *hp = &h->params[p], *dp = &d->params[p];
            const long n = hp->n;
#define COPY(hbuf, dbuf)                                                     \
    copy_floats(dev, up ? (dbuf) : (hbuf), up ? (hbuf) : (dbuf), n, kind, err)
            if ((!param_is_saved(h, hp->w) && COPY(hp->w, dp->w_gpu)) ||
                ((what & DN_GPU_COPY_STATE) && COPY(hp->m, dp->m_gpu)) ||
                ((what & DN_GPU_COPY_STATE) && host->adam &&
                 COPY(hp->v, dp->v_gpu)) ||
                ((what & DN_GPU_COPY_GRADS) && COPY(hp->grad, dp->grad_gpu)))
                return -1;
#undef COPY
        }
    }
    return DN_CUDA_OK(cudaStreamSynchronize(dn_gpu_stream(dev)), err);
}

void dn_gpu_describe(char *name, size_t size, const dn_net *net,
                     const char *devices, const char *gpu_name)
{
#ifdef DN_CUDNN
    const char *dnn = ", cuDNN";
#else
    const char *dnn = ", no cuDNN";
#endif
    snprintf(name, size, "GPU %s (%s)%s, %s", devices, gpu_name, dnn,
             net->tf32 ? "TF32 allowed" : "strict FP32");
}

static void gpu_free(dn_net *net);

int dn_gpu_place(dn_net *net, int device, dn_error *err)
{
    struct dn_gpu_net *g = calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    net->gpu_state = g;
    net->backend = &dn_backend_gpu;
    if (dn_gpu_ctx_get(device, &g->ctx, err))
        goto fail;
    net->gpu = device;
    if (alloc_params(net, g, err) || alloc_saved(net, g, err) ||
        alloc_activations(net, g, err) ||
        dn_gpu_staging_make(net, &g->stage, err) || make_layers(net, err))
        goto fail;
    /* algorithm searches wrote into gradients and outputs: start clean */
    if (DN_CUDA_OK(cudaMemset(g->grad, 0, g->arena_floats * sizeof(float)), err) ||
        DN_CUDA_OK(cudaDeviceSynchronize(), err) ||
        dn_gpu_copy_tensors(net, net, 1, DN_GPU_COPY_STATE | DN_GPU_COPY_GRADS,
                            err))
        goto fail;
    char id[16];
    snprintf(id, sizeof id, "%d", device);
    dn_gpu_describe(g->name, sizeof g->name, net, id, g->ctx->name);
    return 0;
fail:
    gpu_free(net);
    return -1;
}

/* The device twins and layer state; the host network stays, on the CPU. */
static void gpu_free(dn_net *net)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g)
        return;
    if (g->ctx)
        cudaSetDevice(g->ctx->device);
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        if (l->type->gpu)
            l->type->gpu->free(l);
        l->priv_gpu = NULL;
        dn_gpu_free(l->cost_gpu);
        l->cost_gpu = l->output_gpu = l->delta_gpu = NULL;
        memset(l->saved_gpu, 0, sizeof l->saved_gpu);
        for (int p = 0; p < l->n_params; p++) {
            dn_param *pr = &l->params[p];
            pr->w_gpu = pr->grad_gpu = pr->m_gpu = pr->v_gpu = NULL;
        }
    }
    for (int e = 0; e < g->n_extra; e++)
        dn_gpu_free(g->extra[e]);
    free(g->extra);
    dn_gpu_free(g->w);
    dn_gpu_free(g->grad);
    dn_gpu_free(g->m);
    dn_gpu_free(g->v);
    dn_gpu_free(g->chunks);
    dn_gpu_free(g->outputs);
    dn_gpu_free(g->deltas);
    dn_gpu_free(net->input_data_gpu);
    dn_gpu_free(net->truth_gpu);
    dn_gpu_free(net->input_delta_gpu);
    dn_gpu_free(net->workspace_gpu);
    dn_gpu_staging_free(&g->stage);
    free(g);
    net->gpu_state = NULL;
    net->gpu = -1;
    net->input_data_gpu = net->truth_gpu = net->input_delta_gpu = NULL;
    net->input_gpu = net->delta_gpu = NULL;
    net->workspace_gpu = NULL;
    net->workspace_gpu_bytes = 0;
    net->backend = &dn_backend_cpu;
}

/* ----------------------------------------------------------- the passes */

static void gpu_zero_deltas(dn_net *net)
{
    struct dn_gpu_net *g = net->gpu_state;
    DN_GPU_CUDA(net, cudaSetDevice(net->gpu));
    DN_GPU_CUDA(net, cudaMemsetAsync(g->deltas, 0,
                                     g->delta_floats * sizeof(float),
                                     dn_gpu_stream(net)));
    if (net->input_delta_gpu)
        DN_GPU_CUDA(net, cudaMemsetAsync(net->input_delta_gpu, 0,
                                         sizeof(float) * net->batch *
                                             net->inputs,
                                         dn_gpu_stream(net)));
}

void dn_gpu_queue_forward(dn_net *net, const float *in, const float *truth,
                          int train)
{
    cudaStream_t s = dn_gpu_stream(net);
    DN_GPU_CUDA(net, cudaSetDevice(net->gpu));
    net->train = train;
    DN_GPU_CUDA(net, cudaMemcpyAsync(net->input_data_gpu, in,
                                     sizeof(float) * net->batch * net->inputs,
                                     cudaMemcpyHostToDevice, s));
    DN_GPU_CUDA(net, cudaMemcpyAsync(net->truth_gpu, truth,
                                     sizeof(float) * net->batch * net->truths,
                                     cudaMemcpyHostToDevice, s));
    if (train)
        gpu_zero_deltas(net);
    for (int i = 0; i < net->n; i++) {
        dn_net_enter_layer(net, i);
        net->layers[i].type->gpu->forward(&net->layers[i], net);
    }
}

/* Queue the copies back: the last output into out, each loss layer's
 * per-image losses into row k of cost (row stride: stride floats). */
void dn_gpu_queue_results(dn_net *net, float *out, float *cost, long stride)
{
    cudaStream_t s = dn_gpu_stream(net);
    const dn_layer *last = &net->layers[net->n - 1];
    DN_GPU_CUDA(net, cudaMemcpyAsync(out, last->output_gpu,
                                     sizeof(float) * last->batch * last->outputs,
                                     cudaMemcpyDeviceToHost, s));
    int k = 0;
    for (int i = 0; i < net->n; i++) {
        const dn_layer *l = &net->layers[i];
        if (!l->is_loss)
            continue;
        DN_GPU_CUDA(net, cudaMemcpyAsync(cost + k++ * stride, l->cost_gpu,
                                         sizeof(float) * l->batch,
                                         cudaMemcpyDeviceToHost, s));
    }
}

void dn_gpu_take_results(dn_net *net, const dn_gpu_staging *st)
{
    dn_layer *last = &net->layers[net->n - 1];
    memcpy(last->output, st->h_output,
           sizeof(float) * net->batch * last->outputs);
    int k = 0;
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        if (!l->is_loss)
            continue;
        double sum = 0;
        for (int b = 0; b < net->batch; b++)
            sum += st->h_cost[(long)k * net->batch + b];
        l->cost = (float)sum;
        k++;
    }
}

static void gpu_forward(dn_net *net, int train)
{
    dn_gpu_staging *st = &net->gpu_state->stage;
    net->train = train;
    memcpy(st->h_input, net->input_data, sizeof(float) * net->batch * net->inputs);
    memcpy(st->h_truth, net->truth, sizeof(float) * net->batch * net->truths);
    dn_gpu_queue_forward(net, st->h_input, st->h_truth, train);
    dn_gpu_queue_results(net, st->h_output, st->h_cost, net->batch);
    DN_GPU_CUDA(net, cudaStreamSynchronize(dn_gpu_stream(net)));
    dn_gpu_take_results(net, st);
}

static void gpu_backward(dn_net *net)
{
    DN_GPU_CUDA(net, cudaSetDevice(net->gpu));
    for (int i = net->n - 1; i >= 0; i--) {
        dn_net_enter_layer(net, i);
        net->layers[i].type->gpu->backward(&net->layers[i], net);
    }
}

/* The CPU update's formulas (network.c) over the arenas (network.cu). */
static void gpu_update(dn_net *net, double lr)
{
    dn_gpu_update_args a = {
        .adam = net->adam,
        .lr = (float)lr,
        .images = (float)net->images_per_batch,
        .decay = (float)net->decay,
        .momentum = (float)net->momentum,
        .b1 = (float)net->b1,
        .b2 = (float)net->b2,
        .eps = (float)net->eps,
    };
    dn_adam_corrections(net, &a.c1, &a.c2);
    DN_GPU_CUDA(net, cudaSetDevice(net->gpu));
    dn_gpu_update(net, &a);
}

/* ----------------------------------------------------- host interface */

static int gpu_pull(const dn_net *net, dn_error *err)
{
    dn_net *host = (dn_net *)net; /* only the host copies change */
    return dn_gpu_copy_tensors(host, host, 0, DN_GPU_COPY_STATE, err);
}

static int gpu_push(dn_net *net, dn_error *err)
{
    return dn_gpu_copy_tensors(net, net, 1, DN_GPU_COPY_STATE, err);
}

static int gpu_sync(dn_net *net, int wait, dn_error *err)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (wait) {
        DN_GPU_CUDA(net, cudaSetDevice(net->gpu));
        DN_GPU_CUDA(net, cudaStreamSynchronize(dn_gpu_stream(net)));
    }
    if (!err)
        return 0;
    const int failed = g->failed;
    if (failed)
        *err = g->err;
    g->failed = 0;
    return failed ? -1 : 0;
}

/* the host copies are stale: a checkpoint checks what it pulls */
static int gpu_check_weights(const dn_net *net, dn_error *err)
{
    (void)net, (void)err;
    return 0;
}

static const char *gpu_device_name(const dn_net *net)
{
    return net->gpu_state->name;
}

/* ----------------------------------------- training across processes */

static int gpu_join_ranks(dn_net *net, dn_comm *host, dn_comm **out,
                          dn_error *err)
{
    return dn_comm_nccl_mpi_make(host, net->gpu, out, err);
}

/* one collective over the whole gradient arena, on the device's stream */
static int gpu_all_reduce_grads(dn_net *net, dn_comm *c, dn_error *err)
{
    struct dn_gpu_net *g = net->gpu_state;
    return c->ops->all_reduce_sum(c, &g->grad, g->arena_floats, err);
}

static int gpu_broadcast_state(dn_net *net, dn_comm *c, int root,
                               dn_error *err)
{
    struct dn_gpu_net *g = net->gpu_state;
    float *arenas[3] = {g->w, g->m, net->adam ? g->v : NULL};
    for (int i = 0; i < 3; i++)
        if (arenas[i] && c->ops->broadcast(c, &arenas[i], g->arena_floats,
                                           root, err))
            return -1;
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_saved; k++)
            if (!dn_gpu_param(l, l->saved[k]) &&
                c->ops->broadcast(c, &l->saved_gpu[k],
                                  (size_t)l->saved_n[k], root, err))
                return -1;
    }
    return gpu_sync(net, 1, err);
}

const dn_backend dn_backend_gpu = {
    .name = "gpu",
    .forward = gpu_forward,
    .backward = gpu_backward,
    .update = gpu_update,
    .zero_deltas = gpu_zero_deltas,
    .push = gpu_push,
    .pull = gpu_pull,
    .sync = gpu_sync,
    .check_weights = gpu_check_weights,
    .device_name = gpu_device_name,
    .free = gpu_free,
    .join_ranks = gpu_join_ranks,
    .all_reduce_grads = gpu_all_reduce_grads,
    .broadcast_state = gpu_broadcast_state,
};

/* ---------------------------------------------------------------- tests */

int dn_net_pull_all(dn_net *net, dn_error *err)
{
    if (!net->gpu_state)
        return dn_fail(err, "dn_net_pull_all: not a single-device network");
    if (dn_gpu_copy_tensors(net, net, 0, DN_GPU_COPY_STATE | DN_GPU_COPY_GRADS,
                            err))
        return -1;
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        const long n = (long)l->batch * l->outputs;
        if (copy_floats(net, l->output, l->output_gpu, n,
                        cudaMemcpyDeviceToHost, err) ||
            copy_floats(net, l->delta, l->delta_gpu, n, cudaMemcpyDeviceToHost,
                        err))
            return -1;
    }
    if (net->input_delta && net->input_delta_gpu &&
        copy_floats(net, net->input_delta, net->input_delta_gpu,
                    (long)net->batch * net->inputs, cudaMemcpyDeviceToHost, err))
        return -1;
    return DN_CUDA_OK(cudaStreamSynchronize(dn_gpu_stream(net)), err);
}

int dn_net_push_delta(dn_net *net, int layer, dn_error *err)
{
    dn_layer *l = &net->layers[layer];
    if (!net->gpu_state)
        return dn_fail(err, "dn_net_push_delta: not a single-device network");
    if (copy_floats(net, l->delta_gpu, l->delta, (long)l->batch * l->outputs,
                    cudaMemcpyHostToDevice, err))
        return -1;
    return DN_CUDA_OK(cudaStreamSynchronize(dn_gpu_stream(net)), err);
}

#else

int dn_gpu_count(void) { return 0; }

#endif
