/*
 * network_gpu.c - a network on CUDA devices (GPU builds; a CPU build keeps
 * only the stubs at the end, which say so).
 *
 * Moving a network to a device (dn_net_use_devices) creates, once:
 *   - the device twins of every buffer: one arena each for the parameters'
 *     weights, gradients and optimiser state (one kernel updates them all,
 *     one all-reduce sums them), one for the outputs and one for the deltas
 *     (one memset zeroes them), the saved tensors that are not parameters
 *     (batch-norm statistics), input, truth, and the shared workspace;
 *   - each layer's device state (make_gpu: cuDNN descriptors, algorithms
 *     chosen by measurement), with a large search workspace while they are
 *     chosen, then the workspace the chosen ones need;
 *   - pinned host staging for what crosses the bus every pass: the input
 *     batch and truth going up, the last layer's output and the per-image
 *     losses coming back.
 * Then the weights are pushed once and stay there: a training step copies
 * the batch up and the output and losses down, and waits once, at the end
 * of the forward pass (dn_net_forward's contract). Backward and update are
 * only queued. Checkpoints pull (dn_weights_save calls dn_net_pull), loads
 * push.
 *
 * Several devices (data parallel): the network given becomes a front that
 * holds no twins; it owns one replica per device, each a network built
 * from a copy of its cfg with batch/n images per forward pass and the same
 * weights. A pass scatters the batch (replica r takes images r*b .. r*b+b-1,
 * b = batch/n, and knows its offset so that dropout draws the masks a
 * single device would), gathers the outputs and losses, and an update
 * first sums the gradient arenas of all replicas with ncclAllReduce, so
 * every replica applies the same update to the same weights. Batch-norm
 * statistics are those of each replica's images; checkpoints take replica
 * 0's (as PyTorch's DistributedDataParallel broadcasts rank 0's buffers).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "layer_util.h"

int dn_devices_parse(const char *list, dn_devices *out, dn_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p = list;
    while (*p) {
        char *end;
        errno = 0;
        long id = strtol(p, &end, 10);
        if (end == p || errno || id < 0 || id >= DN_MAX_GPUS ||
            (*end && *end != ','))
            return dn_fail(err, "-gpus %s: expected device numbers 0..%d "
                           "separated by commas, e.g. -gpus 0,1", list,
                           DN_MAX_GPUS - 1);
        for (int i = 0; i < out->n; i++)
            if (out->ids[i] == id)
                return dn_fail(err, "-gpus %s: GPU %ld is listed twice", list,
                               id);
        if (out->n == DN_MAX_GPUS)
            return dn_fail(err, "-gpus %s: at most %d devices", list,
                           DN_MAX_GPUS);
        out->ids[out->n++] = (int)id;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return dn_fail(err, "-gpus %s: trailing comma", list);
    }
    if (out->n == 0)
        return dn_fail(err, "-gpus: expected device numbers, e.g. -gpus 0");
    return 0;
}

#ifdef DN_GPU

#include "cuda.h"
#ifdef DN_NCCL
#include <nccl.h>
#endif

/* While the layers choose their algorithms (cuDNN's searches) they may try
 * ones that need this much scratch (or half the free memory, if less);
 * without cuDNN there is no search. */
#ifdef DN_CUDNN
#define SEARCH_WORKSPACE_BYTES (1024UL << 20)
#else
#define SEARCH_WORKSPACE_BYTES 0UL
#endif

struct dn_gpu_front {
    int n;
    dn_net *replicas[DN_MAX_GPUS];
#ifdef DN_NCCL
    ncclComm_t comms[DN_MAX_GPUS];
#endif
};

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

/* Staging for a net whose forward batch is net->batch images. */
static int alloc_staging(dn_net *net, struct dn_gpu_net *g, int n_loss,
                         dn_error *err)
{
    const size_t B = (size_t)net->batch, f = sizeof(float);
    const dn_layer *last = &net->layers[net->n - 1];
    if (!(g->h_input = pinned(B * net->inputs * f, err)) ||
        !(g->h_truth = pinned(B * net->truths * f, err)) ||
        !(g->h_output = pinned(B * last->outputs * f, err)) ||
        !(g->h_cost = pinned(B * (n_loss ? n_loss : 1) * f, err)))
        return -1;
    return 0;
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
        net->input_gpu = i ? net->layers[i - 1].output_gpu : net->input_data_gpu;
        net->delta_gpu = i ? net->layers[i - 1].delta_gpu : net->input_delta_gpu;
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

enum { COPY_STATE = 1, COPY_GRADS = 2 };

/*
 * Copy between host's host tensors and dev's device twins (host and dev
 * are the same network, or a front and its replica: same layers). Saved
 * tensors and parameters always; optimiser state and gradients on request.
 */
static int copy_tensors(dn_net *host, dn_net *dev, int up, int what,
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
                ((what & COPY_STATE) && COPY(hp->m, dp->m_gpu)) ||
                ((what & COPY_STATE) && host->adam && COPY(hp->v, dp->v_gpu)) ||
                ((what & COPY_GRADS) && COPY(hp->grad, dp->grad_gpu)))
                return -1;
#undef COPY
        }
    }
    return DN_CUDA_OK(cudaStreamSynchronize(dn_gpu_stream(dev)), err);
}

static void describe(dn_net *net, const char *devices, const char *gpu_name)
{
    struct dn_gpu_net *g = net->gpu_state;
#ifdef DN_CUDNN
    const char *dnn = ", cuDNN";
#else
    const char *dnn = ", no cuDNN";
#endif
    snprintf(g->name, sizeof g->name, "GPU %s (%s)%s, %s", devices, gpu_name,
             dnn, net->tf32 ? "TF32 allowed" : "strict FP32");
}

/* Make net resident on one device: twins, layer state, then push. */
static int make_device(dn_net *net, int device, dn_error *err)
{
    for (int i = 0; i < net->n; i++) {
        const dn_layer_type *t = net->layers[i].type;
        if (!t->gpu)
            return dn_fail(err, "layer %d [%s] has no GPU implementation; "
                           "run it with -nogpu", i, t->name);
        if (!t->gpu->make || !t->gpu->forward || !t->gpu->backward ||
            !t->gpu->free)
            return dn_fail(err, "layer %d [%s]: internal: its GPU twin "
                           "lacks a function", i, t->name);
    }
    struct dn_gpu_net *g = calloc(1, sizeof *g);
    if (!g)
        return dn_fail(err, "out of memory");
    net->gpu_state = g;
    if (dn_gpu_ctx_get(device, &g->ctx, err))
        goto fail;
    net->gpu = device;
    if (alloc_params(net, g, err) || alloc_saved(net, g, err) ||
        alloc_activations(net, g, err) ||
        alloc_staging(net, g, g->n_loss, err) || make_layers(net, err))
        goto fail;
    /* algorithm searches wrote into gradients and outputs: start clean */
    if (DN_CUDA_OK(cudaMemset(g->grad, 0, g->arena_floats * sizeof(float)), err) ||
        DN_CUDA_OK(cudaDeviceSynchronize(), err) ||
        copy_tensors(net, net, 1, COPY_STATE | COPY_GRADS, err))
        goto fail;
    char id[16];
    snprintf(id, sizeof id, "%d", device);
    describe(net, id, g->ctx->name);
    return 0;
fail:
    dn_net_free_gpu(net);
    return -1;
}

/* ---------------------------------------------------- several devices */

static int make_front(dn_net *net, const dn_devices *dev, dn_error *err)
{
#ifndef DN_NCCL
    (void)net;
    return dn_fail(err, "%d GPUs need NCCL, and this darknet was built with "
                   "NCCL=0; use one GPU or rebuild with NCCL=1", dev->n);
#else
    const int n = dev->n;
    if (net->batch % n)
        return dn_fail(err, "the forward batch of %d images (batch / "
                       "subdivisions) does not split evenly over %d GPUs",
                       net->batch, n);
    struct dn_gpu_net *g = calloc(1, sizeof *g);
    struct dn_gpu_front *f = calloc(1, sizeof *f);
    if (!g || !f) {
        free(g);
        free(f);
        return dn_fail(err, "out of memory");
    }
    net->gpu_state = g;
    g->front = f;
    for (int i = 0; i < net->n; i++)
        g->n_loss += net->layers[i].is_loss;
    if (dn_gpu_ctx_get(dev->ids[0], &g->ctx, err))
        goto fail;
    for (int r = 0; r < n; r++) {
        dn_cfg *copy = dn_cfg_clone(net->cfg);
        dn_net_options opt = {.batch_override = net->batch / n};
        if (!copy) {
            dn_fail(err, "out of memory");
            goto fail;
        }
        if (dn_net_make(copy, &opt, &f->replicas[r], err)) {
            dn_cfg_free(copy);
            goto fail;
        }
        f->n++;
        dn_net *rep = f->replicas[r];
        rep->seen = net->seen;
        rep->image_offset = (long)r * rep->batch;
        /* the replica starts from the front's weights and state */
        for (int i = 0; i < net->n; i++) {
            dn_layer *h = &net->layers[i], *d = &rep->layers[i];
            for (int k = 0; k < h->n_saved; k++)
                memcpy(d->saved[k], h->saved[k], h->saved_n[k] * sizeof(float));
            for (int p = 0; p < h->n_params; p++) {
                const size_t bytes = h->params[p].n * sizeof(float);
                memcpy(d->params[p].w, h->params[p].w, bytes);
                memcpy(d->params[p].m, h->params[p].m, bytes);
                if (net->adam)
                    memcpy(d->params[p].v, h->params[p].v, bytes);
            }
        }
        if (make_device(rep, dev->ids[r], err))
            goto fail;
    }
    if (DN_CUDA_OK(cudaSetDevice(dev->ids[0]), err))
        goto fail;
    ncclResult_t nr = ncclCommInitAll(f->comms, n, dev->ids);
    if (nr != ncclSuccess) {
        dn_fail(err, "ncclCommInitAll over %d GPUs: %s", n,
                ncclGetErrorString(nr));
        goto fail;
    }
    if (alloc_staging(net, g, g->n_loss, err))
        goto fail;
    char ids[DN_MAX_GPUS * 4] = "";
    for (int r = 0; r < n; r++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d",
                 r ? "," : "", dev->ids[r]);
    describe(net, ids, g->ctx->name);
    return 0;
fail:
    dn_net_free_gpu(net);
    return -1;
#endif
}

int dn_net_use_devices(dn_net *net, const dn_devices *dev, dn_error *err)
{
    if (!dev || dev->n == 0)
        return 0;
    if (net->gpu_state)
        return dn_fail(err, "the network is already on %s",
                       dn_net_device_name(net));
    if (dev->n == 1)
        return make_device(net, dev->ids[0], err);
    return make_front(net, dev, err);
}

void dn_net_free_gpu(dn_net *net)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g)
        return;
    if (g->front) {
        struct dn_gpu_front *f = g->front;
        for (int r = 0; r < f->n; r++) {
#ifdef DN_NCCL
            if (f->comms[r])
                ncclCommDestroy(f->comms[r]);
#endif
            dn_net_free(f->replicas[r]);
        }
        free(f);
    }
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
    if (g->h_input)
        cudaFreeHost(g->h_input);
    if (g->h_truth)
        cudaFreeHost(g->h_truth);
    if (g->h_output)
        cudaFreeHost(g->h_output);
    if (g->h_cost)
        cudaFreeHost(g->h_cost);
    free(g);
    net->gpu_state = NULL;
    net->gpu = -1;
    net->input_data_gpu = net->truth_gpu = net->input_delta_gpu = NULL;
    net->input_gpu = net->delta_gpu = NULL;
    net->workspace_gpu = NULL;
    net->workspace_gpu_bytes = 0;
}

/* ----------------------------------------------------------- the passes */

static void enter_layer(dn_net *net, int i)
{
    net->input_gpu = i ? net->layers[i - 1].output_gpu : net->input_data_gpu;
    net->delta_gpu = i ? net->layers[i - 1].delta_gpu : net->input_delta_gpu;
}

void dn_net_zero_deltas_gpu(dn_net *net)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (g->front) {
        for (int r = 0; r < g->front->n; r++)
            dn_net_zero_deltas_gpu(g->front->replicas[r]);
        return;
    }
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

/* Queue a forward pass of a device-resident net over pinned in/truth. */
static void queue_forward(dn_net *net, const float *in, const float *truth,
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
        dn_net_zero_deltas_gpu(net);
    for (int i = 0; i < net->n; i++) {
        enter_layer(net, i);
        net->layers[i].type->gpu->forward(&net->layers[i], net);
    }
}

/* Queue the copies back: the last output into out, each loss layer's
 * per-image losses into row k of cost (row stride: stride floats). */
static void queue_results(dn_net *net, float *out, float *cost, long stride)
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

/* After the wait: the staged results into the host net. */
static void take_results(dn_net *net)
{
    struct dn_gpu_net *g = net->gpu_state;
    dn_layer *last = &net->layers[net->n - 1];
    memcpy(last->output, g->h_output,
           sizeof(float) * net->batch * last->outputs);
    int k = 0;
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        if (!l->is_loss)
            continue;
        double sum = 0;
        for (int b = 0; b < net->batch; b++)
            sum += g->h_cost[(long)k * net->batch + b];
        l->cost = (float)sum;
        k++;
    }
}

void dn_net_forward_gpu(dn_net *net, int train)
{
    struct dn_gpu_net *g = net->gpu_state;
    net->train = train;
    memcpy(g->h_input, net->input_data, sizeof(float) * net->batch * net->inputs);
    memcpy(g->h_truth, net->truth, sizeof(float) * net->batch * net->truths);
    if (!g->front) {
        queue_forward(net, g->h_input, g->h_truth, train);
        queue_results(net, g->h_output, g->h_cost, net->batch);
        DN_GPU_CUDA(net, cudaStreamSynchronize(dn_gpu_stream(net)));
        take_results(net);
        return;
    }
    struct dn_gpu_front *f = g->front;
    for (int r = 0; r < f->n; r++) {
        dn_net *rep = f->replicas[r];
        const long b0 = rep->image_offset;
        rep->seen = net->seen;
        queue_forward(rep, g->h_input + b0 * net->inputs,
                      g->h_truth + b0 * net->truths, train);
        queue_results(rep, g->h_output + b0 * net->layers[net->n - 1].outputs,
                      g->h_cost + b0, net->batch);
    }
    for (int r = 0; r < f->n; r++) {
        dn_net *rep = f->replicas[r];
        DN_GPU_CUDA(rep, cudaSetDevice(rep->gpu));
        DN_GPU_CUDA(rep, cudaStreamSynchronize(dn_gpu_stream(rep)));
    }
    take_results(net);
}

static void queue_backward(dn_net *net)
{
    DN_GPU_CUDA(net, cudaSetDevice(net->gpu));
    for (int i = net->n - 1; i >= 0; i--) {
        enter_layer(net, i);
        net->layers[i].type->gpu->backward(&net->layers[i], net);
    }
}

void dn_net_backward_gpu(dn_net *net)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g->front) {
        queue_backward(net);
        return;
    }
    for (int r = 0; r < g->front->n; r++)
        queue_backward(g->front->replicas[r]);
}

/* dn_net_update's constants (network.c), for the kernel in network.cu. */
static void queue_update(dn_net *net, double lr)
{
    const long t = (long)(net->seen / (uint64_t)net->images_per_batch) + 1;
    dn_gpu_update_args a = {
        .adam = net->adam,
        .lr = (float)lr,
        .images = (float)net->images_per_batch,
        .decay = (float)net->decay,
        .momentum = (float)net->momentum,
        .b1 = (float)net->b1,
        .b2 = (float)net->b2,
        .eps = (float)net->eps,
        .c1 = 1.0f - (float)pow(net->b1, (double)t),
        .c2 = 1.0f - (float)pow(net->b2, (double)t),
    };
    DN_GPU_CUDA(net, cudaSetDevice(net->gpu));
    dn_gpu_update(net, &a);
}

void dn_net_update_gpu(dn_net *net, double lr)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g->front) {
        queue_update(net, lr);
        return;
    }
#ifdef DN_NCCL
    struct dn_gpu_front *f = g->front;
    /* sum of every replica's gradients, in place, on every replica */
    ncclResult_t nr = ncclGroupStart();
    for (int r = 0; r < f->n && nr == ncclSuccess; r++) {
        dn_net *rep = f->replicas[r];
        struct dn_gpu_net *rg = rep->gpu_state;
        nr = ncclAllReduce(rg->grad, rg->grad, rg->arena_floats, ncclFloat,
                           ncclSum, f->comms[r], dn_gpu_stream(rep));
    }
    ncclResult_t end = ncclGroupEnd();
    if (nr == ncclSuccess)
        nr = end;
    if (nr != ncclSuccess) {
        dn_error e;
        dn_fail(&e, "ncclAllReduce of the gradients: %s",
                ncclGetErrorString(nr));
        dn_gpu_note(net, &e);
    }
    for (int r = 0; r < f->n; r++) {
        f->replicas[r]->seen = net->seen;
        queue_update(f->replicas[r], lr);
    }
#else
    (void)lr;
#endif
}

/* ----------------------------------------------------- host interface */

const char *dn_net_device_name(const dn_net *net)
{
    return net->gpu_state ? net->gpu_state->name : "CPU";
}

int dn_net_pull(const dn_net *net, dn_error *err)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g)
        return 0;
    dn_net *host = (dn_net *)net; /* only the host copies change */
    dn_net *dev = g->front ? g->front->replicas[0] : host;
    return copy_tensors(host, dev, 0, COPY_STATE, err);
}

int dn_net_push(dn_net *net, dn_error *err)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g)
        return 0;
    if (!g->front)
        return copy_tensors(net, net, 1, COPY_STATE, err);
    for (int r = 0; r < g->front->n; r++) {
        g->front->replicas[r]->seen = net->seen;
        if (copy_tensors(net, g->front->replicas[r], 1, COPY_STATE, err))
            return -1;
    }
    return 0;
}

/* The first noted error of net (and its replicas); clears them. */
static int take_error(dn_net *net, dn_error *err)
{
    struct dn_gpu_net *g = net->gpu_state;
    int failed = 0;
    if (g->front)
        for (int r = 0; r < g->front->n && !failed; r++)
            failed = take_error(g->front->replicas[r], err);
    if (!failed && g->failed) {
        *err = g->err;
        failed = 1;
    }
    g->failed = 0;
    return failed ? -1 : 0;
}

int dn_net_check(dn_net *net, dn_error *err)
{
    return net->gpu_state ? take_error(net, err) : 0;
}

int dn_net_sync(dn_net *net, dn_error *err)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g)
        return 0;
    if (g->front) {
        for (int r = 0; r < g->front->n; r++)
            dn_net_sync(g->front->replicas[r], NULL);
    } else {
        DN_GPU_CUDA(net, cudaSetDevice(net->gpu));
        DN_GPU_CUDA(net, cudaStreamSynchronize(dn_gpu_stream(net)));
    }
    return err ? take_error(net, err) : 0;
}

int dn_net_pull_all(dn_net *net, dn_error *err)
{
    struct dn_gpu_net *g = net->gpu_state;
    if (!g || g->front)
        return dn_fail(err, "dn_net_pull_all: not a single-device network");
    if (copy_tensors(net, net, 0, COPY_STATE | COPY_GRADS, err))
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
    if (!net->gpu_state || net->gpu_state->front)
        return dn_fail(err, "dn_net_push_delta: not a single-device network");
    if (copy_floats(net, l->delta_gpu, l->delta, (long)l->batch * l->outputs,
                    cudaMemcpyHostToDevice, err))
        return -1;
    return DN_CUDA_OK(cudaStreamSynchronize(dn_gpu_stream(net)), err);
}

#else /* a CPU build: the device interface says so */

int dn_gpu_count(void) { return 0; }

int dn_net_use_devices(dn_net *net, const dn_devices *dev, dn_error *err)
{
    (void)net;
    if (!dev || dev->n == 0)
        return 0;
    return dn_fail(err, "-gpus: this darknet was built without GPU support; "
                   "rebuild with make GPU=1 (and CUDNN=1), or leave -gpus out");
}

const char *dn_net_device_name(const dn_net *net)
{
    (void)net;
    return "CPU";
}

int dn_net_pull(const dn_net *net, dn_error *err)
{
    (void)net, (void)err;
    return 0;
}

int dn_net_push(dn_net *net, dn_error *err)
{
    (void)net, (void)err;
    return 0;
}

int dn_net_sync(dn_net *net, dn_error *err)
{
    (void)net, (void)err;
    return 0;
}

int dn_net_check(dn_net *net, dn_error *err)
{
    (void)net, (void)err;
    return 0;
}

#endif
