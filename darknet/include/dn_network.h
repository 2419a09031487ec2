/*
 * dn_network.h - layers, networks, optimiser, weights, data.
 * Included by darknet.h; do not include directly.
 */
#ifndef DN_NETWORK_H
#define DN_NETWORK_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- layers */

/*
 * A trainable tensor of a layer. grad accumulates dL/dw summed over the
 * images of a batch (all subdivisions); the optimiser reads and clears it.
 * m and v are optimiser state (SGD momentum buffer / Adam moments), owned by
 * the network and allocated when it is built.
 */
typedef struct dn_param {
    const char *name; /* "biases", "scales", "weights", ... */
    float *w;
    float *grad;
    float *m;
    float *v;
    long n;
    int decay; /* weight decay applies (Darknet: weights only) */
    /* Device twins on a device-resident network (GPU builds): slices of the
     * network's parameter arenas; NULL on the CPU. */
    float *w_gpu, *grad_gpu, *m_gpu, *v_gpu;
} dn_param;

#define DN_MAX_PARAMS 8
#define DN_MAX_SAVED 8

typedef struct dn_layer dn_layer;
typedef struct dn_net dn_net;
/* A cfg key's entry in its module's table (darknet/src/keys.h). */
typedef struct dn_key dn_key;

/*
 * A layer type. make() reads the section's keys, sets the output shape from
 * the input shape already stored in l (c, h, w, batch), allocates output,
 * delta and private state, fills params[] and saved[], and sets flops and
 * workspace. forward() reads net->input; backward() reads l->delta and ADDS
 * dL/d(input) into net->delta when it is not NULL (deltas are zeroed by the
 * network before each backward pass, so several consumers can accumulate).
 *
 * The GPU twin (GPU builds; NULL otherwise and in a CPU build): one table,
 * all four set, defined next to the layer's CUDA code (<name>_layer.cu)
 * and named last in the type's initialiser. make() runs once when the
 * network moves to a device, after every output_gpu/delta_gpu, parameter
 * twin and saved_gpu[] exists; it creates the layer's device state
 * (priv_gpu) and sets workspace_gpu. forward() reads net->input_gpu;
 * backward() reads l->delta_gpu and ADDS into net->delta_gpu (may be
 * NULL). free() releases priv_gpu (also after a make() that failed).
 */
typedef struct dn_layer_gpu_ops {
    int (*make)(dn_layer *l, dn_net *net, dn_error *err);
    void (*forward)(dn_layer *l, dn_net *net);
    void (*backward)(dn_layer *l, dn_net *net);
    void (*free)(dn_layer *l);
} dn_layer_gpu_ops;

#define DN_BLOCK_FOLLOWS (-1)

typedef struct dn_layer_type {
    const char *name; /* section name, e.g. "convolutional" */
    const dn_key *keys; /* the section's keys (keys.h), NULL-name ended */
    int (*make)(dn_layer *l, dn_section *s, dn_net *net, dn_error *err);
    void (*forward)(dn_layer *l, dn_net *net);
    void (*backward)(dn_layer *l, dn_net *net);
    void (*free)(dn_layer *l);
    const dn_layer_gpu_ops *gpu; /* the device twin, or NULL */
    /* Optional, on the CPU: channel-blocked layouts (dn_layer's out_block).
     * block_out: the block k its output can be written in, 0 plain only,
     * DN_BLOCK_FOLLOWS for an element-wise layer whose inputs and output
     * share one layout, whichever it is. block_in: 1 if it can read its
     * inputs (and write their deltas) in block k. set_blocks: the choice
     * made, in l->in_block and l->out_block; in_shared: its input's delta
     * has other writers, so it must add into it. Returns 0, or -1 when it
     * cannot after all (out of memory). Decided once before the first CPU
     * forward (network.c, choose_layouts). */
    int (*block_out)(const dn_layer *l);
    int (*block_in)(const dn_layer *l, int k);
    int (*set_blocks)(dn_layer *l, int in_shared);
    /* Optional, on the CPU: 1 if its backward WRITES layer j's delta whole,
     * instead of adding into it, when it is that delta's first writer
     * (net->delta_from[j] == l->index): the network then does not zero
     * that delta first (network.c, list_zeroing). */
    int (*writes_delta)(const dn_layer *l, const dn_net *net, int j);
    /* Optional: 1 if the layer reads layer j's output (j < index; and
     * adds into its delta). Without it, a layer reads its input, layer
     * index - 1, only ([route] reads only the layers it names). */
    int (*reads)(const dn_layer *l, int j);
} dn_layer_type;

struct dn_layer {
    const dn_layer_type *type;
    int index;
    int batch;               /* images per forward pass */
    int c, h, w;             /* input:  [batch, c, h, w] */
    int out_c, out_h, out_w; /* output: [batch, out_c, out_h, out_w] */
    long inputs, outputs;    /* per image: c*h*w, out_c*out_h*out_w */
    float *output;           /* [batch, outputs] */
    float *delta;            /* [batch, outputs]: dL/d(output) */
    dn_param params[DN_MAX_PARAMS];
    int n_params;
    /* Tensors in .weights order (Darknet's layout), e.g. for a convolution:
     * biases, [scales, rolling_mean, rolling_variance], weights. */
    float *saved[DN_MAX_SAVED];
    long saved_n[DN_MAX_SAVED];
    int n_saved;
    double flops;     /* forward FLOPs per image (multiply-add = 2) */
    size_t workspace; /* floats of shared scratch this layer needs */
    float cost;       /* loss layers: loss of the last forward, summed over batch */
    int is_loss;      /* reads net->truth, sets cost and its own delta */
    /* On the CPU: the channel block k of the output and its delta, laid out
     * [batch][out_c/k][out_h][out_w][k] (oneDNN's nChw16c), 0 for the plain
     * [batch, out_c, out_h, out_w]; in_block, that of the input it reads.
     * Both 0 until the first CPU forward chooses them (dn_layer_type). */
    int out_block, in_block;
    char desc[64];    /* summary: e.g. "64 3 x 3/1" */
    void *priv;       /* layer-private state */
    /* device twins on a device-resident network (NULL on the CPU) */
    float *output_gpu, *delta_gpu;   /* [batch, outputs] */
    float *saved_gpu[DN_MAX_SAVED];  /* twins of saved[] */
    float *cost_gpu;       /* loss layers: [batch], each image's loss */
    size_t workspace_gpu;  /* bytes of shared device scratch it needs */
    void *priv_gpu;        /* layer-private device state */
};

/* The layer registry (darknet/src/layers.c): NULL if unknown. */
const dn_layer_type *dn_layer_type_find(const char *name);
const char *dn_layer_type_names(void); /* comma-separated, static buffer */
/* Every registered type, in registry order: i < dn_layer_type_count();
 * dn_layer_type_at() is NULL past the last. */
int dn_layer_type_count(void);
const dn_layer_type *dn_layer_type_at(int i);

/* --------------------------------------------------------------- network */

/* [net] conv_backend= values, in the order of their names in network.c */
enum { DN_CONV_AUTO, DN_CONV_ONEDNN, DN_CONV_IM2COL };
/* [net] output_activation= values, in the order of their names in
 * network.c: the function of the network's final [softmax] loss layer */
enum { DN_OUTPUT_SOFTMAX, DN_OUTPUT_SIGMOID };

struct dn_net {
    dn_layer *layers;
    int n;
    int batch;           /* images per forward pass = cfg batch / subdivisions */
    int subdivisions;
    long images_per_batch; /* cfg batch: images per weight update */
    int c, h, w;
    long inputs;  /* c*h*w */
    long truths;  /* floats of truth per image (classes) */
    float *input_data; /* [batch, inputs], owned */
    float *truth;      /* [batch, truths], owned */
    /* the current layer's context, set by the network before each call */
    float *input; /* the layer's input */
    float *delta; /* where the layer adds dL/d(input); NULL for the first */
    float *input_delta; /* optional [batch, inputs]: dL/d(input_data) */
    int train;
    float *workspace; /* shared scratch, max over layers, owned */
    size_t workspace_size;
    /* optimisation ([net] keys, Darknet semantics) */
    double momentum, decay;
    double bn_momentum; /* weight of a batch in batch norm's rolling stats */
    int adam;
    double b1, b2, eps;
    long max_batches;
    dn_schedule *schedule;
    uint64_t seen; /* images seen: the clock's source */
    uint64_t seed;
    int threads;
    /* [net] conv_backend= (CPU convolutions): DN_CONV_AUTO takes oneDNN
     * where the build has it and it runs the shape, else im2col + GEMM */
    int conv_backend;
    /* [net] output_activation: DN_OUTPUT_SOFTMAX, or DN_OUTPUT_SIGMOID for
     * Keras's categorical cross-entropy on sigmoid outputs in the final
     * [softmax] (softmax_layer.c) */
    int output_activation;
    dn_cfg *cfg; /* owned */
    /* Where it runs (darknet/src/backend.h), chosen once when it is
     * placed (dn_net_use_devices): the CPU, one device or replicas. */
    const struct dn_backend *backend;
    /* Device (GPU builds; see darknet/src/network_gpu.c). gpu_state is NULL
     * on the CPU. A device-resident net keeps every weight, gradient,
     * optimiser state and activation on its device; the host copies are
     * refreshed by dn_net_pull (dn_weights_save does it) except the last
     * layer's output and the loss layers' cost, which every forward
     * returns. With several devices the net holds no twins (gpu_state is
     * NULL) but its replicas, one single-device net per device
     * (darknet/src/replicas.c). */
    struct dn_gpu_net *gpu_state;
    struct dn_replicas *replicas;
    /* Data-parallel training across processes (distributed.c): the
     * processes taking part (0 or 1: this one alone), recorded in a
     * checkpoint's .state; the world size the last loaded .state recorded
     * (0: none, or a file older than that field); sync batch norm's
     * all-reduce, set while [net] bn_sync=1 spans several processes. */
    int world_size, loaded_world_size;
    int layouts_chosen; /* the CPU backend has run choose_layouts */
    /* Deltas share buffers (network.c, assign_deltas): layer i's delta is
     * live from the backward of its last writer, delta_from[i], to its own
     * and zeroed when it starts; -1: a buffer of its own, zeroed before
     * each training forward (the last layer and loss layers, which write
     * it in the forward). */
    int *delta_from;
    /* Before backward step i, the CPU zeroes the deltas
     * zero_list[zero_first[i] .. zero_first[i + 1]) (network.c,
     * list_zeroing): delta_from's, less those written whole. */
    int *zero_first, *zero_list;
    float **delta_buffers;
    int n_delta_buffers;
    struct dn_bn_sync *bn_sync;
    int gpu;           /* CUDA device of the twins below; -1 on the CPU */
    int tf32;          /* [net] tf32=1 (default): TF32 tensor cores allowed */
    long image_offset; /* a replica: its first image in the forward batch */
    float *input_data_gpu, *truth_gpu, *input_delta_gpu;
    float *input_gpu, *delta_gpu; /* the current layer's context */
    void *workspace_gpu;          /* shared device scratch, owned */
    size_t workspace_gpu_bytes;
    /* Memory, counted before anything is allocated (see dn_net_make) */
    int planned;          /* built by dn_net_plan: shapes only, no tensors */
    double max_bytes;     /* the limit: [net] max_memory=, or the machine's */
    int limit_source;     /* of max_bytes: 0 machine, 1 max_memory, 2 caller */
    double planned_bytes; /* the layers' tensors, outputs and optimiser state */
    size_t planned_workspace; /* floats: the largest layer workspace so far */
    int reserved_layer;   /* the last layer that called dn_layer_reserve */
};

typedef struct dn_net_options {
    int batch_override;  /* >0: force the forward batch (inference) */
    /* >0: refuse networks needing more bytes than this (a test's or a
     * fuzzer's budget), below [net] max_memory= and the machine's memory */
    double max_bytes;
} dn_net_options;

/* Keys nothing read are checked by the caller once everything that reads
 * the cfg (network, schedule, data, trainer) has run: dn_cfg_check_unused. */

/*
 * Build a network from a parsed cfg (takes ownership of cfg on success).
 * It is planned first (dn_net_plan): what every layer will allocate
 * (weights, outputs, deltas, gradients, optimiser state, workspace) is
 * added up before anything is allocated, and a network needing more than
 * the limit ([net] max_memory=BYTES, suffixes K, M, G, T; else the
 * machine's memory: RAM, the process's rlimits, its cgroup's memory.max)
 * is refused with an error naming the layer that crosses it and the bytes.
 */
int dn_net_make(dn_cfg *cfg, const dn_net_options *opt, dn_net **out,
                dn_error *err);
/*
 * Shapes only: every key is read and checked and every layer's shape,
 * parameter count, FLOPs and description set, but no tensor is allocated
 * (net->planned; the layers' buffers are NULL). Enough for
 * dn_net_summary; such a network cannot run. Takes ownership of cfg on
 * success, as dn_net_make does.
 */
int dn_net_plan(dn_cfg *cfg, const dn_net_options *opt, dn_net **out,
                dn_error *err);
/* The memory this process may use: RAM, rlimits, cgroup (bytes). */
double dn_machine_memory(void);
/* "1.5 GiB", "312 MiB", "900 bytes" (static buffer, one of 4 in turn). */
const char *dn_bytes_text(double bytes);
void dn_net_free(dn_net *net);

/* Forward over net->input_data; train selects training behaviour. On a
 * device it copies input_data and truth up and returns once the last
 * layer's output and the loss layers' costs are back on the host (the one
 * host synchronisation of a training step). */
void dn_net_forward(dn_net *net, int train);
/* Backward from each layer's delta (set by loss layers in a training
 * forward, or by the caller); accumulates param grads. Runs in the mode of
 * the last forward (net->train). */
void dn_net_backward(dn_net *net);
/* Zero every layer's delta (and input_delta); forward(train=1) does this. */
void dn_net_zero_deltas(dn_net *net);
/* One optimiser step with rate lr over images_per_batch images. */
void dn_net_update(dn_net *net, double lr);
/* After an update: dn_net_check_finite on a CPU network (a NaN can hide
 * behind a ReLU and never reach the loss); 0 at once on a device, whose
 * tensors are checked when a checkpoint pulls them. */
int dn_net_check_weights(const dn_net *net, dn_error *err);
/* Sum of loss-layer costs of the last forward. */
float dn_net_cost(const dn_net *net);
dn_layer *dn_net_output_layer(dn_net *net);
long dn_net_param_count(const dn_net *net);
double dn_net_flops(const dn_net *net); /* forward FLOPs per image */
void dn_net_summary(const dn_net *net, FILE *out);

/* --------------------------------------------------------------- devices */

#define DN_MAX_GPUS 16

/* Where a network runs: n = 0 is the CPU; n >= 1 CUDA devices (data
 * parallel: each gets batch/n images of every forward pass). */
typedef struct dn_devices {
    int n;
    int ids[DN_MAX_GPUS];
} dn_devices;

/* CUDA devices present: 0 in a CPU build or without a driver. */
int dn_gpu_count(void);
/* Move a network onto devices (dev NULL or n = 0: stay on the CPU). After
 * this, dn_net_forward/backward/update/zero_deltas run on the device;
 * weights are pushed once, from the host copies. Fails (the net stays on
 * the CPU) in a CPU build, without the devices, or without a layer's GPU
 * implementation. */
int dn_net_use_devices(dn_net *net, const dn_devices *dev, dn_error *err);
/* "CPU", or e.g. "GPU 0 (NVIDIA H200), cuDNN, TF32"; owned by the net */
const char *dn_net_device_name(const dn_net *net);
/* Device -> host copies of the saved tensors and the optimiser state;
 * host -> device. Both are no-ops on the CPU. */
int dn_net_pull(const dn_net *net, dn_error *err);
int dn_net_push(dn_net *net, dn_error *err);
/* Wait for queued device work; both return the first device error since
 * the last call (0 on the CPU). dn_net_check does not wait. */
int dn_net_sync(dn_net *net, dn_error *err);
int dn_net_check(dn_net *net, dn_error *err);

/* --------------------------------------------------------------- weights */

/* Darknet .weights: int32 major, minor, revision; uint64 seen (if
 * major*10+minor >= 2, else uint32); then each layer's saved[] tensors.
 * Writes to path.tmp, fsyncs, renames. Load is all-or-nothing. */
int dn_weights_save(const dn_net *net, const char *path, dn_error *err);
int dn_weights_load(dn_net *net, const char *path, dn_error *err);
/* 0 when every saved tensor (weights, biases, batch-norm statistics) and
 * every optimiser buffer of the network's host copies is finite (rolling
 * variances and Adam's second moments also >= 0); else -1 with err naming
 * the first bad value: "layer 3 [convolutional] weights[17] = nan". Saving
 * refuses such a network, loading such a file. */
int dn_net_check_finite(const dn_net *net, dn_error *err);
/* A 64-bit checksum of the weights as saved: seen and every saved tensor.
 * A .state file records it to name the weights it belongs to. */
uint64_t dn_weights_checksum(const dn_net *net);

/* ------------------------------------------------------------------ rng */

/* splitmix64-seeded xoshiro256** generator: deterministic, per object */
typedef struct dn_rng {
    uint64_t s[4];
} dn_rng;
void dn_rng_seed(dn_rng *r, uint64_t seed);
uint64_t dn_rng_u64(dn_rng *r);
double dn_rng_uniform(dn_rng *r); /* [0, 1) */
double dn_rng_normal(dn_rng *r);  /* N(0, 1) */
/* A stateless hash of (seed, a, b) for per-item determinism. */
uint64_t dn_hash3(uint64_t seed, uint64_t a, uint64_t b);

#ifdef __cplusplus
}
#endif

#endif
