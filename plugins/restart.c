/*
 * restart.c - learning rates with warm restarts: cosine_restart (SGDR) and
 * log_restart (cyclical log annealing).
 *
 *   Loshchilov, Hutter, "SGDR: Stochastic Gradient Descent with Warm
 *   Restarts", ICLR 2017.
 *   Naveen, "Cyclical Log Annealing as a Learning Rate Scheduler", 2024
 *   (arXiv:2403.14685): eq. 3 is the cosine cycle, eq. 4 the log cycle.
 *
 * Both share one phase structure in fractional epochs e = clock->epoch (the
 * clock's, never recomputed here):
 *   1. warm-up, e < W: linear from warmup_start_lr to learning_rate;
 *   2. cycle 0 (initial decay) of D epochs, peak learning_rate;
 *   3. restart cycles k = 1, 2, ... of T_k = restart_interval * restart_mult^k
 *      epochs, peak max(min_lr, restart_lr * restart_decay^(k-1)).
 * With D = restart_interval the cycle lengths are I, I*m, I*m^2, ...: the
 * sequence of PyTorch's CosineAnnealingWarmRestarts(T_0 = I, T_mult = m).
 * Every cycle falls to the floor min_lr; only the shape inside differs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"

enum shape { SHAPE_COSINE, SHAPE_LOG_PAPER, SHAPE_LOG_REFERENCE };

typedef struct restart_state {
    enum shape shape;
    double learning_rate;
    double warmup_epochs, warmup_start_lr; /* W, and the rate at e = 0 */
    double init_decay_epochs;              /* D */
    double restart_interval, restart_mult; /* I, m */
    double restart_lr, restart_decay;
    double min_lr;
    double log_base;    /* 0: 1/|hi - lo| of each cycle */
    double max_lr_clip; /* 0: no cap */
} restart_state;

/* One cycle: peak hi, floor lo, length T epochs, tau epochs into it. */
typedef struct cycle {
    double hi, lo, T, tau;
} cycle;

/* ----------------------------------------------------------------- parse */

static int read_phases(dn_sched_ctx *c, restart_state *s)
{
    const double inf = HUGE_VAL;
    if (c->get_double(c, "learning_rate", 0.001, 0, inf, &s->learning_rate) ||
        c->get_double(c, "warmup_epochs", 0, 0, inf, &s->warmup_epochs) ||
        c->get_double(c, "warmup_start_lr", 0, 0, inf, &s->warmup_start_lr) ||
        c->get_double(c, "restart_interval", 10, 0, inf, &s->restart_interval) ||
        c->get_double(c, "init_decay_epochs", s->restart_interval, 0, inf,
                      &s->init_decay_epochs) ||
        c->get_double(c, "restart_mult", 1, 1, inf, &s->restart_mult) ||
        c->get_double(c, "restart_lr", s->learning_rate, 0, inf, &s->restart_lr) ||
        c->get_double(c, "restart_decay", 1, 0, inf, &s->restart_decay) ||
        c->get_double(c, "min_lr", 0, 0, inf, &s->min_lr))
        return -1;
    if (s->restart_interval <= 0)
        return c->fail(c, "restart_interval", "expected a number > 0, got %g",
                       s->restart_interval);
    if (s->min_lr > s->learning_rate)
        return c->fail(c, "min_lr", "min_lr=%g is above learning_rate=%g",
                       s->min_lr, s->learning_rate);
    if (s->min_lr > s->restart_lr)
        return c->fail(c, "min_lr", "min_lr=%g is above restart_lr=%g",
                       s->min_lr, s->restart_lr);
    return 0;
}

/* A log base must be > 0 and != 1 (log_b x = ln x / ln b). The derived base
 * 1/|hi - lo| is checked for the two peaks the cfg names (learning_rate and
 * restart_lr); a later decayed peak that hits exactly 1 is handled at rate
 * time. hi == lo needs no base: the cycle is flat at lo. */
static int check_base(dn_sched_ctx *c, const char *key, double base,
                      const char *what)
{
    if (base > 0 && base != 1)
        return 0;
    return c->fail(c, key, "%s is %g; a log base must be > 0 and != 1%s", what,
                   base, base == 1 && strcmp(key, "log_base")
                             ? " (set log_base= or move min_lr)" : "");
}

static int read_log(dn_sched_ctx *c, restart_state *s)
{
    const char *form;
    if (c->get_string(c, "log_form", "paper", &form))
        return -1;
    if (strcmp(form, "paper") == 0)
        s->shape = SHAPE_LOG_PAPER;
    else if (strcmp(form, "reference") == 0)
        s->shape = SHAPE_LOG_REFERENCE;
    else
        return c->fail(c, "log_form", "unknown value \"%s\"; valid: paper, "
                       "reference", form);
    if (c->get_double(c, "max_lr_clip", 0, 0, HUGE_VAL, &s->max_lr_clip))
        return -1;
    if (s->shape != SHAPE_LOG_PAPER)
        return 0;
    if (c->has(c, "log_base")) {
        if (c->get_double(c, "log_base", 0, -HUGE_VAL, HUGE_VAL, &s->log_base))
            return -1;
        return check_base(c, "log_base", s->log_base, "log_base");
    }
    double d0 = fabs(s->learning_rate - s->min_lr);
    double d1 = fabs(s->restart_lr - s->min_lr);
    if (d0 > 0 && check_base(c, "learning_rate", 1 / d0,
                             "1/|learning_rate - min_lr|"))
        return -1;
    if (d1 > 0 && check_base(c, "restart_lr", 1 / d1, "1/|restart_lr - min_lr|"))
        return -1;
    return 0;
}

static void *parse(dn_sched_ctx *c, enum shape shape)
{
    restart_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->shape = shape;
    if (read_phases(c, s) || (shape != SHAPE_COSINE && read_log(c, s))) {
        free(s);
        return NULL;
    }
    return s;
}

static void *cosine_parse(dn_sched_ctx *c) { return parse(c, SHAPE_COSINE); }
static void *log_parse(dn_sched_ctx *c) { return parse(c, SHAPE_LOG_PAPER); }
static void free_state(void *state) { free(state); }

/* --------------------------------------------------------- cycle lookup */

/* Start of restart cycle j = k - 1 (0-based), in epochs after cycle 0:
 *   S_j = sum_{i=1..j} I m^i = I m (m^j - 1) / (m - 1)   (m > 1),  I j (m = 1).
 * expm1 keeps m^j - 1 accurate for m close to 1. */
static double restart_start(const restart_state *s, double j)
{
    double I = s->restart_interval, m = s->restart_mult;
    if (m == 1)
        return I * j;
    return I * m * expm1(j * log(m)) / (m - 1);
}

/*
 * The restart cycle holding t epochs after cycle 0 ended. A closed-form
 * guess j = floor(log_m(1 + t (m - 1) / (I m))) is corrected in both
 * directions against restart_start(), so the lookup is O(1) for any m and
 * boundaries are decided by one function. eps is a millionth of a batch: a
 * boundary within it of t counts as reached, so an e that lands exactly on a
 * boundary (up to rounding) starts the new cycle.
 */
static void restart_cycle(const restart_state *s, double t, double eps,
                          cycle *out)
{
    double I = s->restart_interval, m = s->restart_mult, j;
    if (m == 1)
        j = floor(t / I);
    else
        j = floor(log1p(t * (m - 1) / (I * m)) / log(m));
    if (!(j >= 0))
        j = 0;
    while (j > 0 && restart_start(s, j) > t + eps)
        j--;
    while (restart_start(s, j + 1) <= t + eps)
        j++;
    double start = restart_start(s, j);
    out->T = I * pow(m, j + 1);
    out->tau = t > start ? t - start : 0;
    out->hi = fmax(s->min_lr, s->restart_lr * pow(s->restart_decay, j));
    out->lo = s->min_lr;
}

/* ---------------------------------------------------------- cycle shapes */

/* Paper eq. 3 (SGDR): lo + (hi - lo)/2 * (1 + cos(pi tau / T)). */
static double cosine_shape(const cycle *c)
{
    return c->lo + 0.5 * (c->hi - c->lo) * (1 + cos(M_PI * c->tau / c->T));
}

/*
 * Paper eq. 4: | lo + (hi - lo)/2 * (1 + log_beta(pi T / tau')) |, with
 * beta = 1/|hi - lo| unless log_base= is set. tau' = max(tau, one batch):
 * at tau = 0 the log is infinite, so the first batch after a restart gets
 * the finite "spike" the paper's restarts are named for. hi == lo: flat.
 */
static double log_paper_shape(const restart_state *s, const cycle *c,
                              double batch_epochs)
{
    if (c->hi == c->lo)
        return c->lo;
    double beta = s->log_base > 0 ? s->log_base : 1 / fabs(c->hi - c->lo);
    double tau = fmax(c->tau, batch_epochs);
    if (beta == 1 || !(tau > 0))
        return c->hi; /* base 1 (a decayed peak) or a clock with no batches */
    double log_beta = log(M_PI * c->T / tau) / log(beta);
    return fabs(c->lo + 0.5 * (c->hi - c->lo) * (1 + log_beta));
}

/*
 * log_form=reference: lo + (hi - lo)/2 * (1 - |ln(max(1, tau)) / ln T|) for
 * T > 1, else lo. Starts at the midpoint, reaches lo at tau = T; flat at the
 * midpoint for the first epoch of a cycle.
 */
static double log_reference_shape(const cycle *c)
{
    if (!(c->T > 1))
        return c->lo;
    double x = fabs(log(fmax(1, c->tau)) / log(c->T));
    return c->lo + 0.5 * (c->hi - c->lo) * (1 - x);
}

/* ------------------------------------------------------------------ rate */

/* The cycle holding e, or NULL during warm-up. */
static const cycle *find_cycle(const restart_state *s, const dn_clock *clock,
                               cycle *c)
{
    double eps = 1e-6 * clock->batch_epochs;
    double t = clock->epoch - s->warmup_epochs, D = s->init_decay_epochs;
    if (t + eps < 0)
        return NULL;
    if (t + eps < D)
        *c = (cycle){s->learning_rate, s->min_lr, D, t > 0 ? t : 0};
    else
        restart_cycle(s, t - D, eps, c);
    return c;
}

static double rate(const void *state, const dn_clock *clock)
{
    const restart_state *s = state;
    cycle storage;
    const cycle *c = find_cycle(s, clock, &storage);
    double lr;
    if (!c) /* warm-up: linear from warmup_start_lr to learning_rate */
        lr = s->warmup_start_lr + (s->learning_rate - s->warmup_start_lr) *
                                      clock->epoch / s->warmup_epochs;
    else if (s->shape == SHAPE_COSINE)
        lr = cosine_shape(c);
    else if (s->shape == SHAPE_LOG_PAPER)
        lr = log_paper_shape(s, c, clock->batch_epochs);
    else
        lr = log_reference_shape(c);
    if (s->max_lr_clip > 0 && lr > s->max_lr_clip)
        lr = s->max_lr_clip;
    return lr;
}

const dn_scheduler dn_sched_cosine_restart = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "cosine_restart",
    cosine_parse, rate, free_state,
};

const dn_scheduler dn_sched_log_restart = {
    DN_SCHED_ABI_VERSION, sizeof(dn_scheduler), "log_restart",
    log_parse, rate, free_state,
};
