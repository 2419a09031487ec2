/*
 * conv_onednn.h - a convolution's forward and backward passes through
 * oneDNN (Intel's deep-learning primitives library, Debian's libdnnl-dev),
 * for [convolutional] on the CPU when the build has ONEDNN=1.
 *
 * The framework keeps every tensor in Darknet's plain layouts (activations
 * [n, c, h, w], weights [filters, c/groups, size, size]); oneDNN's fastest
 * kernels want channel-blocked layouts (nChw16c and friends), so each call
 * reorders into the layout the primitive chose, runs it, and reorders back;
 * except the output and its gradient when the layer's batch norm takes
 * them blocked (dn_onednn_conv_block below), and the input and its
 * gradient when the layer before hands them blocked
 * (dn_onednn_conv_take_blocked_input).
 * All of those buffers and oneDNN's own scratchpad live in the network's
 * shared workspace, sized when the layer is made: nothing is allocated per
 * batch.
 */
#ifndef DN_CONV_ONEDNN_H
#define DN_CONV_ONEDNN_H

#include <stddef.h>

typedef struct dn_onednn_conv dn_onednn_conv;

typedef struct dn_onednn_shape {
    int batch, c, h, w;                /* input [batch, c, h, w] */
    int filters, out_h, out_w;         /* output [batch, filters, out_h, out_w] */
    int size, stride, padding, dilation, groups;
} dn_onednn_shape;

/* 1 when this build has oneDNN. */
int dn_onednn_available(void);

/*
 * Creates the primitives for one convolution and sets *workspace_floats to
 * the shared scratch its calls need. Returns NULL when oneDNN cannot run this
 * shape (or the build lacks it), with the reason in why.
 */
dn_onednn_conv *dn_onednn_conv_make(const dn_onednn_shape *s,
                                    size_t *workspace_floats, char *why,
                                    size_t why_size);

/* in [batch, c, h, w], weights [filters, c/groups, size, size] ->
 * out [batch, filters, out_h, out_w] (overwritten; no bias) */
void dn_onednn_conv_forward(dn_onednn_conv *cv, const float *in,
                            const float *weights, float *out, float *workspace);

/*
 * delta: dL/d(out). ADDS dL/d(in) into in_delta when not NULL, and
 * dL/d(weights) into dweights. delta NULL: dL/d(out) is already in
 * the blocked layout at dn_onednn_conv_delta_blocked (block > 0 only).
 */
void dn_onednn_conv_backward(dn_onednn_conv *cv, const float *in,
                             const float *weights, const float *delta,
                             float *dweights, float *in_delta,
                             float *workspace);

/*
 * Channel-blocked output, for a caller whose output stage (batch norm,
 * activation) reads the convolution's output and writes its gradient in
 * oneDNN's layout and so saves both reorders: the block k (16 or 8) when
 * the primitives' output and output gradient both use
 * [batch][filters/k][out_h*out_w][k] without padded channels, else 0.
 * forward_blocked leaves the output there, in the workspace, and returns
 * it (valid until the workspace is next used); delta_blocked is where
 * backward with delta NULL reads dL/d(out) in that layout.
 */
int dn_onednn_conv_block(const dn_onednn_conv *cv);
const float *dn_onednn_conv_forward_blocked(dn_onednn_conv *cv,
                                            const float *in,
                                            const float *weights,
                                            float *workspace);
float *dn_onednn_conv_delta_blocked(dn_onednn_conv *cv, float *workspace);

/*
 * Blocked input: when the primitives read the input (forward, weight
 * gradient) and write its gradient in [batch][c/k][h*w][k],
 * reads_blocked returns 1, and take_blocked_input lets the caller hand the
 * input in that layout from now on and receive the input gradient in it,
 * dropping those three reorders (returns 1; 0, nothing changed, when the
 * layouts differ or memory runs out). The input gradient is then added
 * when `add`, else WRITTEN: the caller's buffer must have no other
 * contribution.
 */
int dn_onednn_conv_reads_blocked(const dn_onednn_conv *cv, int k);
int dn_onednn_conv_take_blocked_input(dn_onednn_conv *cv, int k, int add);

/* The implementations oneDNN chose, e.g. "jit:avx512_core / ... / ...". */
const char *dn_onednn_conv_impl(const dn_onednn_conv *cv);

void dn_onednn_conv_free(dn_onednn_conv *cv);

#endif
