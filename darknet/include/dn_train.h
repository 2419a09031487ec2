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
int dn_state_load(dn_net *net, const char *path, dn_error *err);

/* The trainer's own [net] keys, read and checked in one place for training
 * and for the commands that do not train (summary, lr), so that all of
 * them accept and refuse the same values. */
typedef struct dn_trainer_keys {
    long epochs;            /* epochs=N (0: max_batches decides) */
    double halt_loss;       /* halt_loss= (0: off) */
    long halt_after_epochs; /* halt_after_epochs= */
} dn_trainer_keys;
int dn_trainer_keys_read(dn_section *net, dn_trainer_keys *out, dn_error *err);
/* Every [net] key training reads beyond the network's and the schedule's
 * (the trainer's, preprocessing and augmentation), read and checked
 * without data: what summary and lr run so that a key they do not use is
 * still validated, and never reported as unknown. */
int dn_trainer_keys_check(dn_section *net, dn_error *err);

typedef struct dn_train_args {
    const char *data_path; /* .data file */
    const char *cfg_path;
    const char *weights;   /* start from these weights, or NULL */
    int clear;             /* -clear: start the clock at 0 */
    int argc;              /* the command line, for -set/-overlay/-strict */
    char **argv;
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
} dn_eval_result;

/* Top-1/top-k and mean loss over the .data file's valid set, on devices
 * (NULL: the CPU). */
int dn_eval_classifier(const char *data_path, const char *cfg_path,
                       const char *weights, int argc, char **argv,
                       const dn_devices *devices, dn_eval_result *res,
                       dn_error *err);

typedef struct dn_predict_args {
    const char *data_path, *cfg_path, *weights;
    const char *image; /* an image file (needs OpenCV), or NULL */
    long index;        /* else: this record of the valid set */
    int top;           /* classes to print; 0: the .data file's top= */
    int argc;
    char **argv;
    dn_devices devices; /* n = 0: the CPU */
} dn_predict_args;

/* Prints the top classes with percentages, Darknet style:
 *   "path: Predicted in 0.012 seconds." then "93.20%: label" lines. */
int dn_predict_classifier(const dn_predict_args *p, FILE *out, dn_error *err);

#ifdef __cplusplus
}
#endif

#endif
