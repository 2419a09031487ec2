/*
 * darknet_policies.c - Darknet's learning-rate policies (constant, step,
 * steps, exp, poly, sig, random) and AlexeyAB's sgdr, as schedulers.
 *
 * Semantics are Darknet's get_current_rate(), checked numerically against
 * Debian's libdarknet in tests/test_schedule.c. b is the clock's batch
 * (weight updates so far) and lr is [net] learning_rate. Darknet's burn_in
 * warm-up is applied by the host on top of every policy, so it is not here.
 *
 * Where Darknet misbehaves we keep its intent and say so:
 *  - sig: Darknet computes b - step in unsigned arithmetic, so the rate is 0
 *    before step; here b - step is signed, as the formula means.
 *  - poly: past max_batches Darknet's (1 - b/max_batches)^power turns
 *    positive again (even power) or NaN; here the rate stays 0.
 *  - random: Darknet draws rand(); here the draw is a hash of (seed, b), so
 *    the rate is a pure function of the clock (see random_rate).
 *  - steps: the lists must have equal length and steps must not decrease
 *    (Darknet reads past the shorter list and returns early on a decrease).
 *
 * Like an external plugin, this file reads the cfg only through dn_sched_ctx,
 * each scheduler's keys through its table (builtin.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "builtin.h"

#define MAX_STEPS 64

/* Darknet's default learning_rate (BI_LEARNING_RATE); every table below
 * has it, and the host reads the same entry. */
static int get_learning_rate(dn_sched_ctx *c, const dn_key *t, double *lr)
{
    return bi_double(c, t, "learning_rate", lr);
}

/* The states are plain structs freed with free(). */
static void free_state(void *state) { free(state); }

/* -------------------------------------------------------------- constant */

typedef struct constant_state {
    double lr;
} constant_state;

const dn_key dn_sched_constant_keys[] = {BI_LEARNING_RATE, DN_KEYS_END};

static void *constant_parse(dn_sched_ctx *c)
{
    constant_state *s = dn_xcalloc(1, sizeof *s);
    if (get_learning_rate(c, dn_sched_constant_keys, &s->lr)) {
        free(s);
        return NULL;
    }
    return s;
}

/* lr */
static double constant_rate(const void *state, const dn_clock *clock)
{
    return ((const constant_state *)state)->lr;
}

const dn_scheduler dn_sched_constant = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "constant",
    constant_parse, constant_rate, free_state,
};

/* ------------------------------------------------------------------ step */

typedef struct step_state {
    double lr, scale;
    long step;
} step_state;

const dn_key dn_sched_step_keys[] = {
    BI_LEARNING_RATE,
    DN_INT("step", "1", 1, DN_NO_LIMIT, "batches between drops"),
    DN_FLOAT("scale", "1", 0, DN_NO_LIMIT, "factor of each drop"),
    DN_KEYS_END,
};

static void *step_parse(dn_sched_ctx *c)
{
    const dn_key *t = dn_sched_step_keys;
    step_state *s = dn_xcalloc(1, sizeof *s);
    if (get_learning_rate(c, t, &s->lr) ||
        bi_long(c, t, "step", &s->step) ||
        bi_double(c, t, "scale", &s->scale)) {
        free(s);
        return NULL;
    }
    return s;
}

/* lr * scale^floor(b / step): the integer division is Darknet's */
static double step_rate(const void *state, const dn_clock *clock)
{
    const step_state *s = state;
    return s->lr * pow(s->scale, (double)(clock->batch / s->step));
}

const dn_scheduler dn_sched_step = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "step",
    step_parse, step_rate, free_state,
};

/* ----------------------------------------------------------------- steps */

typedef struct steps_state {
    double lr;
    int n;
    long steps[MAX_STEPS];
    double scales[MAX_STEPS];
} steps_state;

/* steps= is read as numbers (the ctx has no integer list); each must be a
 * whole number, and they must not decrease. Darknet allows negative steps
 * (yolov2 uses steps=-1,100,...): a negative step applies from batch 0. */
const dn_key dn_sched_steps_keys[] = {
    BI_LEARNING_RATE,
    DN_INTS("steps", "batches at which the rate is multiplied (at most 64, "
            "not decreasing)"),
    DN_FLOATS("scales", "the factor at each step, one per step"),
    DN_KEYS_END,
};

static int read_steps(dn_sched_ctx *c, steps_state *s)
{
    double steps[MAX_STEPS];
    int n_steps, n_scales;
    const dn_key *t = dn_sched_steps_keys;
    if (bi_doubles(c, t, "steps", steps, MAX_STEPS, &n_steps) ||
        bi_doubles(c, t, "scales", s->scales, MAX_STEPS, &n_scales))
        return -1;
    if (n_steps == 0 || n_scales == 0)
        return c->fail(c, n_steps ? "scales" : "steps",
                       "policy=steps needs both steps= and scales=");
    if (n_scales != n_steps)
        return c->fail(c, "scales", "expected %d values (one per step), got %d",
                       n_steps, n_scales);
    for (int i = 0; i < n_steps; i++) {
        if (steps[i] != floor(steps[i]) || fabs(steps[i]) > 1e15)
            return c->fail(c, "steps", "step %g is not a whole number of batches",
                           steps[i]);
        s->steps[i] = (long)steps[i];
        if (i > 0 && s->steps[i] < s->steps[i - 1])
            return c->fail(c, "steps", "steps must not decrease (%ld after %ld)",
                           s->steps[i], s->steps[i - 1]);
    }
    s->n = n_steps;
    return 0;
}

static void *steps_parse(dn_sched_ctx *c)
{
    steps_state *s = dn_xcalloc(1, sizeof *s);
    if (get_learning_rate(c, dn_sched_steps_keys, &s->lr) || read_steps(c, s)) {
        free(s);
        return NULL;
    }
    return s;
}

/* lr * product of scales[i] over every i with steps[i] <= b */
static double steps_rate(const void *state, const dn_clock *clock)
{
    const steps_state *s = state;
    double rate = s->lr;
    for (int i = 0; i < s->n && s->steps[i] <= clock->batch; i++)
        rate *= s->scales[i];
    return rate;
}

const dn_scheduler dn_sched_steps = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "steps",
    steps_parse, steps_rate, free_state,
};

/* ------------------------------------------------------------- exp, sig */

typedef struct gamma_state {
    double lr, gamma;
    long step; /* sig only */
} gamma_state;

const dn_key dn_sched_exp_keys[] = {
    BI_LEARNING_RATE,
    DN_FLOAT("gamma", "1", 0, DN_NO_LIMIT, "factor per batch"),
    DN_KEYS_END,
};

static void *exp_parse(dn_sched_ctx *c)
{
    gamma_state *s = dn_xcalloc(1, sizeof *s);
    if (get_learning_rate(c, dn_sched_exp_keys, &s->lr) ||
        bi_double(c, dn_sched_exp_keys, "gamma", &s->gamma)) {
        free(s);
        return NULL;
    }
    return s;
}

/* lr * gamma^b */
static double exp_rate(const void *state, const dn_clock *clock)
{
    const gamma_state *s = state;
    return s->lr * pow(s->gamma, (double)clock->batch);
}

const dn_scheduler dn_sched_exp = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "exp",
    exp_parse, exp_rate, free_state,
};

const dn_key dn_sched_sig_keys[] = {
    BI_LEARNING_RATE,
    DN_FLOAT("gamma", "1", -DN_NO_LIMIT, DN_NO_LIMIT,
             "steepness of the logistic drop"),
    DN_INT("step", "1", 0, DN_NO_LIMIT, "batch at the middle of the drop"),
    DN_KEYS_END,
};

static void *sig_parse(dn_sched_ctx *c)
{
    const dn_key *t = dn_sched_sig_keys;
    gamma_state *s = dn_xcalloc(1, sizeof *s);
    if (get_learning_rate(c, t, &s->lr) ||
        bi_double(c, t, "gamma", &s->gamma) ||
        bi_long(c, t, "step", &s->step)) {
        free(s);
        return NULL;
    }
    return s;
}

/* lr / (1 + exp(gamma * (b - step))): a logistic drop centred on step */
static double sig_rate(const void *state, const dn_clock *clock)
{
    const gamma_state *s = state;
    return s->lr / (1.0 + exp(s->gamma * (double)(clock->batch - s->step)));
}

const dn_scheduler dn_sched_sig = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "sigmoid",
    sig_parse, sig_rate, free_state,
};

/* ------------------------------------------------------------------ poly */

typedef struct poly_state {
    double lr, power;
    long max_batches;
} poly_state;

const dn_key dn_sched_poly_keys[] = {
    BI_LEARNING_RATE,
    DN_FLOAT("power", "4", 0, DN_NO_LIMIT, "exponent of the decay"),
    DN_INT("max_batches", "0", 0, DN_NO_LIMIT,
           "the rate reaches 0 here (policy=poly needs it >= 1)"),
    DN_KEYS_END,
};

static void *poly_parse(dn_sched_ctx *c)
{
    const dn_key *t = dn_sched_poly_keys;
    poly_state *s = dn_xcalloc(1, sizeof *s);
    if (get_learning_rate(c, t, &s->lr) ||
        bi_double(c, t, "power", &s->power) ||
        bi_long(c, t, "max_batches", &s->max_batches))
        goto fail;
    if (s->max_batches < 1) {
        c->fail(c, "max_batches", "policy=poly needs max_batches >= 1");
        goto fail;
    }
    return s;
fail:
    free(s);
    return NULL;
}

/* lr * (1 - b/max_batches)^power, and 0 from max_batches on */
static double poly_rate(const void *state, const dn_clock *clock)
{
    const poly_state *s = state;
    if (clock->batch >= s->max_batches)
        return 0.0;
    return s->lr * pow(1.0 - (double)clock->batch / (double)s->max_batches,
                       s->power);
}

const dn_scheduler dn_sched_poly = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "poly",
    poly_parse, poly_rate, free_state,
};

/* ---------------------------------------------------------------- random */

typedef struct random_state {
    double lr, power;
    uint64_t seed;
} random_state;

const dn_key dn_sched_random_keys[] = {
    BI_LEARNING_RATE,
    DN_FLOAT("power", "4", 0, DN_NO_LIMIT, "rate = learning_rate * u^power"),
    DN_INT("seed", "1", 0, DN_NO_LIMIT, "seed of the draws u"),
    DN_KEYS_END,
};

static void *random_parse(dn_sched_ctx *c)
{
    const dn_key *t = dn_sched_random_keys;
    random_state *s = dn_xcalloc(1, sizeof *s);
    long seed;
    if (get_learning_rate(c, t, &s->lr) ||
        bi_double(c, t, "power", &s->power) ||
        bi_long(c, t, "seed", &seed)) {
        free(s);
        return NULL;
    }
    s->seed = (uint64_t)seed;
    return s;
}

/* splitmix64 (Steele, Lea, Flood 2014; Vigna's constants): one step */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The same hash of (seed, a, b) as the host's dn_hash3, kept here because a
 * plugin links nothing from the host. */
static uint64_t hash3(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ a;
    h = splitmix64(&x);
    x = h ^ b;
    return splitmix64(&x);
}

/* Stream tag that keeps these draws apart from other hash3 users of seed. */
#define RANDOM_LR_STREAM 0x6c72u /* "lr" */

/*
 * lr * u^power with u uniform in [0, 1) (Darknet: rand_uniform(0, 1)).
 * u = hash3(seed, RANDOM_LR_STREAM, b) / 2^64 (top 53 bits): the same batch
 * always gets the same rate, so a resumed run and `darknet lr` agree.
 */
static double random_rate(const void *state, const dn_clock *clock)
{
    const random_state *s = state;
    uint64_t h = hash3(s->seed, RANDOM_LR_STREAM, (uint64_t)clock->batch);
    double u = (double)(h >> 11) * 0x1.0p-53;
    return s->lr * pow(u, s->power);
}

const dn_scheduler dn_sched_random = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "random",
    random_parse, random_rate, free_state,
};

/* ------------------------------------------------------------------ sgdr */

typedef struct sgdr_state {
    double lr, lr_min;
    long cycle, mult;
} sgdr_state;

const dn_key dn_sched_sgdr_keys[] = {
    BI_LEARNING_RATE,
    DN_INT("max_batches", "0", 0, DN_NO_LIMIT, "the default of sgdr_cycle"),
    DN_INT("sgdr_cycle", "(max_batches)", 1, DN_NO_LIMIT,
           "batches in the first cycle"),
    DN_INT("sgdr_mult", "2", 1, 1L << 20, "each cycle is this many times longer"),
    DN_FLOAT("learning_rate_min", "0.00001", 0, DN_NO_LIMIT,
             "the rate at the end of each cycle"),
    DN_KEYS_END,
};

static void *sgdr_parse(dn_sched_ctx *c)
{
    const dn_key *t = dn_sched_sgdr_keys;
    sgdr_state *s = dn_xcalloc(1, sizeof *s);
    long max_batches;
    if (get_learning_rate(c, t, &s->lr) ||
        bi_long(c, t, "max_batches", &max_batches) ||
        bi_long_def(c, t, "sgdr_cycle", max_batches, &s->cycle) ||
        bi_long(c, t, "sgdr_mult", &s->mult) ||
        bi_double(c, t, "learning_rate_min", &s->lr_min))
        goto fail;
    if (s->cycle < 1) {
        c->fail(c, "sgdr_cycle", "policy=sgdr needs sgdr_cycle >= 1 "
                "(it defaults to max_batches, which is not set)");
        goto fail;
    }
    return s;
fail:
    free(s);
    return NULL;
}

/*
 * SGDR (Loshchilov and Hutter 2017) in AlexeyAB's Darknet form, in batches:
 * cycles of size sgdr_cycle, sgdr_cycle*mult, ...; the cycle holding b is
 * found by growing the size while start + size < b (so b = start + size is
 * still the old cycle's last point, at learning_rate_min), then
 *   lr_min + (lr - lr_min)/2 * (1 + cos(pi * (b - start) / size)).
 */
static double sgdr_rate(const void *state, const dn_clock *clock)
{
    const sgdr_state *s = state;
    long b = clock->batch, start = 0, size = s->cycle;
    if (s->mult == 1) { /* closed form: the loop would take b/size steps */
        long k = b > 0 ? (b - 1) / size : 0;
        start = k * size;
    } else {
        while (start + size < b) {
            start += size;
            size *= s->mult;
        }
    }
    double x = (double)(b - start) / (double)size;
    return s->lr_min + 0.5 * (s->lr - s->lr_min) * (1.0 + cos(M_PI * x));
}

const dn_scheduler dn_sched_sgdr = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "sgdr",
    sgdr_parse, sgdr_rate, free_state,
};
