/*
 * restart.c - learning rates with warm restarts: cosine_restart (SGDR) and
 * log_restart (cyclical log annealing).
 *
 *   Loshchilov, Hutter, "SGDR: Stochastic Gradient Descent with Warm
 *   Restarts", ICLR 2017.
 *   Naveen, "Cyclical Log Annealing as a Learning Rate Scheduler", 2024
 *   (arXiv:2403.14685): eq. 3 is the cosine cycle, eq. 4 the log cycle.
 *
 * The paper's scheduler parameters (init decay epochs, min decay lr, restart
 * interval, restart interval multiplier, restart lr, warmup epochs, warmup
 * start lr) are those of CyclicCosineDecayLR (the public PyTorch scheduler
 * abhuse/cyclic-cosine-decay). cosine_restart and log_restart (log_form=
 * paper) follow its phases, in fractional epochs e = clock->epoch (the
 * clock's, never recomputed here), W = warmup_epochs, D = init_decay_epochs:
 *
 *   1. warm-up, e < W: a half cosine from warmup_start_lr (e = 0) up to
 *      learning_rate (e = W); warmup_shape=linear for a straight line;
 *   2. initial decay, W <= e < W + D: one cycle of D epochs, peak
 *      learning_rate;
 *   3. restart cycles of I, I m, I m^2, ... epochs (I = restart_interval,
 *      m = restart_mult), cycle j peaking at restart_lr * restart_decay^j
 *      (restart_decay is ours, default 1); without restart_interval the rate
 *      stays at min_lr after the initial decay.
 *
 * Every cycle has floor lo = min_lr; its shape is eq. 3 or eq. 4. At integer
 * epochs these are exactly the values CyclicCosineDecayLR gives when stepped
 * once per epoch; between them the same formulas run at the fractional epoch.
 *
 * log_form=reference is instead the author's published scheduler
 * (PhilipNaveen/Cyclical-Log-Annealing, implementations/
 * torch_log_annealing.py), bookkeeping included; see log_reference_rate().
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"

enum shape { SHAPE_COSINE, SHAPE_LOG_PAPER, SHAPE_LOG_REFERENCE };
enum warmup { WARMUP_COSINE, WARMUP_LINEAR };

/* Shortest restart interval accepted, in epochs: below it the cycles are
 * shorter than any batch of any real data set, and the cycle count at a
 * large epoch would outgrow a double's integers. */
#define MIN_INTERVAL 1e-6

typedef struct restart_state {
    enum shape shape;
    enum warmup warmup;
    double learning_rate;
    double warmup_epochs, warmup_start_lr; /* W, and the rate at e = 0 */
    double init_decay_epochs;              /* D */
    int restarts;                          /* restart_interval given */
    double restart_interval, restart_mult; /* I, m */
    double restart_lr, restart_decay;
    double min_lr;
    double log_base;      /* 0: 1/|hi - lo| of each cycle */
    double log_tau_floor; /* epochs: eq. 4's tau' = max(tau, this) */
    double max_lr_clip;   /* 0: no cap */
} restart_state;

/* One cycle: peak hi, floor lo, length T epochs, tau epochs into it. */
typedef struct cycle {
    double hi, lo, T, tau;
} cycle;

/* ------------------------------------------------------------------ keys */

static const char *const warmup_shapes[] = {"cosine", "linear", NULL};
static const char *const log_forms[] = {"paper", "reference", NULL};

/* The phases' keys, shared by both schedulers. */
#define RESTART_PHASE_KEYS                                                    \
    BI_LEARNING_RATE,                                                         \
    DN_FLOAT("warmup_epochs", "0", 0, DN_NO_LIMIT, "W: epochs of warm-up"),   \
    DN_FLOAT("warmup_start_lr", "0", 0, DN_NO_LIMIT,                          \
             "the rate at epoch 0 of the warm-up"),                           \
    DN_CHOICE("warmup_shape", "cosine", warmup_shapes,                        \
              "the warm-up's curve: a half cosine or a straight line"),       \
    DN_FLOAT("init_decay_epochs", "(restart_interval)", 0, DN_NO_LIMIT,       \
             "D: epochs of the initial decay (required without "              \
             "restart_interval)"),                                            \
    DN_FLOAT("restart_interval", "10", MIN_INTERVAL, DN_NO_LIMIT,             \
             "I: epochs of the first restart cycle (absent: no restarts)"),   \
    DN_FLOAT("restart_mult", "1", 1, DN_NO_LIMIT,                             \
             "m: each restart cycle is m times longer"),                      \
    DN_FLOAT("restart_lr", "(learning_rate)", 0, DN_NO_LIMIT,                 \
             "the peak of the first restart cycle"),                          \
    DN_FLOAT("restart_decay", "1", 0, DN_NO_LIMIT,                            \
             "factor of each later restart's peak"),                          \
    DN_FLOAT("min_lr", "0", 0, DN_NO_LIMIT, "the floor of every cycle")

const dn_key dn_sched_cosine_restart_keys[] = {RESTART_PHASE_KEYS,
                                               DN_KEYS_END};

const dn_key dn_sched_log_restart_keys[] = {
    RESTART_PHASE_KEYS,
    DN_CHOICE("log_form", "paper", log_forms,
              "eq. 4 of the paper, or the author's published scheduler"),
    DN_FLOAT("max_lr_clip", "0", 0, DN_NO_LIMIT, "a cap on the rate (0: none)"),
    DN_FLOAT("log_tau_floor", "1", MIN_INTERVAL, DN_NO_LIMIT,
             "eq. 4's tau' = max(tau, this), in epochs"),
    DN_FLOAT("log_base", "", -DN_NO_LIMIT, DN_NO_LIMIT,
             "the log's base (absent: 1/|peak - min_lr| of each cycle)"),
    DN_KEYS_END,
};

/* The table of the scheduler being parsed: cosine's keys are a prefix of
 * log's, so reading through log's table serves both. */
#define RK dn_sched_log_restart_keys

/* ----------------------------------------------------------------- parse */

static int read_warmup(dn_sched_ctx *c, restart_state *s)
{
    const char *shape;
    if (s->shape == SHAPE_LOG_REFERENCE) {
        if (c->has(c, "warmup_shape"))
            return c->fail(c, "warmup_shape", "log_form=reference warms up as "
                           "the author's code does, (e + 1) / W of the way, "
                           "once per epoch; remove warmup_shape");
        return 0;
    }
    if (bi_string(c, RK, "warmup_shape", &shape))
        return -1;
    if (strcmp(shape, "cosine") == 0)
        s->warmup = WARMUP_COSINE;
    else if (strcmp(shape, "linear") == 0)
        s->warmup = WARMUP_LINEAR;
    else
        return c->fail(c, "warmup_shape", "unknown value \"%s\"; valid: "
                       "cosine, linear", shape);
    return 0;
}

/* The phases' keys. The author's code has no initial decay and no restart
 * decay, so log_form=reference does not read init_decay_epochs or
 * restart_decay (a cfg that sets them is told they are unused). */
static int read_phases(dn_sched_ctx *c, restart_state *s)
{
    const int reference = s->shape == SHAPE_LOG_REFERENCE;
    s->restarts = c->has(c, "restart_interval");
    if (bi_double(c, RK, "learning_rate", &s->learning_rate) ||
        bi_double(c, RK, "warmup_epochs", &s->warmup_epochs) ||
        bi_double(c, RK, "warmup_start_lr", &s->warmup_start_lr) ||
        bi_double(c, RK, "restart_interval", &s->restart_interval) ||
        bi_double(c, RK, "restart_mult", &s->restart_mult) ||
        bi_double_def(c, RK, "restart_lr", s->learning_rate, &s->restart_lr) ||
        bi_double(c, RK, "min_lr", &s->min_lr) ||
        read_warmup(c, s))
        return -1;
    if (!reference) {
        if (!s->restarts && !c->has(c, "init_decay_epochs"))
            return c->fail(c, "init_decay_epochs", "required: the length of "
                           "the initial decay in epochs (or set "
                           "restart_interval, whose value it then takes)");
        if (bi_double_def(c, RK, "init_decay_epochs", s->restart_interval,
                          &s->init_decay_epochs) ||
            bi_double(c, RK, "restart_decay", &s->restart_decay))
            return -1;
    }
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

static int read_log_paper(dn_sched_ctx *c, restart_state *s)
{
    if (bi_double(c, RK, "log_tau_floor", &s->log_tau_floor))
        return -1;
    if (c->has(c, "log_base")) {
        if (bi_double(c, RK, "log_base", &s->log_base))
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

/* log_form, read before the phases: it decides which keys they read. */
static int read_log_form(dn_sched_ctx *c, restart_state *s)
{
    const char *form;
    if (bi_string(c, RK, "log_form", &form))
        return -1;
    if (strcmp(form, "paper") == 0)
        s->shape = SHAPE_LOG_PAPER;
    else if (strcmp(form, "reference") == 0)
        s->shape = SHAPE_LOG_REFERENCE;
    else
        return c->fail(c, "log_form", "unknown value \"%s\"; valid: paper, "
                       "reference", form);
    return 0;
}

static void *parse(dn_sched_ctx *c, enum shape shape)
{
    restart_state *s = dn_xcalloc(1, sizeof *s);
    s->shape = shape;
    int bad = shape != SHAPE_COSINE && read_log_form(c, s);
    bad = bad || read_phases(c, s);
    if (!bad && s->shape != SHAPE_COSINE)
        bad = bi_double(c, RK, "max_lr_clip", &s->max_lr_clip);
    if (!bad && s->shape == SHAPE_LOG_PAPER)
        bad = read_log_paper(c, s);
    if (bad) {
        free(s);
        return NULL;
    }
    return s;
}

static void *cosine_parse(dn_sched_ctx *c) { return parse(c, SHAPE_COSINE); }
static void *log_parse(dn_sched_ctx *c) { return parse(c, SHAPE_LOG_PAPER); }
static void free_state(void *state) { free(state); }

/* --------------------------------------------------------- cycle lookup */

/* Start of restart cycle j (0-based), in epochs after the initial decay:
 *   S_j = sum_{i<j} I m^i = I (m^j - 1) / (m - 1)   (m > 1),  I j (m = 1).
 * expm1 keeps m^j - 1 accurate for m close to 1. */
static double restart_start(const restart_state *s, double j)
{
    double I = s->restart_interval, m = s->restart_mult;
    if (m == 1)
        return I * j;
    return I * expm1(j * log(m)) / (m - 1);
}

/*
 * The restart cycle holding t epochs after the initial decay ended. The
 * closed form j = floor(log_m(1 + t (m - 1) / I)) (floor(t / I) for m = 1)
 * is corrected against restart_start() in both directions, so boundaries are
 * decided by one function and rounding in the logarithm cannot put an epoch
 * into the wrong cycle. The corrections are bounded: the guess is off by at
 * most one, and past 2^53 cycles (which MIN_INTERVAL keeps out of any real
 * run) j + 1 == j and an unbounded loop would never end. eps is a millionth
 * of a batch: a boundary within it of t counts as reached.
 */
static void restart_cycle(const restart_state *s, double t, double eps,
                          cycle *out)
{
    double I = s->restart_interval, m = s->restart_mult, j;
    if (m == 1)
        j = floor(t / I);
    else
        j = floor(log1p(t * (m - 1) / I) / log(m));
    if (!(j >= 0))
        j = 0;
    for (int k = 0; k < 4 && j > 0 && restart_start(s, j) > t + eps; k++)
        j--;
    for (int k = 0; k < 4 && restart_start(s, j + 1) <= t + eps; k++)
        j++;
    double start = restart_start(s, j);
    out->T = I * pow(m, j);
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
 * beta = 1/|hi - lo| unless log_base= is set, and tau' = max(tau,
 * log_tau_floor): at tau = 0 the log is infinite, so the first
 * log_tau_floor epochs of a cycle (default 1, as the author's max(1, T_cur))
 * hold the finite value at tau' = floor, the restart's spike. The floor is
 * in epochs, so the schedule does not depend on batches per epoch.
 *
 * The cycle never reaches lo: at tau = T it ends at
 *   lo + (hi - lo)/2 * (1 + log_beta(pi)),
 * 0.0750 for hi = 0.1, lo = 0.001 (the paper's experiment 1). That is the
 * formula as printed (the paper speaks of "prolonged high" rates).
 */
static double log_paper_shape(const restart_state *s, const cycle *c)
{
    if (c->hi == c->lo)
        return c->lo;
    double beta = s->log_base > 0 ? s->log_base : 1 / fabs(c->hi - c->lo);
    if (beta == 1)
        return c->hi; /* a decayed peak exactly 1 above lo: no base */
    double tau = fmax(c->tau, s->log_tau_floor);
    double log_beta = log(M_PI * c->T / tau) / log(beta);
    return fabs(c->lo + 0.5 * (c->hi - c->lo) * (1 + log_beta));
}

/* ------------------------------------------------------------------ rate */

/* Warm-up, e < W, from warmup_start_lr to learning_rate. */
static double warmup_rate(const restart_state *s, double e)
{
    double lr = s->learning_rate, start = s->warmup_start_lr;
    double W = s->warmup_epochs;
    if (s->warmup == WARMUP_LINEAR)
        return start + (lr - start) * e / W;
    return lr + (start - lr) * (1 + cos(M_PI * e / W)) / 2;
}

/* The cycle holding e (cosine_restart, log_form=paper): 0 and *c set, or
 * 1 during warm-up, or 2 after the initial decay with no restarts. */
static int find_cycle(const restart_state *s, const dn_clock *clock, cycle *c)
{
    double eps = 1e-6 * clock->batch_epochs;
    double t = clock->epoch - s->warmup_epochs, D = s->init_decay_epochs;
    if (t + eps < 0)
        return 1;
    if (t + eps < D) {
        *c = (cycle){s->learning_rate, s->min_lr, D, t > 0 ? t : 0};
        return 0;
    }
    if (!s->restarts)
        return 2;
    restart_cycle(s, t - D, eps, c);
    return 0;
}

/*
 * log_form=reference, as the author's CyclicalLogAnnealing computes it when
 * stepped once per epoch: n = the epoch index (the rate holds for the whole
 * epoch), W, I, m, lo = min_lr, hi = restart_lr (the author's max_lr):
 *
 *   n < W:  warmup_start_lr + (n + 1)/W * (learning_rate - warmup_start_lr)
 *   else:   interval = I * m^floor(n / I),  T_cur = n mod interval,
 *           lo + (hi - lo)/2 * (1 - | ln(max(1, T_cur)) / ln(interval) |)
 *
 * Oddities kept on purpose (plugins/README.md): the interval grows with the
 * absolute epoch n, not with the restarts, so restarts are not where the
 * cycles of CyclicCosineDecayLR would put them; the rate starts each cycle
 * at the midpoint (hi + lo)/2, never at hi. Where the author's code divides
 * 0 by 0 (interval exactly 1) the rate is the midpoint, its value wherever
 * max(1, T_cur) = 1.
 */
static double log_reference_rate(const restart_state *s, const dn_clock *clock)
{
    double n = floor(clock->epoch + 1e-6 * clock->batch_epochs);
    if (n < s->warmup_epochs)
        return s->warmup_start_lr + (n + 1) / s->warmup_epochs *
                                        (s->learning_rate - s->warmup_start_lr);
    double I = s->restart_interval;
    double interval = I * pow(s->restart_mult, floor(n / I));
    double T_cur = isfinite(interval) ? fmod(n, interval) : n;
    double x = T_cur > 1 ? fabs(log(T_cur) / log(interval)) : 0;
    return s->min_lr + 0.5 * (s->restart_lr - s->min_lr) * (1 - x);
}

static double rate(const void *state, const dn_clock *clock)
{
    const restart_state *s = state;
    cycle c;
    double lr;
    if (s->shape == SHAPE_LOG_REFERENCE) {
        lr = log_reference_rate(s, clock);
    } else {
        switch (find_cycle(s, clock, &c)) {
        case 1:
            lr = warmup_rate(s, clock->epoch);
            break;
        case 2:
            lr = s->min_lr;
            break;
        default:
            lr = s->shape == SHAPE_COSINE ? cosine_shape(&c)
                                          : log_paper_shape(s, &c);
        }
    }
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
