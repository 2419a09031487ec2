/*
 * darknet.h - public API of this Darknet-style framework.
 *
 * Conventions
 *  - Errors are values: a function that can fail returns 0 on success and -1
 *    on failure, with a message in the caller's dn_error. Library code never
 *    calls exit().
 *  - Ownership: every *_load / *_make / *_parse has a matching *_free.
 *  - Tensors are float, NCHW, batch-major: [batch, c, h, w].
 *  - Gradients use the PyTorch sign: delta = dL/d(output). Parameter
 *    gradients are summed over the images of a batch; the optimiser divides
 *    by the batch (Darknet's lr / batch).
 */
#ifndef DARKNET_H
#define DARKNET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dn_scheduler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

#define DN_ERROR_MAX 1024
typedef struct dn_error {
    char msg[DN_ERROR_MAX];
} dn_error;

/* Format msg into err (err may be NULL); always returns -1. */
int dn_fail(dn_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------- cfg */

/*
 * A Darknet cfg: [section] headers, key=value, '#' and ';' comments, blank
 * lines, whitespace around '='. Sections are kept in file order.
 */
typedef struct dn_kv {
    char *key;
    char *value;
    int line;        /* 1-based line in file; 0 for -set overrides */
    int used;        /* set by the typed getters */
    int override;    /* came from -set or -overlay: unused is an error */
    const char *src; /* file the value came from (points into dn_cfg) */
    char *warning;   /* set by dn_sec_warn: reported once by the check */
} dn_kv;

typedef struct dn_section {
    char *type; /* "net", "convolutional", ... (without brackets) */
    int line;
    const char *path;
    dn_kv *kvs;
    int n_kv, cap_kv;
} dn_section;

typedef struct dn_cfg {
    char *path;
    char **paths; /* every file that contributed (main cfg, overlays) */
    int n_paths;
    dn_section *sections;
    int n_sections, cap_sections;
} dn_cfg;

int dn_cfg_load(const char *path, dn_cfg **out, dn_error *err);
/* name is used in messages in place of a path */
int dn_cfg_parse_string(const char *text, const char *name, dn_cfg **out,
                        dn_error *err);
/* A flat key=value file (Darknet .data): one section of type "data". */
int dn_cfg_load_flat(const char *path, dn_cfg **out, dn_error *err);
void dn_cfg_free(dn_cfg *cfg);
/* A deep copy: keys, values, their marks (used, override, warnings) and
 * file names, all its own (out of memory aborts, as for every small
 * allocation); free it with dn_cfg_free. */
dn_cfg *dn_cfg_clone(const dn_cfg *src);

/* Strip leading and trailing whitespace in place; returns the new start. */
char *dn_trim(char *s);

/* First section of this type, or NULL. */
dn_section *dn_cfg_find(dn_cfg *cfg, const char *type);

/* -set key=value: override (or add) a [net] key. */
int dn_cfg_set(dn_cfg *cfg, const char *assignment, dn_error *err);
/* -overlay FILE: every [net] key of FILE overrides the main cfg's. */
int dn_cfg_overlay(dn_cfg *cfg, const char *overlay_path, dn_error *err);

/*
 * Typed getters. A missing key yields def. A value that does not parse
 * fully ("77foo"), or lies outside [lo, hi], is an error of the form
 *   path:line: [section] key: expected an integer >= 1, got "abc"
 * A key given twice: the first value is used, every value is checked. All
 * mark the key used. Modules read their keys through their key tables
 * (darknet/src/keys.h), which hold the defaults and ranges.
 */
int dn_sec_has(const dn_section *s, const char *key);
/* The first occurrence (Darknet's option_find keeps the first of a key
 * given twice); marks every occurrence used. */
dn_kv *dn_sec_kv(dn_section *s, const char *key);
int dn_sec_int(dn_section *s, const char *key, long def, long lo, long hi,
               long *out, dn_error *err);
int dn_sec_double(dn_section *s, const char *key, double def, double lo,
                  double hi, double *out, dn_error *err);
int dn_sec_string(dn_section *s, const char *key, const char *def,
                  const char **out, dn_error *err);
/* Comma-separated lists; a missing key gives *n = 0. At most max entries. */
int dn_sec_ints(dn_section *s, const char *key, long *out, int max, int *n,
                dn_error *err);
int dn_sec_doubles(dn_section *s, const char *key, double *out, int max,
                   int *n, dn_error *err);
/* One of choices (NULL-terminated); the error lists the valid choices. */
int dn_sec_choice(dn_section *s, const char *key, const char *def,
                  const char *const *choices, int *index, dn_error *err);
/* An error about an existing key, in the standard form. Returns -1. */
int dn_sec_fail(const dn_section *s, const char *key, dn_error *err,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A warning about a legal but implausible value of key (learning_rate=50):
 * kept with the key (the first one only) and printed, in the standard form,
 * by dn_cfg_check_unused. Never an error, not even under -strict. */
void dn_sec_warn(dn_section *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Keys no getter read, keys given twice in one section and the warnings of
 * dn_sec_warn. Each is printed to `report` (may be NULL) in the form
 * "path:line: [section] key: warning: ...". A key given twice keeps its
 * first value, as Darknet's option_find does (the getters reject an invalid
 * value in any occurrence); the repeat is reported at its own line, naming
 * the line of the first. An unused key is told apart, through the key
 * tables (darknet/src/keys.h), as unknown (with the nearest known name) or
 * known but not used by these settings. Returns -1 (err naming the first)
 * if strict is set and there is an unused or duplicate key, or if an
 * unused key came from an override.
 */
int dn_cfg_check_unused(const dn_cfg *cfg, int strict, FILE *report,
                        dn_error *err);

/* ----------------------------------------------------------------- clock */

/* The one place the training clock is computed. */
dn_clock dn_clock_at(uint64_t seen, long images_per_batch,
                     long batches_per_epoch, long max_batches);

/* What the length of a training run is derived from. */
typedef struct dn_length_inputs {
    long train_images;      /* images in the training set */
    long images_per_batch;  /* [net] batch: images per weight update */
    long batches_per_epoch; /* > 0: given (darknet lr -batches-per-epoch);
                             * 0: from train_images */
    double epochs;          /* > 0: the run in epochs ([net] epochs=,
                             * darknet lr -epochs); 0: max_batches */
    long max_batches;       /* [net] max_batches */
} dn_length_inputs;

typedef struct dn_run_length {
    long images_per_batch;
    long batches_per_epoch;
    long max_batches;       /* the weight updates of the whole run */
} dn_run_length;

/* The one place a run's length is derived (clock.c has the formula):
 * training and darknet lr call it, so the rows lr prints are the updates
 * training makes. -1 when the run has no length or more images than the
 * clock counts. */
int dn_train_length(const dn_length_inputs *in, dn_run_length *out,
                    dn_error *err);

/* -------------------------------------------------------------- schedule */

/* A parsed schedule: the policy plugin plus Darknet's burn_in warm-up. */
typedef struct dn_schedule dn_schedule;

/* Reads learning_rate, policy, burn_in, power, plugin=... from [net]. */
int dn_schedule_parse(dn_section *net, dn_schedule **out, dn_error *err);
double dn_schedule_rate(const dn_schedule *s, const dn_clock *clock);
/* Rates above this are legal but warned about (learning_rate=, and a
 * schedule that reaches one). */
#define DN_IMPLAUSIBLE_RATE 10.0
/* The rate at clock, checked: 0 with *rate set; -1 when the rate is NaN,
 * infinite or negative (err names the policy, a plugin's file, the batch
 * and the epoch); 1 when it is above DN_IMPLAUSIBLE_RATE (err holds the
 * warning; *rate is set and may be used). */
int dn_schedule_rate_checked(const dn_schedule *s, const dn_clock *clock,
                             double *rate, dn_error *err);
const char *dn_schedule_policy(const dn_schedule *s);
void dn_schedule_free(dn_schedule *s);

/* Registry of scheduler implementations (built-in and loaded). */
const dn_scheduler *dn_scheduler_find(const char *name);
/* The checks every plugin's struct passes before it is used, in order:
 * readable memory, ABI version, struct size, a readable valid name, and
 * parse, rate and free all non-NULL addresses in executable code. Errors
 * name path and the stage, as dn_scheduler_load's do. */
int dn_scheduler_check(const dn_scheduler *s, const char *path,
                       dn_error *err);
/* Load an external plugin (.so); registers it under its name. */
int dn_scheduler_load(const char *path, const dn_scheduler **out,
                      dn_error *err);
/* Comma-separated names of every registered scheduler (static buffer). */
const char *dn_scheduler_names(void);

#ifdef __cplusplus
}
#endif

#include "dn_network.h"
#include "dn_train.h"

#endif
