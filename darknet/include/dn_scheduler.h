/*
 * dn_scheduler.h - the learning-rate scheduler plugin ABI.
 *
 * A scheduler is {name, parse, rate, free}. Built-in schedulers (plugins/)
 * and external ones (a shared object exporting DN_SCHED_ENTRY) implement the
 * very same struct. The host owns the training clock and the cfg; a plugin
 * reads its [net] keys only through the dn_sched_ctx callbacks, so it needs
 * nothing from the host at link time.
 *
 * rate() must be a pure function of (state, clock): no hidden state, so that
 * a resumed run continues the schedule exactly and `darknet lr` can draw a
 * schedule without training.
 *
 * Versioning: bump DN_SCHED_ABI_VERSION on any incompatible change of the
 * structs below. The loader checks abi_version and struct_size.
 */
#ifndef DN_SCHEDULER_H
#define DN_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#define DN_SCHED_ABI_VERSION 1
#define DN_SCHED_ENTRY "dn_scheduler_entry"

/*
 * The training clock, computed in one place (dn_clock_at, darknet/src/clock.c).
 *   batch    b = seen / images_per_batch        (Darknet's get_current_batch)
 *   epoch    e = b / batches_per_epoch          (fractional)
 *   batch_epochs = 1 / batches_per_epoch        (one batch, in epochs)
 */
typedef struct dn_clock {
    uint64_t seen;          /* images seen so far */
    long images_per_batch;  /* cfg batch: images per weight update */
    long batch;             /* weight updates done so far */
    long batches_per_epoch; /* >= 1 */
    long max_batches;       /* [net] max_batches (0 if unset) */
    double epoch;           /* batch / batches_per_epoch */
    double batch_epochs;    /* 1.0 / batches_per_epoch */
} dn_clock;

/*
 * Parse-time access to the [net] section. Every getter marks the key as used,
 * checks the range [lo, hi] and on failure sets an error that names the file,
 * line, section and key, then returns -1. A missing key yields def.
 */
typedef struct dn_sched_ctx dn_sched_ctx;
struct dn_sched_ctx {
    int (*get_double)(dn_sched_ctx *c, const char *key, double def, double lo,
                      double hi, double *out);
    int (*get_long)(dn_sched_ctx *c, const char *key, long def, long lo,
                    long hi, long *out);
    int (*get_string)(dn_sched_ctx *c, const char *key, const char *def,
                      const char **out);
    /* comma-separated list; a missing key gives *n = 0; more than max is an error */
    int (*get_doubles)(dn_sched_ctx *c, const char *key, double *out, int max,
                       int *n);
    int (*has)(dn_sched_ctx *c, const char *key);
    /* set an error about key (printf-style message); returns -1 */
    int (*fail)(dn_sched_ctx *c, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    void *impl; /* host-private */
};

typedef struct dn_scheduler {
    int abi_version;    /* DN_SCHED_ABI_VERSION */
    size_t struct_size; /* sizeof(dn_scheduler) */
    const char *name;   /* the value of policy= */
    /* read and validate parameters; NULL with the ctx error set on failure */
    void *(*parse)(dn_sched_ctx *ctx);
    /* learning rate at this clock; pure */
    double (*rate)(const void *state, const dn_clock *clock);
    void (*free)(void *state);
} dn_scheduler;

/* An external plugin exports: const dn_scheduler *dn_scheduler_entry(void); */
typedef const dn_scheduler *(*dn_sched_entry_fn)(void);

#endif
