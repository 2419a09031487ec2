/*
 * convolutional_layer.c - [convolutional]: 2-D convolution as im2col + GEMM
 * (Chellapilla et al. 2006; Darknet's formulation), with groups, dilation,
 * optional batch normalisation and an activation.
 *
 * Keys and defaults (Darknet's):
 *   filters=1 size=1 stride=1 pad=0 padding=0 groups=1 dilation=1
 *   batch_normalize=0 activation=logistic
 * pad=1 sets padding = size/2 and overrides padding= (Darknet); with
 * dilation > 1 that is not "same" padding: write padding=dilation*(size/2).
 *   out_h = (h + 2*padding - dilation*(size-1) - 1)/stride + 1   (AlexeyAB)
 * Weights [filters, c/groups, size, size]; conv group g maps input channels
 * [g*c/groups, (g+1)*c/groups) to filters [g*filters/groups, ...). With
 * batch_normalize the convolution has no bias of its own: biases are BN's
 * beta (Darknet).
 *
 * GEMM shapes, per conv group, for a chunk of n images whose columns sit
 * side by side (N = n*out_h*out_w, K = c/groups*size*size, F = filters/groups):
 *   forward          out[F, N]  = W[F, K] x col[K, N]
 *   weight gradient  dW[F, K]  += delta[F, N] x col[K, N]^T
 *   input gradient   dcol[K, N] = W[F, K]^T x delta[F, N], then col2im
 * Chunks hold several images when the output plane is small (deep layers:
 * 8x8, 4x4), so the GEMM stays wide enough to run near the BLAS peak; the
 * price is a transpose of out and delta between [n, F, hw] and [F, n*hw].
 * A 1x1, stride-1, unpadded convolution with one image a chunk reads its
 * input as col directly (no im2col).
 *
 * With oneDNN in the build (ONEDNN=1, the default) the convolution itself
 * goes to oneDNN's primitives instead (conv_onednn.c): [net]
 * conv_backend=auto (default) uses them where oneDNN accepts the shape,
 * onednn insists (an error where it cannot), im2col never uses them. Bias,
 * batch norm and the activation stay here either way. (The weight
 * gradient of small output planes used to be the im2col GEMM over the whole
 * batch; oneDNN's kernel is now the faster one there: ResNet-18-CIFAR,
 * batch 128, 512 filters on 4x4, 33-36 ms against about 45 ms for the
 * SGEMM; whole network 115.8 against 111.5 images/s, median of 4.)
 *
 * With batch norm on a channel-blocked oneDNN output (nChw16c here), batch
 * norm and the activation read the convolution's output, and write its
 * gradient, in that layout (dn_post_forward_blocked): two passes each way
 * instead of the output's reorders plus four plain passes. Where every
 * reader takes it (convolutions through oneDNN, [shortcut], [route],
 * [avgpool]), the output and its delta stay blocked (network.c,
 * choose_layouts): no reorder of a reading convolution's input or input
 * gradient either.
 *
 * Threads: with at least as many chunks as threads, each thread takes whole
 * chunks (im2col, GEMM, col2im on its own scratch): one fork per pass, and
 * col is used while it is still in cache. The weight gradient then goes to a
 * per-thread buffer, summed in thread order at the end; the backward pass
 * deals chunks to threads statically so that the sums, and so training, are
 * the same from run to run. With fewer chunks (inference on one image) the
 * chunks run in turn and every step (im2col, the GEMMs) is parallel inside.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convolutional_layer.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Images are batched into one GEMM until it has this many columns (on one
 * core of the reference machine, 256 to 512 columns ran ResNet's 3x3 convs
 * fastest: 4x4 maps 78 GFLOP/s against 48 one image at a time, and 16x16
 * maps 79 against 72 at 1024 columns)... */
#define MIN_GEMM_COLUMNS 256L
/* ...while the col matrix stays under this many floats (64 MiB). */
#define MAX_COL_FLOATS (16L << 20)

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static void conv_free(dn_layer *l)
{
    conv *cv = l->priv;
    if (!cv)
        return;
    dn_post_free(&cv->post);
    dn_onednn_conv_free(cv->onednn);
    free(cv->weights);
    free(cv->biases);
    free(cv);
    l->priv = NULL;
}

/* He initialisation (He et al. 2015): N(0, sqrt(2 / fan_in)). */
static void he_normal(float *w, long n, long fan_in, uint64_t seed)
{
    dn_rng rng;
    dn_rng_seed(&rng, seed);
    const double sd = sqrt(2.0 / (double)fan_in);
    for (long i = 0; i < n; i++)
        w[i] = (float)(sd * dn_rng_normal(&rng));
}

static const dn_key conv_keys[] = {
    DN_INT("filters", "1", 1, 65536, "output channels"),
    DN_INT("size", "1", 1, 4096, "kernel height and width"),
    DN_INT("stride", "1", 1, 4096, "step between kernel positions"),
    DN_INT("pad", "0", 0, 1, "1: pad size/2 zeros each side (Darknet's pad)"),
    DN_INT("padding", "0", 0, 4096, "zeros each side, when pad=0"),
    DN_INT("groups", "1", 1, 65536,
           "grouped convolution: channels split into this many groups"),
    DN_INT("dilation", "1", 1, 4096, "spacing of the kernel's taps"),
    DN_INT("batch_normalize", "0", 0, 1,
           "1: batch normalisation (scales, rolling mean and variance)"),
    DN_CHOICE("activation", "logistic", dn_activation_names,
              "function applied to the output"),
    DN_KEYS_END,
};

static int read_keys(conv *cv, dn_layer *l, dn_section *s, int *bn,
                     dn_activation *act, dn_error *err)
{
    const dn_key *t = conv_keys;
    long filters, size, stride, pad, padding, groups, dilation, batch_norm;
    if (dn_key_int(s, t, "filters", &filters, err) ||
        dn_key_int(s, t, "size", &size, err) ||
        dn_key_int(s, t, "stride", &stride, err) ||
        dn_key_int(s, t, "pad", &pad, err) ||
        dn_key_int(s, t, "padding", &padding, err) ||
        dn_key_int(s, t, "groups", &groups, err) ||
        dn_key_int(s, t, "dilation", &dilation, err) ||
        dn_key_int(s, t, "batch_normalize", &batch_norm, err) ||
        dn_parse_activation(s, t, act, err))
        return -1;
    if (l->c % groups)
        return dn_sec_fail(s, "groups", err, "%ld groups do not divide the %d "
                           "input channels", groups, l->c);
    if (filters % groups)
        return dn_sec_fail(s, "groups", err, "%ld groups do not divide "
                           "filters=%ld", groups, filters);
    cv->filters = (int)filters, cv->size = (int)size, cv->stride = (int)stride;
    cv->padding = pad ? (int)size / 2 : (int)padding;
    cv->groups = (int)groups, cv->dilation = (int)dilation;
    *bn = (int)batch_norm;
    return 0;
}

/* Images per chunk: enough for MIN_GEMM_COLUMNS columns, within the cap,
 * and at least one chunk per thread when the batch allows. */
static int choose_images_per_gemm(long rows, long hw, int batch, int threads)
{
    long n = (MIN_GEMM_COLUMNS + hw - 1) / hw;
    long fair = (batch + threads - 1) / threads;
    if (n > fair)
        n = fair;
    while (n > 1 && rows * n * hw > MAX_COL_FLOATS)
        n--;
    return (int)(n < 1 ? 1 : n);
}

/* The oneDNN convolution for this layer, as [net] conv_backend= asks:
 * 0 with cv->onednn set or left NULL (im2col), -1 on error. */
static int onednn_make(dn_layer *l, dn_section *s, conv *cv, dn_net *net,
                       dn_error *err)
{
    if (net->conv_backend == DN_CONV_IM2COL)
        return 0;
    const dn_onednn_shape shape = {
        .batch = l->batch, .c = l->c, .h = l->h, .w = l->w,
        .filters = cv->filters, .out_h = l->out_h, .out_w = l->out_w,
        .size = cv->size, .stride = cv->stride, .padding = cv->padding,
        .dilation = cv->dilation, .groups = cv->groups};
    char why[256];
    size_t workspace;
    cv->onednn = dn_onednn_conv_make(&shape, &workspace, why, sizeof why);
    if (cv->onednn)
        cv->onednn_floats = workspace;
    else if (net->conv_backend == DN_CONV_ONEDNN)
        return dn_fail(err, "%s:%d: [convolutional] layer %d: [net] "
                       "conv_backend=onednn, but %s", s->path, s->line,
                       l->index, why);
    return 0;
}

static int conv_make(dn_layer *l, dn_section *s, dn_net *net, dn_error *err)
{
    conv *cv = calloc(1, sizeof *cv);
    if (!cv)
        return dn_fail(err, "out of memory");
    l->priv = cv;
    int bn = 0;
    dn_activation act = DN_LINEAR;
    if (read_keys(cv, l, s, &bn, &act, err))
        return -1;
    dn_conv_geom *g = &cv->geom;
    dn_conv_geom_set(g, l->c, l->h, l->w, cv->size, cv->stride, cv->padding,
                     cv->dilation);
    if (g->out_h < 1 || g->out_w < 1)
        return dn_sec_fail(s, "size", err, "a %dx%d kernel (dilation %d) does "
                           "not fit the %dx%d input with padding %d", cv->size,
                           cv->size, cv->dilation, l->h, l->w, cv->padding);
    l->out_c = cv->filters, l->out_h = g->out_h, l->out_w = g->out_w;
    const long extent = (long)cv->dilation * (cv->size - 1) + 1;
    if (extent > l->h || extent > l->w)
        dn_sec_warn(s, "size", "a %dx%d kernel (extent %ld) on a %dx%d input: "
                    "most of it only ever sees the zero padding", cv->size,
                    cv->size, extent, l->h, l->w);

    const long hw = (long)g->out_h * g->out_w;
    const long k_group = (long)(l->c / cv->groups) * cv->size * cv->size;
    const long rows = k_group * cv->groups; /* rows of col, all groups */
    /* oneDNN's primitives (and their workspace) only for a network that
     * runs; a planned one counts the im2col workspace instead */
    if (!net->planned && onednn_make(l, s, cv, net, err))
        return -1;
    const long n_weights = (long)cv->filters * k_group;
    /* [net] threads= is set on the pool only after the layers are made */
    cv->threads = net->threads > 0 ? net->threads : max_threads();
    const int per = choose_images_per_gemm(rows, hw, l->batch, cv->threads);
    cv->images_per_gemm = per;
    /* the GEMMs take int sizes: K rows of col, N = per * hw columns */
    if (k_group > INT_MAX || (double)hw * per > INT_MAX ||
        (double)n_weights > INT_MAX)
        return dn_sec_fail(s, "size", err, "a %dx%d kernel over %d channels "
                           "to a %dx%d output is too large for one layer",
                           cv->size, cv->size, l->c, g->out_h, g->out_w);
    cv->chunks = (l->batch + per - 1) / per;
    cv->direct = cv->size == 1 && cv->stride == 1 && cv->padding == 0 &&
                 per == 1;
    cv->col_floats = cv->direct ? 0 : (size_t)(rows * per * hw);
    cv->rows_floats = per > 1 ? (size_t)cv->filters * per * hw : 0;
    cv->scratch_floats = cv->col_floats + cv->rows_floats;
    if (cv->onednn) {
        l->workspace = cv->onednn_floats;
    } else if (cv->chunks > 1 && cv->threads > 1) { /* image-parallel passes */
        cv->scratch_floats += (size_t)n_weights;
        l->workspace = cv->scratch_floats * cv->threads;
    } else {
        l->workspace = cv->scratch_floats;
    }

    int k = 0;
    l->params[k++] = (dn_param){.name = "biases", .n = cv->filters};
    if (bn)
        l->params[k++] = (dn_param){.name = "scales", .n = cv->filters};
    l->params[k++] = (dn_param){.name = "weights", .n = n_weights, .decay = 1};
    l->n_params = k;
    l->flops = 2.0 * (double)n_weights * hw;
    int used = snprintf(l->desc, sizeof l->desc, "%d %d x %d/%d", cv->filters,
                        cv->size, cv->size, cv->stride);
    if (cv->groups > 1 && used < (int)sizeof l->desc)
        used += snprintf(l->desc + used, sizeof l->desc - used, " g%d",
                         cv->groups);
    if (cv->dilation > 1 && used < (int)sizeof l->desc)
        snprintf(l->desc + used, sizeof l->desc - used, " d%d", cv->dilation);
    int rc = dn_layer_reserve(l, s, net, (double)n_weights + cv->filters +
                              dn_post_floats(l->batch, cv->filters, hw, bn, act),
                              err);
    if (rc)
        return rc < 0 ? -1 : 0;

    cv->weights = dn_calloc_floats(n_weights);
    cv->biases = dn_calloc_floats(cv->filters);
    dn_post_init(&cv->post, l->batch, cv->filters, hw, bn, act,
                 (float)net->bn_momentum);
    cv->post.bn.sync = &net->bn_sync; /* sync batch norm (distributed.c) */
    if (cv->onednn && bn &&
        dn_post_blocked_ok(&cv->post, dn_onednn_conv_block(cv->onednn)))
        cv->block = dn_onednn_conv_block(cv->onednn);
    k = 0;
    l->params[k++].w = cv->biases;
    if (bn)
        l->params[k++].w = cv->post.bn.scales;
    he_normal(cv->weights, n_weights, k_group, dn_hash3(net->seed, l->index, k));
    l->params[k++].w = cv->weights;

    int n = 0;
    l->saved[n] = cv->biases, l->saved_n[n++] = cv->filters;
    if (bn) {
        l->saved[n] = cv->post.bn.scales, l->saved_n[n++] = cv->filters;
        l->saved[n] = cv->post.bn.rolling_mean, l->saved_n[n++] = cv->filters;
        l->saved[n] = cv->post.bn.rolling_variance, l->saved_n[n++] = cv->filters;
    }
    l->saved[n] = cv->weights, l->saved_n[n++] = n_weights;
    l->n_saved = n;
    return 0;
}

/* Threads for a pass: one per chunk at most; 1 when the workspace holds
 * scratch for one thread only. */
static int pass_threads(const conv *cv)
{
    int t = max_threads();
    if (t > cv->threads)
        t = cv->threads;
    if (t > cv->chunks)
        t = cv->chunks;
    return t < 1 ? 1 : t;
}

/* in: [n, c, h, w]; out: [n, filters, out_h, out_w] (before bias/BN) */
static void forward_chunk(const dn_layer *l, const conv *cv, const float *in,
                          float *out, int n, float *scratch)
{
    const int G = cv->groups, F = cv->filters / G;
    const long hw = (long)l->out_h * l->out_w, N = n * hw;
    const long K = (long)(l->c / G) * cv->size * cv->size;
    float *col = scratch, *gemm_out = n > 1 ? scratch + cv->col_floats : out;
    if (cv->direct)
        col = (float *)in;
    else
        dn_im2col(in, l->inputs, n, &cv->geom, col, N);
    for (int g = 0; g < G; g++)
        dn_gemm(0, 0, F, (int)N, (int)K, 1.0f, cv->weights + g * F * K, (int)K,
                col + g * K * N, (int)N, 0.0f, gemm_out + g * F * N, (int)N);
    if (n > 1)
        dn_rows_to_batch(gemm_out, n, cv->filters, hw, out);
}

/* in: net->input [batch, c, h, w]; out: l->output [batch, filters, oh, ow] */
static void conv_forward(dn_layer *l, dn_net *net)
{
    conv *cv = l->priv;
    if (cv->block) { /* BN reads the convolution's own layout */
        const float *raw = dn_onednn_conv_forward_blocked(
            cv->onednn, net->input, cv->weights, net->workspace);
        dn_post_forward_blocked(&cv->post, raw, cv->block, l->output,
                                l->out_block != 0, cv->biases, net->train);
        return;
    }
    if (cv->onednn) {
        dn_onednn_conv_forward(cv->onednn, net->input, cv->weights, l->output,
                               net->workspace);
        dn_post_forward(&cv->post, l->output, cv->biases, net->train);
        return;
    }
    const int per = cv->images_per_gemm, threads = pass_threads(cv);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) \
    if (threads > 1)
    for (int i = 0; i < cv->chunks; i++) {
        const int b0 = i * per, n = l->batch - b0 < per ? l->batch - b0 : per;
        float *scratch = net->workspace + thread_id() * cv->scratch_floats;
        forward_chunk(l, cv, net->input + b0 * l->inputs,
                      l->output + b0 * l->outputs, n, scratch);
    }
    dn_post_forward(&cv->post, l->output, cv->biases, net->train);
}

/*
 * One chunk of the backward pass. delta: [n, filters, oh, ow], dL/d(conv
 * output); adds the weight gradient into dw and dL/d(in) into in_delta
 * (when not NULL).
 */
static void backward_chunk(const dn_layer *l, const conv *cv, const float *in,
                           const float *delta, float *in_delta, int n,
                           float *scratch, float *dw)
{
    const int G = cv->groups, F = cv->filters / G;
    const long hw = (long)l->out_h * l->out_w, N = n * hw;
    const long K = (long)(l->c / G) * cv->size * cv->size;
    float *col = scratch;
    if (n > 1) { /* delta as [filters, n*hw], the layout of the GEMM */
        float *rows = scratch + cv->col_floats;
        dn_batch_to_rows(delta, n, cv->filters, hw, rows);
        delta = rows;
    }
    if (cv->direct)
        col = (float *)in;
    else
        dn_im2col(in, l->inputs, n, &cv->geom, col, N);
    for (int g = 0; g < G; g++) {
        const float *w = cv->weights + g * F * K, *d = delta + g * F * N;
        dn_gemm(0, 1, F, (int)K, (int)N, 1.0f, d, (int)N, col + g * K * N,
                (int)N, 1.0f, dw + g * F * K, (int)K);
        if (!in_delta)
            continue;
        if (cv->direct) /* col is the input: accumulate straight into it */
            dn_gemm(1, 0, (int)K, (int)N, F, 1.0f, w, (int)K, d, (int)N, 1.0f,
                    in_delta + g * K * N, (int)N);
        else /* overwrite this group's rows of col, already used above */
            dn_gemm(1, 0, (int)K, (int)N, F, 1.0f, w, (int)K, d, (int)N, 0.0f,
                    col + g * K * N, (int)N);
    }
    if (in_delta && !cv->direct)
        dn_col2im(col, N, n, &cv->geom, in_delta, l->inputs);
}

static void conv_backward(dn_layer *l, dn_net *net)
{
    conv *cv = l->priv;
    dn_param *scales = cv->post.batch_normalize ? &l->params[1] : NULL;
    dn_param *weights = &l->params[l->n_params - 1];
    if (cv->block) { /* dL/d(conv output) goes to oneDNN's layout */
        float *d = dn_onednn_conv_delta_blocked(cv->onednn, net->workspace);
        dn_post_backward_blocked(&cv->post, l->delta, l->out_block != 0,
                                 cv->block, d, l->params[0].grad,
                                 scales->grad, cv->biases, net->train);
        dn_onednn_conv_backward(cv->onednn, net->input, cv->weights, NULL,
                                weights->grad, net->delta, net->workspace);
        return;
    }
    /* l->delta becomes dL/d(conv output), before bias/BN */
    dn_post_backward(&cv->post, l->output, l->delta, l->params[0].grad,
                     scales ? scales->grad : NULL, net->train);
    if (cv->onednn) {
        dn_onednn_conv_backward(cv->onednn, net->input, cv->weights, l->delta,
                                weights->grad, net->delta, net->workspace);
        return;
    }
    const int per = cv->images_per_gemm, threads = pass_threads(cv);
    const size_t dw_at = cv->col_floats + cv->rows_floats;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *scratch = net->workspace + thread_id() * cv->scratch_floats;
        /* several threads: each sums its chunks' weight gradient apart */
        float *dw = threads > 1 ? scratch + dw_at : weights->grad;
        if (threads > 1)
            memset(dw, 0, sizeof *dw * weights->n);
#pragma omp for schedule(static)
        for (int i = 0; i < cv->chunks; i++) {
            const int b0 = i * per;
            const int n = l->batch - b0 < per ? l->batch - b0 : per;
            backward_chunk(l, cv, net->input + b0 * l->inputs,
                           l->delta + b0 * l->outputs,
                           net->delta ? net->delta + b0 * l->inputs : NULL, n,
                           scratch, dw);
        }
        if (threads > 1) { /* the implicit barrier above: all parts are done */
#pragma omp for schedule(static)
            for (long j = 0; j < weights->n; j++) {
                float sum = 0;
                for (int t = 0; t < threads; t++)
                    sum += net->workspace[t * cv->scratch_floats + dw_at + j];
                weights->grad[j] += sum;
            }
        }
    }
}

/* Blocked layouts (network.c, choose_layouts): the output when batch norm
 * runs on oneDNN's blocked output; the input when oneDNN's primitives read
 * it (and write its gradient) in that layout. */
static int conv_block_out(const dn_layer *l)
{
    return ((const conv *)l->priv)->block;
}

static int conv_block_in(const dn_layer *l, int k)
{
    const conv *cv = l->priv;
    return cv->onednn && dn_onednn_conv_reads_blocked(cv->onednn, k);
}

static int conv_set_blocks(dn_layer *l, int in_shared)
{
    conv *cv = l->priv;
    if (!l->in_block)
        return 0;
    if (!dn_onednn_conv_take_blocked_input(cv->onednn, l->in_block,
                                           in_shared))
        return -1;
    cv->writes_in_delta = !in_shared; /* alone: oneDNN writes it */
    return 0;
}

static int conv_writes_delta(const dn_layer *l, const dn_net *net, int j)
{
    (void)net;
    return j == l->index - 1 && ((const conv *)l->priv)->writes_in_delta;
}

const dn_layer_type dn_layer_convolutional = {
    .name = "convolutional",
    .keys = conv_keys,
    .make = conv_make,
    .forward = conv_forward,
    .backward = conv_backward,
    .free = conv_free,
    .gpu = DN_GPU_TWIN(dn_layer_convolutional_gpu),
    .block_out = conv_block_out,
    .block_in = conv_block_in,
    .set_blocks = conv_set_blocks,
    .writes_delta = conv_writes_delta,
};
