/*
 * conv_onednn.c - [convolutional] through oneDNN's convolution primitives.
 * See conv_onednn.h.
 *
 * Three primitives per layer, created once: forward, backward data (dL/dx)
 * and backward weights (dL/dW). Each is created with format "any" for its
 * tensors, so oneDNN picks the layouts its fastest kernel for this CPU wants;
 * a "port" then joins the framework's plain tensor to the primitive's
 * layout with a reorder (none when the two agree). Gradients are ADDED into
 * the framework's buffers (Darknet accumulates over subdivisions, and a
 * layer's input gradient may already hold a route's or shortcut's part):
 * the output reorder carries a sum post-op, which oneDNN's convolution
 * itself does not offer for gradients.
 *
 * Algorithm: forward and backward data let oneDNN choose ("auto"), which
 * takes Winograd's F(4x4, 3x3) for 3x3 stride-1 layers where its kernels
 * apply (ResNet-18-CIFAR, batch 64, 2 AVX-512 cores: about 2x faster than
 * direct on those layers; whole training 54 -> 72 images/s). So does the
 * weight gradient, except on small outputs (below; alone, 512 channels at
 * batch 32: 3.6 ms against 2.6 direct on 2x2, 3.6 against 6.7 on 4x4;
 * ResNet-18-CIFAR's 64 channels on 32x32 at batch 128: 19.5 against 25.6;
 * ResNet-18 training 115 -> 127 images/s alternating). Its kernel reads
 * whole aligned vectors: it crashed (SIGSEGV in its JIT code) while the
 * framework's buffers were 16 bytes into a page; they are 64-byte aligned
 * now (dn_calloc_floats), as oneDNN's own.
 *
 * Blocked output (dn_onednn_conv_block): where the primitives' output is
 * channel-blocked, the layer's batch norm and activation can read it there
 * and write the output gradient back in that layout, so the output's and
 * the output gradient's reorders are not needed at all (the output stage
 * runs two passes over the blocked tensor instead of reorder + four plain
 * passes; see dn_post_forward_blocked).
 *
 * Dilation: oneDNN counts the gaps between taps (Darknet's dilation - 1).
 * Right/bottom padding is what makes oneDNN's output size equal Darknet's
 * floor((in + 2p - d(k-1) - 1)/s) + 1; it is smaller than p when the
 * division drops a remainder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_onednn.h"

#ifndef DN_ONEDNN

int dn_onednn_available(void) { return 0; }

dn_onednn_conv *dn_onednn_conv_make(const dn_onednn_shape *s,
                                    size_t *workspace_floats, char *why,
                                    size_t why_size)
{
    (void)s;
    *workspace_floats = 0;
    snprintf(why, why_size, "this build has no oneDNN (make ONEDNN=1)");
    return NULL;
}

void dn_onednn_conv_forward(dn_onednn_conv *cv, const float *in,
                            const float *weights, float *out, float *workspace)
{
    (void)cv, (void)in, (void)weights, (void)out, (void)workspace;
}

void dn_onednn_conv_backward(dn_onednn_conv *cv, const float *in,
                             const float *weights, const float *delta,
                             float *dweights, float *in_delta, float *workspace)
{
    (void)cv, (void)in, (void)weights, (void)delta, (void)dweights;
    (void)in_delta, (void)workspace;
}

int dn_onednn_conv_block(const dn_onednn_conv *cv)
{
    (void)cv;
    return 0;
}

const float *dn_onednn_conv_forward_blocked(dn_onednn_conv *cv,
                                            const float *in,
                                            const float *weights,
                                            float *workspace)
{
    (void)cv, (void)in, (void)weights;
    return workspace;
}

float *dn_onednn_conv_delta_blocked(dn_onednn_conv *cv, float *workspace)
{
    (void)cv;
    return workspace;
}

int dn_onednn_conv_reads_blocked(const dn_onednn_conv *cv, int k)
{
    (void)cv, (void)k;
    return 0;
}

int dn_onednn_conv_take_blocked_input(dn_onednn_conv *cv, int k, int add)
{
    (void)cv, (void)k, (void)add;
    return 0;
}

const char *dn_onednn_conv_impl(const dn_onednn_conv *cv)
{
    (void)cv;
    return "none";
}

void dn_onednn_conv_free(dn_onednn_conv *cv) { (void)cv; }

#else

#include <pthread.h>

#include <dnnl.h>
#include <dnnl_debug.h>

/* Workspace offsets are kept to multiples of 64 bytes. */
#define ALIGN_FLOATS 16

/* One process-wide CPU engine and in-order stream. */
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static dnnl_status_t engine_status = dnnl_success;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_init(void)
{
    engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (engine_status == dnnl_success)
        engine_status = dnnl_stream_create(&stream, engine,
                                           dnnl_stream_default_flags);
}

/*
 * A tensor argument of a primitive: `user` wraps the framework's buffer,
 * `inner` the primitive's layout in the workspace (the same object as user
 * when no reorder is needed). Inputs reorder user -> inner before the
 * primitive; outputs inner -> user after it (adding when `accumulate`).
 */
typedef struct port {
    dnnl_memory_t user, inner;
    dnnl_primitive_t reorder; /* NULL: inner is user, or add_floats */
    size_t offset;            /* inner's place in the workspace, floats */
    int output;
    size_t add_floats; /* an output added into a user buffer of the same
                          layout: this many floats, by add_into */
} port;

typedef struct step {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t scratch; /* NULL when the primitive needs none */
    size_t scratch_offset;
} step;

struct dn_onednn_conv {
    step fwd, bwd_data, bwd_weights;
    port fwd_src, fwd_weights, fwd_dst;
    port bd_diff_dst, bd_weights, bd_diff_src;
    port bw_src, bw_diff_dst, bw_diff_weights;
    int share_diff_dst; /* bwd weights reads bwd data's diff_dst as is */
    int block;          /* see dn_onednn_conv_block; 0: none */
    char impl[256];
};

/* Records the first failure of a oneDNN call. */
typedef struct status_log {
    dnnl_status_t status;
    char *why;
    size_t why_size;
} status_log;

static int failed(status_log *log, dnnl_status_t st, const char *what)
{
    if (st == dnnl_success)
        return 0;
    if (log->status == dnnl_success) {
        log->status = st;
        snprintf(log->why, log->why_size, "oneDNN %s: %s", what,
                 dnnl_status2str(st));
    }
    return 1;
}

static size_t reserve(size_t *next, size_t bytes)
{
    size_t at = *next, floats = (bytes + sizeof(float) - 1) / sizeof(float);
    *next += (floats + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    return at;
}

static int port_make(port *p, const dnnl_memory_desc_t *user_md,
                     const dnnl_memory_desc_t *inner_md, int output,
                     int accumulate, size_t *next, status_log *log)
{
    p->output = output;
    if (failed(log, dnnl_memory_create(&p->user, user_md, engine,
                                       DNNL_MEMORY_NONE), "memory"))
        return -1;
    if (!accumulate && dnnl_memory_desc_equal(user_md, inner_md)) {
        p->inner = p->user;
        return 0;
    }
    p->offset = reserve(next, dnnl_memory_desc_get_size(inner_md));
    if (failed(log, dnnl_memory_create(&p->inner, inner_md, engine,
                                       DNNL_MEMORY_NONE), "memory"))
        return -1;
    if (accumulate && dnnl_memory_desc_equal(user_md, inner_md)) {
        /* an element-wise add: a loop of ours, not oneDNN's generic
         * reorder with a sum (its "simple:any", several times slower) */
        p->add_floats = dnnl_memory_desc_get_size(inner_md) / sizeof(float);
        return 0;
    }
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int bad = failed(log, dnnl_primitive_attr_create(&attr), "attr");
    if (!bad && accumulate)
        bad = failed(log, dnnl_post_ops_create(&ops), "post-ops") ||
              failed(log, dnnl_post_ops_append_sum(ops, 1.0f), "sum") ||
              failed(log, dnnl_primitive_attr_set_post_ops(attr, ops), "sum");
    if (!bad)
        bad = failed(log, output
                     ? dnnl_reorder_primitive_desc_create(&pd, inner_md, engine,
                                                          user_md, engine, attr)
                     : dnnl_reorder_primitive_desc_create(&pd, user_md, engine,
                                                          inner_md, engine, attr),
                     "reorder");
    if (!bad)
        bad = failed(log, dnnl_primitive_create(&p->reorder, pd), "reorder");
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (ops)
        dnnl_post_ops_destroy(ops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return bad ? -1 : 0;
}

static void port_free(port *p)
{
    if (p->reorder)
        dnnl_primitive_destroy(p->reorder);
    if (p->inner && p->inner != p->user)
        dnnl_memory_destroy(p->inner);
    if (p->user)
        dnnl_memory_destroy(p->user);
}

/* A primitive that was created for these shapes and buffers does not fail
 * to run unless something is broken: say what and stop, as on running out
 * of memory. */
static void execute(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args,
                    const char *what)
{
    const dnnl_status_t st = dnnl_primitive_execute(p, stream, n, args);
    if (st != dnnl_success) {
        fprintf(stderr, "darknet: oneDNN %s failed: %s\n", what,
                dnnl_status2str(st));
        abort();
    }
}

static void run_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    const dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    execute(r, 2, args, "reorder");
}

/* Points the port at this call's buffers; an input is reordered in. */
static dnnl_memory_t port_bind(port *p, const float *user, float *workspace)
{
    dnnl_memory_set_data_handle(p->user, (void *)user);
    if (!p->reorder && !p->add_floats)
        return p->user;
    dnnl_memory_set_data_handle(p->inner, workspace + p->offset);
    if (!p->output)
        run_reorder(p->reorder, p->user, p->inner);
    return p->inner;
}

/* to[i] += from[i], i < n */
static void add_into(float *to, const float *from, size_t n)
{
#pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++)
        to[i] += from[i];
}

/* After the primitive: an output is reordered (or added) out. */
static void port_finish(port *p)
{
    if (!p->output)
        return;
    if (p->reorder) {
        run_reorder(p->reorder, p->inner, p->user);
    } else if (p->add_floats) {
        void *to = NULL, *from = NULL;
        dnnl_memory_get_data_handle(p->user, &to);
        dnnl_memory_get_data_handle(p->inner, &from);
        add_into(to, from, p->add_floats);
    }
}

/* Creates the primitive of an op descriptor with a user-managed scratchpad. */
static int step_make(step *st, const void *op_desc,
                     const_dnnl_primitive_desc_t hint, size_t *next,
                     status_log *log)
{
    dnnl_primitive_attr_t attr;
    if (failed(log, dnnl_primitive_attr_create(&attr), "attr"))
        return -1;
    int bad = failed(log, dnnl_primitive_attr_set_scratchpad_mode(
                              attr, dnnl_scratchpad_mode_user), "attr") ||
              failed(log, dnnl_primitive_desc_create(&st->pd, op_desc, attr,
                                                     engine, hint),
                     "convolution");
    dnnl_primitive_attr_destroy(attr);
    if (bad)
        return -1;
    const dnnl_memory_desc_t *md =
        dnnl_primitive_desc_query_md(st->pd, dnnl_query_scratchpad_md, 0);
    if (md && dnnl_memory_desc_get_size(md) > 0) {
        st->scratch_offset = reserve(next, dnnl_memory_desc_get_size(md));
        if (failed(log, dnnl_memory_create(&st->scratch, md, engine,
                                           DNNL_MEMORY_NONE), "scratchpad"))
            return -1;
    }
    return failed(log, dnnl_primitive_create(&st->prim, st->pd), "convolution");
}

static void step_free(step *st)
{
    if (st->prim)
        dnnl_primitive_destroy(st->prim);
    if (st->scratch)
        dnnl_memory_destroy(st->scratch);
    if (st->pd)
        dnnl_primitive_desc_destroy(st->pd);
}

/* args[0..n) plus the scratchpad, then run. */
static void step_run(step *st, dnnl_exec_arg_t *args, int n, float *workspace)
{
    if (st->scratch) {
        dnnl_memory_set_data_handle(st->scratch, workspace + st->scratch_offset);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, st->scratch};
    }
    execute(st->prim, n, args, "convolution");
}

static const dnnl_memory_desc_t *md_of(const step *st, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(st->pd, what, 0);
}

static const char *impl_of(const step *st)
{
    const char *s = NULL;
    if (dnnl_primitive_desc_query(st->pd, dnnl_query_impl_info_str, 0, &s) !=
        dnnl_success || !s)
        return "?";
    return s;
}

int dn_onednn_available(void) { return 1; }

/*
 * The channel block k when the forward's output and the backward passes'
 * output gradient all use [batch][filters/k][out_h][out_w][k] (nChw16c,
 * nChw8c) with filters a multiple of k (no padded channels), each reached
 * through a reorder from the plain layout; 0 otherwise.
 */
static int output_block(const dn_onednn_conv *cv, const dnnl_dims_t dst_dims)
{
    if (!cv->share_diff_dst || !cv->fwd_dst.reorder ||
        !cv->bd_diff_dst.reorder)
        return 0;
    static const struct { int k; dnnl_format_tag_t tag; } blocks[] = {
        {16, dnnl_aBcd16b}, {8, dnnl_aBcd8b}};
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) {
        dnnl_memory_desc_t md;
        if (dst_dims[1] % blocks[i].k ||
            dnnl_memory_desc_init_by_tag(&md, 4, dst_dims, dnnl_f32,
                                         blocks[i].tag) != dnnl_success)
            continue;
        if (dnnl_memory_desc_equal(&md, md_of(&cv->fwd, dnnl_query_dst_md)) &&
            dnnl_memory_desc_equal(&md, md_of(&cv->bwd_data,
                                              dnnl_query_diff_dst_md)))
            return blocks[i].k;
    }
    return 0;
}

dn_onednn_conv *dn_onednn_conv_make(const dn_onednn_shape *s,
                                    size_t *workspace_floats, char *why,
                                    size_t why_size)
{
    status_log log = {dnnl_success, why, why_size};
    *workspace_floats = 0;
    pthread_once(&engine_once, engine_init);
    if (failed(&log, engine_status, "engine"))
        return NULL;
    dn_onednn_conv *cv = calloc(1, sizeof *cv);
    if (!cv) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    const int G = s->groups;
    const dnnl_dims_t src_dims = {s->batch, s->c, s->h, s->w};
    const dnnl_dims_t dst_dims = {s->batch, s->filters, s->out_h, s->out_w};
    const dnnl_dims_t w_dims = {G, s->filters / G, s->c / G, s->size, s->size};
    const dnnl_dims_t strides = {s->stride, s->stride};
    const dnnl_dims_t dilates = {s->dilation - 1, s->dilation - 1};
    const dnnl_dims_t pad_l = {s->padding, s->padding};
    const int span = (s->size - 1) * s->dilation + 1;
    const dnnl_dims_t pad_r = {(s->out_h - 1) * s->stride + span - s->h - s->padding,
                               (s->out_w - 1) * s->stride + span - s->w - s->padding};
    const int w_ndims = G > 1 ? 5 : 4;
    const dnnl_dim_t *w_shape = G > 1 ? w_dims : w_dims + 1;
    const dnnl_format_tag_t w_tag = G > 1 ? dnnl_goihw : dnnl_oihw;
    /* A first layer's few input channels (RGB, grey): the blocked kernels
     * would pad them to a whole block (Winograd: 16 times the work of one
     * grey channel, after a padding reorder of the input); the direct
     * kernel reads the plain input as it is (DNNL_VERBOSE, batch 128:
     * resnet-small's first forward 1.93 -> 0.36 ms with the reorder,
     * ResNet-18-CIFAR's 7-10 -> 1.3-1.7 ms). The input gradient, which a
     * first layer rarely needs, keeps the automatic choice, whose output
     * gradient layout the forward's matches (dn_onednn_conv_block). */
    const int few_channels = G == 1 && s->c < 8;
    /* Winograd pays fixed costs (transforms of the whole weight tensor;
     * 4x4 output tiles) that small outputs do not repay, and oneDNN's
     * "auto" takes it anyway on 2x2 planes. Alone, 512 channels on 2x2 at
     * batch 32: forward 5.0 ms against 2.0 direct, input gradient 5.1
     * against 2.4, weight gradient 3.6 against 2.6; on 4x4, weight
     * gradient at batch 8, 2.7 against 1.7, at batch 32, 3.6 against 6.7.
     * So direct where a plane is under 4x4 or the output has fewer than
     * 512 positions; elsewhere oneDNN chooses. */
    const int tiny_plane = s->out_h < 4 || s->out_w < 4 ||
                           (long)s->batch * s->out_h * s->out_w < 512;
    const dnnl_alg_kind_t fwd_alg = few_channels || tiny_plane
                                        ? dnnl_convolution_direct
                                        : dnnl_convolution_auto;
    const dnnl_alg_kind_t bd_alg = tiny_plane ? dnnl_convolution_direct
                                              : dnnl_convolution_auto;

    dnnl_memory_desc_t src_u, dst_u, w_u, src_any, dst_any, w_any;
    dnnl_convolution_desc_t fwd_d, bd_d, bw_d;
    size_t next = 0; /* forward's workspace; backward's starts at 0 again */
    size_t fwd_end = 0;
    int bad =
        failed(&log, dnnl_memory_desc_init_by_tag(&src_u, 4, src_dims, dnnl_f32,
                                                  dnnl_nchw), "input shape") ||
        failed(&log, dnnl_memory_desc_init_by_tag(&dst_u, 4, dst_dims, dnnl_f32,
                                                  dnnl_nchw), "output shape") ||
        failed(&log, dnnl_memory_desc_init_by_tag(&w_u, w_ndims, w_shape,
                                                  dnnl_f32, w_tag), "weights") ||
        failed(&log, dnnl_memory_desc_init_by_tag(&src_any, 4, src_dims,
                                                  dnnl_f32, dnnl_format_tag_any),
               "input shape") ||
        failed(&log, dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_dims,
                                                  dnnl_f32, dnnl_format_tag_any),
               "output shape") ||
        failed(&log, dnnl_memory_desc_init_by_tag(&w_any, w_ndims, w_shape,
                                                  dnnl_f32, dnnl_format_tag_any),
               "weights") ||
        failed(&log, dnnl_dilated_convolution_forward_desc_init(
                         &fwd_d, dnnl_forward_training, fwd_alg,
                         few_channels ? &src_u : &src_any, &w_any, NULL,
                         &dst_any, strides, dilates,
                         pad_l, pad_r), "forward") ||
        failed(&log, dnnl_dilated_convolution_backward_data_desc_init(
                         &bd_d, bd_alg, &src_any, &w_any,
                         &dst_any, strides, dilates, pad_l, pad_r),
               "backward data") ||
        failed(&log, dnnl_dilated_convolution_backward_weights_desc_init(
                         &bw_d, fwd_alg,
                         few_channels ? &src_u : &src_any, &w_any, NULL,
                         &dst_any, strides, dilates, pad_l, pad_r),
               "backward weights");
    /* forward */
    bad = bad || step_make(&cv->fwd, &fwd_d, NULL, &next, &log) ||
          port_make(&cv->fwd_src, &src_u, md_of(&cv->fwd, dnnl_query_src_md),
                    0, 0, &next, &log) ||
          port_make(&cv->fwd_weights, &w_u,
                    md_of(&cv->fwd, dnnl_query_weights_md), 0, 0, &next, &log) ||
          port_make(&cv->fwd_dst, &dst_u, md_of(&cv->fwd, dnnl_query_dst_md),
                    1, 0, &next, &log);
    fwd_end = next;
    next = 0;
    /* backward data, then backward weights, after it in the workspace */
    bad = bad ||
          step_make(&cv->bwd_data, &bd_d, cv->fwd.pd, &next, &log) ||
          port_make(&cv->bd_diff_dst, &dst_u,
                    md_of(&cv->bwd_data, dnnl_query_diff_dst_md), 0, 0, &next,
                    &log) ||
          port_make(&cv->bd_weights, &w_u,
                    md_of(&cv->bwd_data, dnnl_query_weights_md), 0, 0, &next,
                    &log) ||
          port_make(&cv->bd_diff_src, &src_u,
                    md_of(&cv->bwd_data, dnnl_query_diff_src_md), 1, 1, &next,
                    &log);
    bad = bad ||
          step_make(&cv->bwd_weights, &bw_d, cv->fwd.pd, &next, &log) ||
          port_make(&cv->bw_src, &src_u,
                    md_of(&cv->bwd_weights, dnnl_query_src_md), 0, 0, &next,
                    &log) ||
          port_make(&cv->bw_diff_weights, &w_u,
                    md_of(&cv->bwd_weights, dnnl_query_diff_weights_md), 1, 1,
                    &next, &log);
    if (!bad) {
        const dnnl_memory_desc_t *a = md_of(&cv->bwd_data, dnnl_query_diff_dst_md),
                                 *b = md_of(&cv->bwd_weights, dnnl_query_diff_dst_md);
        cv->share_diff_dst = dnnl_memory_desc_equal(a, b);
        if (!cv->share_diff_dst)
            bad = port_make(&cv->bw_diff_dst, &dst_u, b, 0, 0, &next, &log);
    }
    if (bad) {
        dn_onednn_conv_free(cv);
        return NULL;
    }
    *workspace_floats = fwd_end > next ? fwd_end : next;
    cv->block = output_block(cv, dst_dims);
    snprintf(cv->impl, sizeof cv->impl, "%s / %s / %s", impl_of(&cv->fwd),
             impl_of(&cv->bwd_data), impl_of(&cv->bwd_weights));
    return cv;
}

/* The primitive's own buffer of a port with a reorder, in the workspace. */
static dnnl_memory_t port_inner(port *p, float *workspace)
{
    dnnl_memory_set_data_handle(p->inner, workspace + p->offset);
    return p->inner;
}

/* The forward primitive, its output left in the primitive's layout when
 * out is NULL (then in the workspace: dn_onednn_conv_forward_blocked). */
static void forward(dn_onednn_conv *cv, const float *in, const float *weights,
                    float *out, float *workspace)
{
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, port_bind(&cv->fwd_src, in, workspace)},
        {DNNL_ARG_WEIGHTS, port_bind(&cv->fwd_weights, weights, workspace)},
        {DNNL_ARG_DST, out ? port_bind(&cv->fwd_dst, out, workspace)
                           : port_inner(&cv->fwd_dst, workspace)},
    };
    step_run(&cv->fwd, args, 3, workspace);
    if (out)
        port_finish(&cv->fwd_dst);
    dnnl_stream_wait(stream);
}

void dn_onednn_conv_forward(dn_onednn_conv *cv, const float *in,
                            const float *weights, float *out, float *workspace)
{
    forward(cv, in, weights, out, workspace);
}

int dn_onednn_conv_block(const dn_onednn_conv *cv) { return cv->block; }

const float *dn_onednn_conv_forward_blocked(dn_onednn_conv *cv,
                                            const float *in,
                                            const float *weights,
                                            float *workspace)
{
    forward(cv, in, weights, NULL, workspace);
    return workspace + cv->fwd_dst.offset;
}

float *dn_onednn_conv_delta_blocked(dn_onednn_conv *cv, float *workspace)
{
    return workspace + cv->bd_diff_dst.offset;
}

/* The plain-shaped [batch][c/k][h][w][k] layout of the input in md, when
 * every primitive reads the input and writes its gradient in it. */
static int blocked_input_md(const dn_onednn_conv *cv, int k,
                            dnnl_memory_desc_t *md)
{
    const dnnl_memory_desc_t *src = md_of(&cv->fwd, dnnl_query_src_md);
    const dnnl_format_tag_t tag = k == 16 ? dnnl_aBcd16b
                                  : k == 8 ? dnnl_aBcd8b : dnnl_format_tag_undef;
    return tag != dnnl_format_tag_undef && src->ndims == 4 &&
           src->dims[1] % k == 0 &&
           dnnl_memory_desc_init_by_tag(md, 4, src->dims, dnnl_f32, tag) ==
               dnnl_success &&
           dnnl_memory_desc_equal(md, src) &&
           dnnl_memory_desc_equal(md, md_of(&cv->bwd_weights,
                                            dnnl_query_src_md)) &&
           dnnl_memory_desc_equal(md, md_of(&cv->bwd_data,
                                            dnnl_query_diff_src_md));
}

int dn_onednn_conv_reads_blocked(const dn_onednn_conv *cv, int k)
{
    dnnl_memory_desc_t md;
    return blocked_input_md(cv, k, &md);
}

int dn_onednn_conv_take_blocked_input(dn_onednn_conv *cv, int k, int add)
{
    dnnl_memory_desc_t md;
    if (!blocked_input_md(cv, k, &md))
        return 0;
    /* the primitives' own layout: the input's ports without reorders; the
     * gradient's too when written, else an adding copy from the workspace
     * place the plain one used (it had one: it always added) */
    port fresh[3] = {{0}};
    char why[64];
    status_log log = {dnnl_success, why, sizeof why};
    size_t next = 0, grad_at = cv->bd_diff_src.offset;
    if (port_make(&fresh[0], &md, &md, 0, 0, &next, &log) ||
        port_make(&fresh[1], &md, &md, 0, 0, &next, &log) ||
        port_make(&fresh[2], &md, &md, 1, add, &grad_at, &log)) {
        for (int i = 0; i < 3; i++)
            port_free(&fresh[i]);
        return 0;
    }
    port *old[3] = {&cv->fwd_src, &cv->bw_src, &cv->bd_diff_src};
    for (int i = 0; i < 3; i++) {
        port_free(old[i]);
        *old[i] = fresh[i];
    }
    return 1;
}

void dn_onednn_conv_backward(dn_onednn_conv *cv, const float *in,
                             const float *weights, const float *delta,
                             float *dweights, float *in_delta, float *workspace)
{
    /* bwd data's layout, reordered once; delta NULL: already there */
    dnnl_memory_t diff_dst =
        delta ? NULL : port_inner(&cv->bd_diff_dst, workspace);
    if (in_delta) {
        if (!diff_dst)
            diff_dst = port_bind(&cv->bd_diff_dst, delta, workspace);
        dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_DIFF_DST, diff_dst},
            {DNNL_ARG_WEIGHTS, port_bind(&cv->bd_weights, weights, workspace)},
            {DNNL_ARG_DIFF_SRC, port_bind(&cv->bd_diff_src, in_delta, workspace)},
        };
        step_run(&cv->bwd_data, args, 3, workspace);
        port_finish(&cv->bd_diff_src);
    }
    if (!cv->share_diff_dst)
        diff_dst = port_bind(&cv->bw_diff_dst, delta, workspace);
    else if (!diff_dst)
        diff_dst = port_bind(&cv->bd_diff_dst, delta, workspace);
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, port_bind(&cv->bw_src, in, workspace)},
        {DNNL_ARG_DIFF_DST, diff_dst},
        {DNNL_ARG_DIFF_WEIGHTS,
         port_bind(&cv->bw_diff_weights, dweights, workspace)},
    };
    step_run(&cv->bwd_weights, args, 3, workspace);
    port_finish(&cv->bw_diff_weights);
    dnnl_stream_wait(stream);
}

const char *dn_onednn_conv_impl(const dn_onednn_conv *cv) { return cv->impl; }

void dn_onednn_conv_free(dn_onednn_conv *cv)
{
    if (!cv)
        return;
    port *ports[] = {&cv->fwd_src, &cv->fwd_weights, &cv->fwd_dst,
                     &cv->bd_diff_dst, &cv->bd_weights, &cv->bd_diff_src,
                     &cv->bw_src, &cv->bw_diff_dst, &cv->bw_diff_weights};
    for (size_t i = 0; i < sizeof ports / sizeof *ports; i++)
        port_free(ports[i]);
    step_free(&cv->fwd);
    step_free(&cv->bwd_data);
    step_free(&cv->bwd_weights);
    free(cv);
}

#endif
