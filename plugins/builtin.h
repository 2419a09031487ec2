/*
 * builtin.h - the schedulers compiled into libdarknet.a.
 *
 * Each file plugins/NAME.c defines a family of them; darknet/src/schedule.c
 * lists them in its one registry table. They implement exactly the ABI of
 * dn_scheduler.h, as an external plugin would, and call nothing in the host
 * but the allocation helpers of xalloc.h (out of memory aborts).
 *
 * Each scheduler declares its [net] keys in one table (darknet/src/keys.h):
 * the registry hands it to the unused-key check, `darknet lr` and
 * docs/keys.md, and the scheduler reads its keys through it with the bi_*
 * helpers below, which take default and range from the entry and the value
 * through dn_sched_ctx.
 */
#ifndef DN_BUILTIN_SCHEDULERS_H
#define DN_BUILTIN_SCHEDULERS_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "dn_scheduler.h"
#include "keys.h"
#include "xalloc.h"

/* learning_rate, read by every scheduler (and by the host, schedule.c, for
 * burn_in): one entry, the same in every table. */
#define BI_LEARNING_RATE                                                     \
    DN_FLOAT("learning_rate", "0.001", 0, DN_NO_LIMIT,                       \
             "the base (peak) learning rate")

/* The entry of name: a scheduler reading a key its table lacks is a bug. */
static inline const dn_key *bi_entry(const dn_key *t, const char *name)
{
    const dn_key *k = dn_key_in(t, name);
    if (!k) {
        fprintf(stderr, "darknet: bug: scheduler key %s is not in its table\n",
                name);
        abort();
    }
    return k;
}

static inline long bi_bound(double x)
{
    return x <= (double)LONG_MIN ? LONG_MIN
           : x >= (double)LONG_MAX ? LONG_MAX : (long)x;
}

/* A key without a default ("") that is missing. */
static inline int bi_required(dn_sched_ctx *c, const dn_key *k)
{
    return c->fail(c, k->name, "required (%s)", k->doc);
}

static inline int bi_double_def(dn_sched_ctx *c, const dn_key *t,
                                const char *name, double def, double *out)
{
    const dn_key *k = bi_entry(t, name);
    return c->get_double(c, name, def, k->lo, k->hi, out);
}

static inline int bi_double(dn_sched_ctx *c, const dn_key *t, const char *name,
                            double *out)
{
    double def = 0;
    const dn_key *k = bi_entry(t, name);
    if (dn_key_default(k, &def) && !c->has(c, name))
        return bi_required(c, k);
    return c->get_double(c, name, def, k->lo, k->hi, out);
}

static inline int bi_long_def(dn_sched_ctx *c, const dn_key *t,
                              const char *name, long def, long *out)
{
    const dn_key *k = bi_entry(t, name);
    return c->get_long(c, name, def, bi_bound(k->lo), bi_bound(k->hi), out);
}

static inline int bi_long(dn_sched_ctx *c, const dn_key *t, const char *name,
                          long *out)
{
    double def = 0;
    const dn_key *k = bi_entry(t, name);
    if (dn_key_default(k, &def) && !c->has(c, name))
        return bi_required(c, k);
    return c->get_long(c, name, bi_bound(def), bi_bound(k->lo),
                       bi_bound(k->hi), out);
}

/* STRING or CHOICE, as text (the scheduler checks a CHOICE's value). */
static inline int bi_string(dn_sched_ctx *c, const dn_key *t, const char *name,
                            const char **out)
{
    const dn_key *k = bi_entry(t, name);
    return c->get_string(c, name, *k->def ? k->def : NULL, out);
}

/* A list (INTS are read as numbers: the ctx has no integer list). */
static inline int bi_doubles(dn_sched_ctx *c, const dn_key *t,
                             const char *name, double *out, int max, int *n)
{
    bi_entry(t, name);
    return c->get_doubles(c, name, out, max, n);
}

/* plugins/darknet_policies.c: Darknet's policies plus AlexeyAB's sgdr */
extern const dn_scheduler dn_sched_constant;
extern const dn_scheduler dn_sched_step;
extern const dn_scheduler dn_sched_steps;
extern const dn_scheduler dn_sched_exp;
extern const dn_scheduler dn_sched_poly;
extern const dn_scheduler dn_sched_sig;
extern const dn_scheduler dn_sched_random;
extern const dn_scheduler dn_sched_sgdr;
extern const dn_key dn_sched_constant_keys[], dn_sched_step_keys[],
    dn_sched_steps_keys[], dn_sched_exp_keys[], dn_sched_poly_keys[],
    dn_sched_sig_keys[], dn_sched_random_keys[], dn_sched_sgdr_keys[];

/* plugins/restart.c: warm restarts (cosine, cyclical log annealing) */
extern const dn_scheduler dn_sched_cosine_restart;
extern const dn_scheduler dn_sched_log_restart;
extern const dn_key dn_sched_cosine_restart_keys[], dn_sched_log_restart_keys[];

#endif
