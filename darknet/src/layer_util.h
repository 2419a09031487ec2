/*
 * layer_util.h - what layer implementations share: allocation, activations,
 * the layer-type registry entries, and small math helpers.
 */
#ifndef DN_LAYER_UTIL_H
#define DN_LAYER_UTIL_H

#include <stddef.h>

#include "darknet.h"
#include "keys.h"

#ifdef __cplusplus /* the GPU twins (*.cu) are C++ */
extern "C" {
#endif

/* Zeroed floats, written once now so that no page fault lands in a batch.
 * Aborts on out-of-memory (the one allocation failure we do not recover). */
float *dn_calloc_floats(size_t n);

/*
 * Called by every layer's make() once its output shape, parameters
 * (params[].n, .name, .decay; w may still be NULL), workspace and
 * private_floats (every float it will allocate itself, parameters
 * included) are known, and before it allocates anything: adds them, and
 * what the network allocates for the layer (output, delta, gradients and
 * optimiser state), to the network's total. Returns 0: go on and allocate;
 * 1: the network is only planned (dn_net_plan): make() returns 0 at once,
 * allocating nothing; -1: the total would exceed the memory limit (err
 * names the section, the layer and the bytes).
 */
int dn_layer_reserve(dn_layer *l, dn_section *s, dn_net *net,
                     double private_floats, dn_error *err);

/* ------------------------------------------------------------ activations */
typedef enum {
    DN_LINEAR, DN_RELU, DN_LEAKY, DN_LOGISTIC, DN_TANH, DN_ELU, DN_SELU,
    DN_MISH, DN_SWISH, DN_GELU, DN_N_ACTIVATIONS
} dn_activation;

/* The names of activation=, in dn_activation order, NULL-terminated: the
 * choices of the activation entry of a layer's key table. */
extern const char *const dn_activation_names[];
/* Reads activation= through the layer's table (its default there) with the
 * list of valid names on error. */
int dn_parse_activation(dn_section *s, const dn_key *table,
                        dn_activation *out, dn_error *err);
const char *dn_activation_name(dn_activation a);
/*
 * In place: x[i] = f(x[i]) for i < n. The backward pass needs the
 * pre-activation for some functions (mish, swish, gelu, elu, selu), so it
 * takes both: given pre-activation x and output y = f(x), multiply
 * delta[i] by f'(x[i]).
 */
void dn_activate(float *x, long n, dn_activation a);
void dn_activate_backward(const float *x, const float *y, float *delta, long n,
                          dn_activation a);
/* The same on this thread alone, for a caller that splits a longer pass
 * into ranges of DN_ACTIVATE_RANGE elements (fused with its own loops,
 * while the range is in cache). */
#define DN_ACTIVATE_RANGE 32768L
void dn_activate_serial(float *x, long n, dn_activation a);
void dn_activate_backward_serial(const float *x, const float *y, float *delta,
                                 long n, dn_activation a);
/* 1 if the backward pass can be computed from y alone (x may be NULL). */
int dn_activation_needs_input(dn_activation a);

/* ------------------------------------------------------------ registry */
/* Every layer type, defined in its own file (darknet/src/<name>_layer.c),
 * and in GPU builds its device twin (darknet/src/<name>_layer.cu). */
extern const dn_layer_type dn_layer_convolutional, dn_layer_connected,
    dn_layer_batchnorm, dn_layer_maxpool, dn_layer_avgpool, dn_layer_dropout,
    dn_layer_softmax, dn_layer_logistic, dn_layer_shortcut, dn_layer_route,
    dn_layer_attention, dn_layer_layernorm;

#ifdef DN_GPU
extern const dn_layer_gpu_ops dn_layer_convolutional_gpu,
    dn_layer_connected_gpu, dn_layer_batchnorm_gpu, dn_layer_maxpool_gpu,
    dn_layer_avgpool_gpu, dn_layer_dropout_gpu, dn_layer_softmax_gpu,
    dn_layer_logistic_gpu, dn_layer_shortcut_gpu, dn_layer_route_gpu,
    dn_layer_attention_gpu, dn_layer_layernorm_gpu;
/* .gpu = DN_GPU_TWIN(dn_layer_<name>_gpu): the twin in a GPU build, NULL
 * in a CPU build (which compiles no .cu file, so the name is not used) */
#define DN_GPU_TWIN(ops) (&(ops))
#else
#define DN_GPU_TWIN(ops) NULL
#endif

#ifdef __cplusplus
}
#endif

#endif
