/*
 * network.c - a network is a flat array of layers built from a cfg, as in
 * Darknet. This file builds it (shapes flow from [net] through each layer's
 * make()), runs forward and backward passes, and applies the optimiser.
 *
 * Where it runs is its backend's business (backend.h): this file calls
 * through net->backend and is itself the CPU's backend (dn_backend_cpu).
 *
 * Memory: every buffer (outputs, deltas, gradients, optimiser state, the
 * shared workspace) is allocated and touched once here; nothing is allocated
 * per batch.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend.h"
#include "xalloc.h"
#include "darknet.h"
#include "layer_util.h"

/* Section names Darknet accepts for each layer type. */
static const struct {
    const char *alias, *name;
} aliases[] = {
    {"conv", "convolutional"}, {"conn", "connected"}, {"max", "maxpool"},
    {"avg", "avgpool"},        {"soft", "softmax"},   {"norm", "batchnorm"},
};

static const char *canonical(const char *type)
{
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(type, aliases[i].alias) == 0)
            return aliases[i].name;
    return type;
}

/* ------------------------------------------------------------- memory */

double dn_machine_memory(void)
{
    double bytes = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    const int limits[] = {RLIMIT_AS, RLIMIT_DATA};
    for (int i = 0; i < 2; i++) {
        struct rlimit r;
        if (getrlimit(limits[i], &r) == 0 && r.rlim_cur != RLIM_INFINITY &&
            (double)r.rlim_cur < bytes)
            bytes = (double)r.rlim_cur;
    }
    /* a container's limit (cgroup v2): a number, or "max" */
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    if (f) {
        double v;
        if (fscanf(f, "%lf", &v) == 1 && v > 0 && v < bytes)
            bytes = v;
        fclose(f);
    }
    return bytes > 0 ? bytes : 1e18;
}

const char *dn_bytes_text(double bytes)
{
    static char buf[4][32];
    static int next;
    char *b = buf[next++ % 4];
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(b, 32, "%.0f bytes", bytes);
        return b;
    }
    int u = -1;
    while (bytes >= 1024 && u < 5)
        bytes /= 1024, u++;
    snprintf(b, 32, "%.1f %s", bytes, units[u]);
    return b;
}

/* [net] max_memory=: a whole number of bytes, optionally with one of the
 * suffixes K, M, G, T (powers of 1024): 500000000, 512M, 2G. */
static int parse_max_memory(dn_section *s, double *out, dn_error *err)
{
    dn_kv *kv = dn_key_kv(s, dn_net_keys, "max_memory");
    *out = 0;
    if (!kv)
        return 0;
    const char *v = kv->value, *p = v;
    double x = 0;
    while (isdigit((unsigned char)*p) && x < 1e30)
        x = x * 10 + (*p++ - '0');
    const char *suffixes = "KMGT";
    const char *at = *p ? strchr(suffixes, toupper((unsigned char)*p)) : NULL;
    if (at && *p) {
        x *= pow(1024, (double)(at - suffixes + 1));
        p++;
    }
    if (p == v || !isdigit((unsigned char)*v) || *p || x < 1 || x > 1e30)
        return dn_sec_fail(s, "max_memory", err, "expected a byte count such "
                           "as 2G, 512M or 100000000 (K, M, G, T: powers of "
                           "1024), got \"%s\"", v);
    *out = x;
    return 0;
}

/* Adds bytes to the plan; fails when the total passes the limit. who: the
 * section the bytes belong to; what: which tensors, for the message. */
static int reserve_bytes(dn_net *net, const dn_section *s, int index,
                         double bytes, const char *what, dn_error *err)
{
    net->planned_bytes += bytes;
    const double total = net->planned_bytes + 4.0 * (double)net->planned_workspace;
    if (total <= net->max_bytes)
        return 0;
    char layer[64] = "";
    if (index >= 0)
        snprintf(layer, sizeof layer, " layer %d", index);
    const char *const limits[] = {
        "the memory limit", "the [net] max_memory limit", "the caller's limit"};
    return dn_fail(err, "%s:%d: [%s]%s: error: needs %s (%s); the network "
                   "would need %s by then, more than %s of %s%s",
                   s->path, s->line, s->type, layer, dn_bytes_text(bytes), what,
                   dn_bytes_text(total), limits[net->limit_source],
                   dn_bytes_text(net->max_bytes),
                   net->limit_source ? "" : " (the machine's; [net] "
                   "max_memory= sets a lower one)");
}

int dn_layer_reserve(dn_layer *l, dn_section *s, dn_net *net,
                     double private_floats, dn_error *err)
{
    double params = 0;
    for (int k = 0; k < l->n_params; k++)
        params += (double)l->params[k].n;
    const double outputs = (double)l->out_c * l->out_h * l->out_w;
    /* output and delta (an upper bound: deltas share buffers, see
     * assign_deltas); per parameter its gradient, momentum (Adam: and
     * second moment) */
    const double floats = private_floats + 2.0 * l->batch * outputs +
                          params * (net->adam ? 3 : 2);
    if (l->workspace > net->planned_workspace)
        net->planned_workspace = l->workspace;
    char what[160];
    snprintf(what, sizeof what, "%.0f parameters, output %dx%dx%d x batch %d, "
             "workspace %s shared", params, l->out_c, l->out_h, l->out_w,
             l->batch, dn_bytes_text(4.0 * (double)l->workspace));
    net->reserved_layer = l->index;
    if (reserve_bytes(net, s, l->index, 4.0 * floats, what, err))
        return -1;
    return net->planned ? 1 : 0;
}

/* ------------------------------------------------------------ building */

/*
 * Deltas in shared buffers. Layer i's delta is written by the layers that
 * read its output (i + 1, taken to read it even where a [route] does not,
 * and those whose type's reads() names i) and read
 * by layer i, so during the backward pass (layers in descending order) it
 * is live from its last writer's step, from = max of those, to step i.
 * Each delta takes, at its first step, a free buffer (whose delta ended
 * at a later step) that fits it best, or the largest free one grown to it,
 * or a new one. A chain needs two buffers; ResNet-34-CIFAR's 776 MiB of
 * deltas at batch 128 fit in a few tens of MiB. The last layer and loss
 * layers write their delta in the forward: a buffer of their own each.
 */
static void assign_deltas(dn_net *net)
{
    const int n = net->n;
    int *from = dn_xcalloc((size_t)n, sizeof *from);
    int *owner = dn_xcalloc((size_t)n, sizeof *owner); /* buffer -> delta */
    int *of = dn_xcalloc((size_t)n, sizeof *of);       /* delta -> buffer */
    size_t *cap = dn_xcalloc((size_t)n, sizeof *cap);
    int buffers = 0;
    for (int i = 0; i < n; i++) {
        from[i] = -1;
        if (i == n - 1 || net->layers[i].is_loss)
            continue;
        from[i] = i + 1;
        for (int j = i + 2; j < n; j++) {
            const dn_layer *r = &net->layers[j];
            if (r->type->reads && r->type->reads(r, i))
                from[i] = j;
        }
    }
    for (int step = n - 1; step >= 0; step--)
        for (int i = 0; i < n; i++) {
            const size_t need = (size_t)net->layers[i].batch *
                                net->layers[i].outputs;
            if (from[i] != step && !(from[i] < 0 && step == n - 1))
                continue;
            int best = -1;
            for (int b = 0; b < buffers && from[i] >= 0; b++) {
                const int o = owner[b]; /* free: o's delta has ended */
                if (from[o] < 0 || o <= step)
                    continue;
                const int fits = cap[b] >= need;
                if (best < 0 ||
                    (fits && (cap[best] < need || cap[b] < cap[best])) ||
                    (!fits && cap[best] < need && cap[b] > cap[best]))
                    best = b;
            }
            if (best < 0)
                best = buffers++;
            if (cap[best] < need)
                cap[best] = need;
            owner[best] = i, of[i] = best;
        }
    net->delta_buffers = dn_xcalloc((size_t)buffers, sizeof(float *));
    net->n_delta_buffers = buffers;
    for (int b = 0; b < buffers; b++)
        net->delta_buffers[b] = dn_calloc_floats(cap[b]);
    for (int i = 0; i < n; i++)
        net->layers[i].delta = net->delta_buffers[of[i]];
    net->delta_from = from;
    free(owner), free(of), free(cap);
}

static const char *const conv_backends[] = {"auto", "onednn", "im2col", NULL};
static const char *const output_activations[] = {"softmax", "sigmoid", NULL};

/* The network's [net] keys (Darknet's parse_net_options, plus ours). */
const dn_key dn_net_keys[] = {
    DN_INT("batch", "1", 1, 1 << 20, "images per weight update"),
    DN_INT("subdivisions", "1", 1, 1 << 20,
           "forward passes per update (batch / subdivisions images each)"),
    DN_INT("height", "0", 0, 1 << 16, "input height (or give inputs=)"),
    DN_INT("width", "0", 0, 1 << 16, "input width"),
    DN_INT("channels", "0", 0, 1 << 16, "input channels"),
    DN_INT("inputs", "0", 0, 1L << 30,
           "a flat input of this many values, when height/width/channels are unset"),
    DN_FLOAT("momentum", "0.9", 0, 1, "SGD momentum"),
    DN_FLOAT("decay", "0.0001", 0, 1, "weight decay (L2), on weights only"),
    DN_FLOAT("bn_momentum", "0.01", 1e-6, 1,
             "weight of a batch in batch norm's rolling statistics"),
    DN_INT("adam", "0", 0, 1, "1: Adam instead of SGD"),
    DN_FLOAT("B1", "0.9", 0, 1, "Adam's beta1"),
    DN_FLOAT("B2", "0.999", 0, 1, "Adam's beta2"),
    DN_FLOAT("eps", "1e-7", 0, 1, "Adam's epsilon"),
    DN_INT("max_batches", "0", 0, DN_NO_LIMIT,
           "weight updates to train for (0: epochs= decides)"),
    DN_INT("seed", "1", 0, DN_NO_LIMIT,
           "seed of weight initialisation, shuffling and augmentation"),
    DN_INT("threads", "0", 0, 1024, "CPU threads (0: OpenMP's default)"),
    DN_INT("tf32", "1", 0, 1, "GPU: allow TF32 tensor cores (0: strict fp32)"),
    DN_CHOICE("conv_backend", "auto", conv_backends,
              "CPU convolutions: oneDNN where it runs the shape, or im2col + GEMM"),
    DN_CHOICE("output_activation", "softmax", output_activations,
              "function of the final [softmax] layer (sigmoid: Keras's "
              "categorical cross-entropy on sigmoid outputs)"),
    DN_BYTES("max_memory", "(machine memory)",
             "refuse networks needing more (K, M, G, T: powers of 1024)"),
    DN_KEYS_END,
};

static int parse_net_options(dn_net *net, dn_section *s,
                             const dn_net_options *opt, dn_error *err)
{
    const dn_key *t = dn_net_keys;
    long batch, subdivisions, h, w, c, adam, max_batches, seed, threads, tf32;
    if (dn_key_int(s, t, "batch", &batch, err) ||
        dn_key_int(s, t, "subdivisions", &subdivisions, err) ||
        dn_key_int(s, t, "height", &h, err) ||
        dn_key_int(s, t, "width", &w, err) ||
        dn_key_int(s, t, "channels", &c, err) ||
        dn_key_double(s, t, "momentum", &net->momentum, err) ||
        dn_key_double(s, t, "decay", &net->decay, err) ||
        dn_key_double(s, t, "bn_momentum", &net->bn_momentum, err) ||
        dn_key_int(s, t, "adam", &adam, err) ||
        dn_key_double(s, t, "B1", &net->b1, err) ||
        dn_key_double(s, t, "B2", &net->b2, err) ||
        dn_key_double(s, t, "eps", &net->eps, err) ||
        dn_key_int(s, t, "max_batches", &max_batches, err) ||
        dn_key_int(s, t, "seed", &seed, err) ||
        dn_key_int(s, t, "threads", &threads, err) ||
        dn_key_int(s, t, "tf32", &tf32, err) ||
        dn_key_choice(s, t, "conv_backend", &net->conv_backend, err) ||
        dn_key_choice(s, t, "output_activation", &net->output_activation,
                      err) ||
        parse_max_memory(s, &net->max_bytes, err))
        return -1;
    const double machine = dn_machine_memory();
    net->limit_source = 1;
    if (net->max_bytes <= 0 || net->max_bytes > machine)
        net->max_bytes = machine, net->limit_source = 0;
    if (opt && opt->max_bytes > 0 && opt->max_bytes < net->max_bytes)
        net->max_bytes = opt->max_bytes, net->limit_source = 2;
    if (batch % subdivisions)
        return dn_sec_fail(s, "subdivisions", err,
                           "batch=%ld is not a multiple of subdivisions=%ld",
                           batch, subdivisions);
    if (h < 1 || w < 1 || c < 1) {
        long inputs;
        if (dn_key_int(s, t, "inputs", &inputs, err))
            return -1;
        if (inputs < 1)
            return dn_fail(err, "%s:%d: [net] needs height, width and channels "
                           "(or inputs)", s->path, s->line);
        h = w = 1;
        c = inputs;
    }
    net->images_per_batch = batch;
    net->subdivisions = (int)subdivisions;
    net->batch = (int)(batch / subdivisions);
    if (opt && opt->batch_override > 0)
        net->batch = opt->batch_override;
    net->h = (int)h, net->w = (int)w, net->c = (int)c;
    net->inputs = h * w * c;
    net->adam = (int)adam;
    net->max_batches = max_batches;
    net->seed = (uint64_t)seed;
    net->threads = (int)threads;
    net->tf32 = (int)tf32; /* read by the GPU backend; 0: strict fp32 */
    net->gpu = -1;
    if (dn_schedule_parse(s, &net->schedule, err))
        return -1;
    /* the input batch (and, on the CPU, its gradient when asked for) */
    return reserve_bytes(net, s, -1, 4.0 * net->batch * (double)net->inputs,
                         "the input batch", err);
}

/* output_activation=sigmoid changes the final [softmax] layer
 * (softmax_layer.c), so the network must end with one. */
static int check_output_activation(dn_net *net, dn_section *s, dn_error *err)
{
    dn_layer *last = &net->layers[net->n - 1];
    if (net->output_activation == DN_OUTPUT_SOFTMAX)
        return 0;
    if (last->type != &dn_layer_softmax)
        return dn_sec_fail(s, "output_activation", err,
                           "sigmoid needs the network to end with a [softmax] "
                           "layer, whose function it replaces; it ends with "
                           "[%s]", last->type->name);
    char desc[sizeof last->desc];
    snprintf(desc, sizeof desc, "sigmoid %.*s", (int)sizeof desc - 9, last->desc);
    memcpy(last->desc, desc, sizeof desc);
    return 0;
}

/* Grad, momentum and Adam buffers of every parameter; shared outputs. */
static void alloc_layer_buffers(dn_net *net, dn_layer *l)
{
    if (!l->output)
        l->output = dn_calloc_floats((size_t)l->batch * l->outputs);
    for (int p = 0; p < l->n_params; p++) {
        dn_param *pr = &l->params[p];
        pr->grad = dn_calloc_floats(pr->n);
        pr->m = dn_calloc_floats(pr->n);
        pr->v = net->adam ? dn_calloc_floats(pr->n) : NULL;
    }
}

static int make_layer(dn_net *net, dn_section *s, int index, dn_error *err)
{
    net->reserved_layer = -1;
    const dn_layer_type *type = dn_layer_type_find(canonical(s->type));
    if (!type)
        return dn_fail(err, "%s:%d: error: unknown layer type [%s]; valid: %s",
                       s->path, s->line, s->type, dn_layer_type_names());
    dn_layer *l = &net->layers[index];
    memset(l, 0, sizeof *l);
    l->type = type;
    l->index = index;
    l->batch = net->batch;
    if (index == 0) {
        l->c = net->c, l->h = net->h, l->w = net->w;
    } else {
        dn_layer *prev = &net->layers[index - 1];
        l->c = prev->out_c, l->h = prev->out_h, l->w = prev->out_w;
    }
    l->inputs = (long)l->c * l->h * l->w;
    if (type->make(l, s, net, err)) {
        if (type->free)
            type->free(l); /* make() leaves l consistent on failure */
        return -1;
    }
    l->outputs = (long)l->out_c * l->out_h * l->out_w;
    if (l->outputs < 1 || l->out_c < 1 || l->out_h < 1 || l->out_w < 1)
        return dn_fail(err, "%s:%d: [%s] error: output shape %dx%dx%d is empty "
                       "(input %dx%dx%d)", s->path, s->line, s->type, l->out_c,
                       l->out_h, l->out_w, l->c, l->h, l->w);
    if (net->reserved_layer != index) /* a layer type that forgot to */
        return dn_fail(err, "%s:%d: [%s] error: internal: this layer type "
                       "does not count its memory (dn_layer_reserve)",
                       s->path, s->line, s->type);
    if (net->planned)
        return 0;
    alloc_layer_buffers(net, l);
    if (l->workspace > net->workspace_size)
        net->workspace_size = l->workspace;
    return 0;
}

/* dn_net_plan (planned) or the real build; see dn_network.h */
static int build(dn_cfg *cfg, const dn_net_options *opt, int planned,
                 dn_net **out, dn_error *err)
{
    *out = NULL;
    if (cfg->n_sections == 0 || (strcmp(cfg->sections[0].type, "net") &&
                                 strcmp(cfg->sections[0].type, "network")))
        return dn_fail(err, "%s:%d: error: the first section must be [net]",
                       cfg->path, cfg->n_sections ? cfg->sections[0].line : 1);
    if (cfg->n_sections < 2)
        return dn_fail(err, "%s: error: no layers after [net]", cfg->path);
    dn_net *net = calloc(1, sizeof *net);
    net->layers = calloc(cfg->n_sections - 1, sizeof *net->layers);
    if (!net || !net->layers) {
        free(net);
        return dn_fail(err, "out of memory");
    }
    net->planned = planned;
    net->backend = &dn_backend_cpu;
    net->cfg = cfg; /* borrowed until success: for messages */
    if (parse_net_options(net, &cfg->sections[0], opt, err))
        goto fail;
    for (int i = 1; i < cfg->n_sections; i++) {
        if (make_layer(net, &cfg->sections[i], i - 1, err))
            goto fail;
        net->n = i;
    }
    dn_layer *last = &net->layers[net->n - 1];
    if (check_output_activation(net, &cfg->sections[0], err))
        goto fail;
    net->truths = last->outputs;
    if (reserve_bytes(net, &cfg->sections[cfg->n_sections - 1], net->n - 1,
                      4.0 * net->batch * (double)net->truths, "the truth batch",
                      err))
        goto fail;
    if (planned) {
        *out = net;
        return 0;
    }
    assign_deltas(net);
    net->input_data = dn_calloc_floats((size_t)net->batch * net->inputs);
    net->truth = dn_calloc_floats((size_t)net->batch * net->truths);
    net->workspace = dn_calloc_floats(net->workspace_size ? net->workspace_size : 1);
#ifdef _OPENMP
    if (net->threads > 0)
        omp_set_num_threads(net->threads);
#endif
    *out = net;
    return 0;
fail:
    net->cfg = NULL; /* the caller keeps it */
    dn_net_free(net);
    return -1;
}

int dn_net_plan(dn_cfg *cfg, const dn_net_options *opt, dn_net **out,
                dn_error *err)
{
    return build(cfg, opt, 1, out, err);
}

int dn_net_make(dn_cfg *cfg, const dn_net_options *opt, dn_net **out,
                dn_error *err)
{
    /* the whole plan first: nothing is allocated unless all of it fits */
    dn_net *plan;
    *out = NULL;
    if (build(cfg, opt, 1, &plan, err))
        return -1;
    plan->cfg = NULL;
    dn_net_free(plan);
    return build(cfg, opt, 0, out, err);
}

void dn_net_free(dn_net *net)
{
    if (!net)
        return;
    dn_net_backend(net)->free(net); /* device twins, replicas */
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        if (l->type && l->type->free)
            l->type->free(l);
        for (int p = 0; p < l->n_params; p++) {
            free(l->params[p].grad);
            free(l->params[p].m);
            free(l->params[p].v);
        }
        free(l->output);
    }
    for (int b = 0; b < net->n_delta_buffers; b++)
        free(net->delta_buffers[b]);
    free(net->delta_buffers);
    free(net->delta_from);
    free(net->zero_first);
    free(net->zero_list);
    free(net->layers);
    free(net->input_data);
    free(net->truth);
    free(net->workspace);
    dn_schedule_free(net->schedule);
    dn_cfg_free(net->cfg);
    free(net);
}

/* ------------------------------------------------------------- passes */

void dn_net_enter_layer(dn_net *net, int i)
{
    net->input = i ? net->layers[i - 1].output : net->input_data;
    net->delta = i ? net->layers[i - 1].delta : net->input_delta;
    net->input_gpu = i ? net->layers[i - 1].output_gpu : net->input_data_gpu;
    net->delta_gpu = i ? net->layers[i - 1].delta_gpu : net->input_delta_gpu;
}

void dn_adam_corrections(const dn_net *net, float *c1, float *c2)
{
    const long t = (long)(net->seen / (uint64_t)net->images_per_batch) + 1;
    *c1 = 1.0f - (float)pow(net->b1, (double)t);
    *c2 = 1.0f - (float)pow(net->b2, (double)t);
}

void dn_net_zero_deltas(dn_net *net) { dn_net_backend(net)->zero_deltas(net); }

void dn_net_forward(dn_net *net, int train)
{
    dn_net_backend(net)->forward(net, train);
}

void dn_net_backward(dn_net *net) { dn_net_backend(net)->backward(net); }

void dn_net_update(dn_net *net, double lr)
{
    dn_net_backend(net)->update(net, lr);
}

int dn_net_check_weights(const dn_net *net, dn_error *err)
{
    return dn_net_backend(net)->check_weights(net, err);
}

int dn_net_pull(const dn_net *net, dn_error *err)
{
    return dn_net_backend(net)->pull(net, err);
}

int dn_net_push(dn_net *net, dn_error *err)
{
    return dn_net_backend(net)->push(net, err);
}

int dn_net_sync(dn_net *net, dn_error *err)
{
    return dn_net_backend(net)->sync(net, 1, err);
}

int dn_net_check(dn_net *net, dn_error *err)
{
    return dn_net_backend(net)->sync(net, 0, err);
}

const char *dn_net_device_name(const dn_net *net)
{
    return dn_net_backend(net)->device_name(net);
}

/* ------------------------------------------------------ the CPU backend */

/* The deltas with buffers of their own; the shared ones are zeroed when
 * their turn comes in the backward pass (assign_deltas). */
static void cpu_zero_deltas(dn_net *net)
{
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        if (net->delta_from[i] < 0)
            memset(l->delta, 0, sizeof(float) * l->batch * l->outputs);
    }
    if (net->input_delta)
        memset(net->input_delta, 0, sizeof(float) * net->batch * net->inputs);
}

/* 1 if layer r reads layer j's output (j < r). */
static int reads_output(const dn_layer *r, int j)
{
    return r->type->reads ? r->type->reads(r, j) : j == r->index - 1;
}

static int follows(const dn_layer *l)
{
    return l->type->block_out && l->type->block_out(l) == DN_BLOCK_FOLLOWS;
}

/* The block all of an element-wise layer's inputs share, else 0. */
static int inputs_block(const dn_net *net, int i, const int *blk)
{
    int k = 0;
    for (int j = 0; j < i; j++)
        if (reads_output(&net->layers[i], j)) {
            if (!blk[j] || (k && blk[j] != k))
                return 0;
            k = blk[j];
        }
    return k;
}

/* 1 if every reader of layer i's output takes it in block blk[i] (an
 * element-wise reader: with its output in the same block). */
static int readers_take(const dn_net *net, int i, const int *blk)
{
    for (int r = i + 1; r < net->n; r++) {
        const dn_layer *l = &net->layers[r];
        if (!reads_output(l, i))
            continue;
        if (!l->type->block_in || !l->type->block_in(l, blk[i]) ||
            (follows(l) && blk[r] != blk[i]))
            return 0;
    }
    return 1;
}

/*
 * The deltas the backward pass zeroes before each step i: those whose
 * first writer is i (delta_from), except those it writes whole instead of
 * adding into (its type's writes_delta). As lists, in
 * zero_list[zero_first[i] .. zero_first[i + 1]).
 */
static void list_zeroing(dn_net *net)
{
    const int n = net->n;
    free(net->zero_first);
    free(net->zero_list);
    net->zero_first = dn_xcalloc((size_t)n + 1, sizeof *net->zero_first);
    net->zero_list = dn_xcalloc((size_t)n + 1, sizeof *net->zero_list);
    int count = 0;
    for (int i = 0; i < n; i++) {
        const dn_layer *l = &net->layers[i];
        net->zero_first[i] = count;
        for (int j = 0; j < i; j++)
            if (net->delta_from[j] == i &&
                !(l->type->writes_delta && l->type->writes_delta(l, net, j)))
                net->zero_list[count++] = j;
    }
    net->zero_first[n] = count;
}

/*
 * Channel-blocked layouts on the CPU (dn_layer's out_block). A convolution
 * with batch norm can write its output in oneDNN's blocked layout; a
 * convolution can read one; element-wise layers ([shortcut], [route]) run
 * in whichever layout all their tensors share. Each output starts blocked
 * where its writer can; then, until nothing changes, an output goes plain
 * when a reader cannot take it, and an element-wise layer goes plain when
 * one of its inputs is. The last layer stays plain (callers read it). Each
 * tensor kept blocked saves its readers' reorders, and its gradient's.
 * Only the CPU backend runs this: on a device the host buffers stay plain.
 */
static void choose_layouts(dn_net *net)
{
    const int n = net->n;
    int *blk = dn_xcalloc((size_t)n, sizeof *blk);
    for (int i = 0; i + 1 < n; i++) {
        const dn_layer *l = &net->layers[i];
        const int k = l->type->block_out ? l->type->block_out(l) : 0;
        blk[i] = k == DN_BLOCK_FOLLOWS ? inputs_block(net, i, blk)
                 : k > 0 ? k : 0;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < n; i++)
            if (blk[i] && (!readers_take(net, i, blk) ||
                           (follows(&net->layers[i]) &&
                            inputs_block(net, i, blk) != blk[i])))
                blk[i] = 0, changed = 1;
    }
    for (int i = 0; i < n; i++) {
        dn_layer *l = &net->layers[i];
        l->out_block = blk[i];
        l->in_block = follows(l) ? blk[i] : i > 0 ? blk[i - 1] : 0;
        int readers = 0; /* of the input, this layer among them */
        for (int r = i; i > 0 && r < n; r++)
            readers += reads_output(&net->layers[r], i - 1);
        if (l->type->set_blocks && l->type->set_blocks(l, readers > 1)) {
            fprintf(stderr, "darknet: layer %d (%s): out of memory choosing "
                    "its layout\n", i, l->type->name);
            abort();
        }
    }
    list_zeroing(net);
    free(blk);
    net->layouts_chosen = 1;
}

static void cpu_forward(dn_net *net, int train)
{
    if (!net->layouts_chosen)
        choose_layouts(net);
    net->train = train;
    if (train)
        cpu_zero_deltas(net);
    for (int i = 0; i < net->n; i++) {
        dn_net_enter_layer(net, i);
        net->layers[i].type->forward(&net->layers[i], net);
    }
}

static void cpu_backward(dn_net *net)
{
    for (int i = net->n - 1; i >= 0; i--) {
        for (int z = net->zero_first[i]; z < net->zero_first[i + 1]; z++) {
            const dn_layer *l = &net->layers[net->zero_list[z]];
            memset(l->delta, 0, sizeof(float) * l->batch * l->outputs);
        }
        dn_net_enter_layer(net, i);
        net->layers[i].type->backward(&net->layers[i], net);
    }
}

/*
 * SGD with Darknet's semantics: with g the gradient summed over the B images
 * of a batch, u = momentum*u_prev + g + decay*B*w (decay on weights only),
 * w -= lr/B * u. Adam (adam=1): PyTorch's Adam on the mean gradient plus the
 * L2 term, bias-corrected (dn_adam_corrections). The device runs the same
 * formulas (network.cu).
 */
static void cpu_update(dn_net *net, double lr)
{
    const float B = (float)net->images_per_batch;
    const float decay = (float)net->decay, momentum = (float)net->momentum;
    float c1, c2;
    dn_adam_corrections(net, &c1, &c2);
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_params; k++) {
            dn_param *p = &l->params[k];
            const float d = p->decay ? decay : 0.0f;
            float *w = p->w, *g = p->grad, *m = p->m, *v = p->v;
            const long n = p->n;
            if (!net->adam) {
                const float step = (float)lr / B;
#pragma omp parallel for if (n > 65536)
                for (long j = 0; j < n; j++) {
                    float u = m[j] + g[j] + d * B * w[j];
                    w[j] -= step * u;
                    m[j] = momentum * u;
                    g[j] = 0;
                }
            } else {
                const float b1 = (float)net->b1, b2 = (float)net->b2;
                const float eps = (float)net->eps, rate = (float)lr;
#pragma omp parallel for if (n > 65536)
                for (long j = 0; j < n; j++) {
                    float gj = g[j] / B + d * w[j];
                    m[j] = b1 * m[j] + (1 - b1) * gj;
                    v[j] = b2 * v[j] + (1 - b2) * gj * gj;
                    w[j] -= rate * (m[j] / c1) / (sqrtf(v[j] / c2) + eps);
                    g[j] = 0;
                }
            }
        }
    }
}

/* the host tensors are the network's own: nothing to copy or wait for */
static int cpu_push(dn_net *net, dn_error *err)
{
    (void)net, (void)err;
    return 0;
}

static int cpu_pull(const dn_net *net, dn_error *err)
{
    (void)net, (void)err;
    return 0;
}

static int cpu_sync(dn_net *net, int wait, dn_error *err)
{
    (void)net, (void)wait, (void)err;
    return 0;
}

static const char *cpu_device_name(const dn_net *net)
{
    (void)net;
    return "CPU";
}

static void cpu_free(dn_net *net) { (void)net; }

const dn_backend dn_backend_cpu = {
    .name = "cpu",
    .forward = cpu_forward,
    .backward = cpu_backward,
    .update = cpu_update,
    .zero_deltas = cpu_zero_deltas,
    .push = cpu_push,
    .pull = cpu_pull,
    .sync = cpu_sync,
    .check_weights = dn_net_check_finite,
    .device_name = cpu_device_name,
    .free = cpu_free,
};

/* ------------------------------------------------------------ queries */

float dn_net_cost(const dn_net *net)
{
    float sum = 0;
    for (int i = 0; i < net->n; i++)
        if (net->layers[i].is_loss)
            sum += net->layers[i].cost;
    return sum;
}

dn_layer *dn_net_output_layer(dn_net *net)
{
    return &net->layers[net->n - 1];
}

long dn_net_param_count(const dn_net *net)
{
    long n = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++)
            n += net->layers[i].params[k].n;
    return n;
}

double dn_net_flops(const dn_net *net)
{
    double f = 0;
    for (int i = 0; i < net->n; i++)
        f += net->layers[i].flops;
    return f;
}

void dn_net_summary(const dn_net *net, FILE *out)
{
    fprintf(out, "%5s %-14s %-18s %-16s    %-16s %11s %10s\n", "layer", "type",
            "filters size/strd", "input", "output", "params", "BFLOPs");
    for (int i = 0; i < net->n; i++) {
        const dn_layer *l = &net->layers[i];
        long params = 0;
        for (int k = 0; k < l->n_params; k++)
            params += l->params[k].n;
        char in[32], outs[32];
        snprintf(in, sizeof in, "%d x %d x %d", l->w, l->h, l->c);
        snprintf(outs, sizeof outs, "%d x %d x %d", l->out_w, l->out_h, l->out_c);
        fprintf(out, "%5d %-14s %-18s %-16s -> %-16s %11ld %10.3f\n", i,
                l->type->name, l->desc, in, outs, params, l->flops / 1e9);
    }
    fprintf(out, "total: %ld parameters, %.3f BFLOPs per image (forward), "
            "batch %d x %d subdivisions\n", dn_net_param_count(net),
            dn_net_flops(net) / 1e9, net->batch, net->subdivisions);
}
