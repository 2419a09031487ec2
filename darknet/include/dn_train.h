/*
 * dn_train.h - training and evaluating classifiers, checkpoints.
 * Included by darknet.h.
 */
#ifndef DN_TRAIN_H
#define DN_TRAIN_H

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Optimiser state next to a checkpoint (PATH.state): momentum / Adam
 * buffers. Written atomically; loading is all-or-nothing. */
int dn_state_save(const dn_net *net, const char *path, dn_error *err);
/* A state saved with other weights than those in net is refused. */
int dn_state_load(dn_net *net, const char *path, dn_error *err);

/*
 * A checkpoint: PATH (.weights) and PATH.state, saved as one. Both are
 * written to temporaries and fsynced before either is renamed, the weights
 * first; so after a kill at any instant the disk holds the old pair, or the
 * new weights with their state still in PATH.state.tmp. dn_checkpoint_load
 * loads PATH and the state recorded for exactly those weights (seen and
 * checksum): PATH.state, or PATH.state.tmp, whose rename it then completes.
 * A state of other weights is an error; no state at all loads the weights
 * alone (*state_loaded = 0: a fresh optimiser). with_state = 0 loads only
 * the weights.
 */
int dn_checkpoint_save(const dn_net *net, const char *path, dn_error *err);
int dn_checkpoint_load(dn_net *net, const char *path, int with_state,
                       int *state_loaded, dn_error *err);

/* The trainer's own [net] keys, read and checked in one place for training
 * and for the commands that do not train (summary, lr), so that all of
 * them accept and refuse the same values. */
typedef struct dn_trainer_keys {
    long epochs;            /* epochs=N (0: max_batches decides) */
    double halt_loss;       /* halt_loss= (0: off) */
    long halt_after_epochs; /* halt_after_epochs= */
    long bn_sync;           /* bn_sync=1: batch norm over the whole batch
                             * when training across processes */
} dn_trainer_keys;
int dn_trainer_keys_read(dn_section *net, dn_trainer_keys *out, dn_error *err);
/* Every [net] key training reads beyond the network's and the schedule's
 * (the trainer's, preprocessing and augmentation), read and checked
 * without data: what summary and lr run so that a key they do not use is
 * still validated, and never reported as unknown. */
int dn_trainer_keys_check(dn_section *net, dn_error *err);

/* The per-epoch CSV log at path, opened for appending rows after keeping
 * the header and the rows of epochs 1..epochs of what is there (a resumed
 * run's checkpoint epochs; 0: a fresh file). Rewritten atomically. */
FILE *dn_train_log_open(const char *path, const char *header, long epochs,
                        dn_error *err);
/* One row, flushed and fsynced (the trainer writes it before the epoch's
 * checkpoint). */
int dn_train_log_row(FILE *log, dn_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The model the entries below work on: the .data file, and the network's
 * cfg as the caller made it (dn_cfg_load, then dn_cfg_overlay and
 * dn_cfg_set: the command line's -overlay and -set). The library reads the
 * cfg and never changes or frees it (the network is built from a
 * dn_cfg_clone), so one cfg serves any number of calls; messages and
 * checkpoint names take its path. strict: an unused or duplicate key is an
 * error, not a warning (-strict).
 */
typedef struct dn_train_args {
    const char *data_path; /* .data file */
    const dn_cfg *cfg;
    int strict;
    const char *weights;   /* start from these weights, or NULL */
    int clear;             /* -clear: start the clock at 0 */
    int print_every;       /* batches between progress lines; 0 means 1 */
    int save_every_epoch;  /* also keep <cfg>_<epoch>.weights */
    const char *backup;    /* overrides the .data file's backup= */
    /* set (e.g. by a signal handler) to stop after the current batch,
     * writing <cfg>_last.weights first */
    volatile sig_atomic_t *stop;
    FILE *out;             /* progress lines; NULL means stdout */
    dn_devices devices;    /* n = 0: the CPU (see dn_net_use_devices) */
    /* called after every weight update with its batch number (0-based),
     * rate and mean loss per image; may be NULL */
    void (*on_update)(void *ctx, long batch, double lr, double loss);
    void *on_update_ctx;
    /* data-parallel across processes (comm.h, e.g. MPI ranks): each takes
     * its share of every forward batch; NULL: this process alone */
    struct dn_comm *comm;
} dn_train_args;

/* Outcome of a training run that did not fail. */
typedef enum {
    DN_TRAIN_DONE,        /* reached max_batches / epochs */
    DN_TRAIN_HALTED,      /* halt_loss condition: <cfg>_halt.weights */
    DN_TRAIN_INTERRUPTED, /* *stop was set: <cfg>_last.weights */
} dn_train_outcome;

/* Returns 0 with *outcome set, or -1 (bad input, I/O error, or a NaN/inf
 * loss, which keeps the last good checkpoint). */
int dn_train_classifier(const dn_train_args *a, dn_train_outcome *outcome,
                        dn_error *err);

typedef struct dn_eval_result {
    long images;
    double top1, topk; /* fractions */
    int k;
    double loss;       /* mean loss per image */
    long nonfinite;    /* images whose scores were not all finite: ranked
                        * wrong, and the loss is then not a number to trust */
} dn_eval_result;

typedef struct dn_eval_args {
    const char *data_path; /* .data file: its valid= set is evaluated */
    const dn_cfg *cfg;     /* as in dn_train_args */
    int strict;
    const char *weights;   /* or NULL: the cfg's initial weights */
    dn_devices devices;    /* n = 0: the CPU */
} dn_eval_args;

/* Top-1/top-k and mean loss over the .data file's valid set. */
int dn_eval_classifier(const dn_eval_args *a, dn_eval_result *res,
                       dn_error *err);

typedef struct dn_predict_args {
    const char *data_path, *weights;
    const dn_cfg *cfg; /* as in dn_train_args */
    int strict;
    const char *image; /* an image file (needs OpenCV), or NULL */
    long index;        /* else: this record of the valid set */
    int top;           /* classes to print; 0: the .data file's top= */
    dn_devices devices; /* n = 0: the CPU */
} dn_predict_args;

/* Prints the top classes with percentages, Darknet style:
 *   "path: Predicted in 0.012 seconds." then "93.20%: label" lines. */
int dn_predict_classifier(const dn_predict_args *p, FILE *out, dn_error *err);
/* Everything but the image: the .data file, the cfg and the weights load.
 * Darknet's predict without an image reads image paths from stdin; a cfg
 * or weights error must end the command first, not wait for input. */
int dn_predict_check(const dn_predict_args *p, dn_error *err);

#ifdef __cplusplus
}
#endif

#endif
