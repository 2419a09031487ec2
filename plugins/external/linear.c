/*
 * linear.c - an example external scheduler plugin: policy name "linear".
 *
 * The learning rate falls linearly from learning_rate to min_lr, then stays
 * at min_lr:
 *   p  = min(1, epoch / linear_epochs)      if linear_epochs is set
 *   p  = min(1, batch / max_batches)        otherwise
 *   lr = learning_rate + (min_lr - learning_rate) * p
 *
 * Build: make plugins  (-> build/plugins/libdn_sched_linear.so)
 * Use:   [net] policy=plugin  plugin=linear  (or plugin=path/to/the.so)
 *
 * A plugin includes only dn_scheduler.h and links nothing from the host: it
 * reads its keys through the dn_sched_ctx callbacks at parse time, and its
 * rate() is a pure function of (state, clock).
 */
#include <math.h>
#include <stdlib.h>

#include "dn_scheduler.h"

typedef struct linear_state {
    double learning_rate, min_lr;
    double linear_epochs; /* 0: decay over max_batches instead */
    long max_batches;
} linear_state;

static void *linear_parse(dn_sched_ctx *c)
{
    linear_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (c->get_double(c, "learning_rate", 0.001, 0, HUGE_VAL, &s->learning_rate) ||
        c->get_double(c, "min_lr", 0, 0, HUGE_VAL, &s->min_lr) ||
        c->get_double(c, "linear_epochs", 0, 0, HUGE_VAL, &s->linear_epochs))
        goto fail;
    if (s->linear_epochs == 0) {
        if (c->get_long(c, "max_batches", 0, 0, __LONG_MAX__, &s->max_batches))
            goto fail;
        if (s->max_batches < 1) {
            c->fail(c, "linear_epochs", "policy linear needs linear_epochs > 0 "
                    "or max_batches >= 1");
            goto fail;
        }
    }
    return s;
fail:
    free(s);
    return NULL;
}

static double linear_rate(const void *state, const dn_clock *clock)
{
    const linear_state *s = state;
    double p = s->linear_epochs > 0
                   ? clock->epoch / s->linear_epochs
                   : (double)clock->batch / (double)s->max_batches;
    if (p > 1)
        p = 1;
    return s->learning_rate + (s->min_lr - s->learning_rate) * p;
}

static void linear_free(void *state) { free(state); }

static const dn_scheduler linear = {
    .abi_version = DN_SCHED_ABI_VERSION,
    .struct_size = sizeof(dn_scheduler),
    .name = "linear",
    .parse = linear_parse,
    .rate = linear_rate,
    .free = linear_free,
};

/* The one symbol the host looks up (DN_SCHED_ENTRY). */
const dn_scheduler *dn_scheduler_entry(void) { return &linear; }
