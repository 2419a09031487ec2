/*
 * test_schedule.c - darknet/src/schedule.c and the schedulers in plugins/.
 *
 * Rates are checked against closed-form values (tables below, each value
 * worked out from the formula in the comment beside it), against PyTorch's
 * CosineAnnealingWarmRestarts (recomputed here independently), and against
 * Debian's libdarknet get_current_rate() when that library is installed.
 * Tolerances: 1e-12 absolute for double-precision closed forms; 1e-5
 * relative against libdarknet, which computes in float.
 *
 * Run from the repository root: the plugin tests load
 * DN_TEST_PLUGIN_DIR/libdn_sched_linear.so and the broken fixtures
 * DN_TEST_PLUGIN_DIR/libdn_bad_*.so that `make test` builds.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "schedules/tables.h"
#include "testutil.h"

#ifndef DN_TEST_PLUGIN_DIR
#define DN_TEST_PLUGIN_DIR "build/plugins"
#endif

#define TOL 1e-12

/* A schedule from [net] keys; *err gets the message when it fails. */
static dn_schedule *parse_text(const char *keys, dn_cfg **cfg, dn_error *err)
{
    char text[4096];
    snprintf(text, sizeof text, "[net]\n%s", keys);
    dn_schedule *s = NULL;
    assert_int_equal(dn_cfg_parse_string(text, "t.cfg", cfg, err), 0);
    if (dn_schedule_parse(dn_cfg_find(*cfg, "net"), &s, err))
        return NULL;
    return s;
}

static dn_schedule *must_parse(const char *keys, dn_cfg **cfg)
{
    dn_error err = {{0}};
    dn_schedule *s = parse_text(keys, cfg, &err);
    if (!s)
        fail_msg("parse failed: %s\nkeys:\n%s", err.msg, keys);
    return s;
}

/* Rate at batch b with one image per batch: epoch = b / batches_per_epoch. */
static double rate_at(const dn_schedule *s, long b, long batches_per_epoch)
{
    dn_clock c = dn_clock_at((uint64_t)b, 1, batches_per_epoch, 0);
    return dn_schedule_rate(s, &c);
}

static void assert_close(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("%s: got %.17g, want %.17g (|diff| %.3g > %.3g)", what, got,
                 want, fabs(got - want), tol);
}

/* ------------------------------------------------------- closed forms */

/* The paper's Figure 1 settings (cfg/schedules/cosine.cfg, log.cfg). Cycle
 * boundaries in epochs: warm-up ends at 1, the initial decay at 2, then
 * restart cycles of 1, 1.5, 2.25, 3.375 epochs end at 3, 4.5, 6.75, 10.125.
 * With 8 batches per epoch every boundary is a batch: 8, 16, 24, 36, 54, 81. */
#define FIG1 "learning_rate=0.1\nwarmup_epochs=1\nwarmup_start_lr=0.0001\n" \
             "init_decay_epochs=1\nmin_lr=0.001\nrestart_interval=1\n"      \
             "restart_mult=1.5\nrestart_lr=0.05\n"
#define COS "policy=cosine_restart\n" FIG1
#define LOG "policy=log_restart\n" FIG1
/* the author's code has no initial decay: log_form=reference does not read
 * init_decay_epochs */
#define LOGREF "policy=log_restart\nlog_form=reference\nlearning_rate=0.1\n" \
               "warmup_epochs=1\nwarmup_start_lr=0.0001\nmin_lr=0.001\n"    \
               "restart_interval=1\nrestart_mult=1.5\nrestart_lr=0.05\n"
/* initial decay of 2 epochs, no restart_interval */
#define NO_R "policy=cosine_restart\nlearning_rate=0.1\ninit_decay_epochs=2\n" \
             "min_lr=0.002\n"
#define MULT125 "policy=cosine_restart\nlearning_rate=0.1\nrestart_interval=2\n" \
                "restart_mult=1.25\n"
/* Figure 1 without the initial decay (the first occurrence of a key wins,
 * as in Darknet, so this cannot be FIG1 plus init_decay_epochs=0) */
#define NO_D "policy=cosine_restart\nlearning_rate=0.1\nwarmup_epochs=1\n" \
             "warmup_start_lr=0.0001\ninit_decay_epochs=0\nmin_lr=0.001\n"  \
             "restart_interval=1\nrestart_mult=1.5\nrestart_lr=0.05\n"

/* cosine cycle value: lo + (hi-lo)/2 (1 + cos(pi tau/T)) */
#define COSV(hi, lo, tau, T) ((lo) + 0.5 * ((hi) - (lo)) * (1 + cos(M_PI * (tau) / (T))))
/* cosine warm-up: lr + (start - lr) (1 + cos(pi e / W)) / 2 */
#define WUC(lr, start, e, W) ((lr) + ((start) - (lr)) * (1 + cos(M_PI * (e) / (W))) / 2)
/* paper eq. 4 with base 1/(hi-lo) (hi > lo) */
#define LOGV(hi, lo, tau, T) \
    ((lo) + 0.5 * ((hi) - (lo)) * (1 + log(M_PI * (T) / (tau)) / log(1 / ((hi) - (lo)))))

typedef struct rate_case {
    const char *what;
    const char *keys;
    long batches_per_epoch;
    long batch;
    double want;
} rate_case;

static void test_rates_closed_form(void **state)
{
    const rate_case rate_cases[] = {
        /* Darknet's policies; b is the batch */
        {"constant", "learning_rate=0.1\n", 1, 123, 0.1},
        {"default policy is constant", "learning_rate=0.2\n", 1, 5, 0.2},
        {"step before", "policy=step\nlearning_rate=0.1\nstep=3\nscale=0.5\n", 1, 2, 0.1},
        {"step at", "policy=step\nlearning_rate=0.1\nstep=3\nscale=0.5\n", 1, 3, 0.05},
        {"step twice", "policy=step\nlearning_rate=0.1\nstep=3\nscale=0.5\n", 1, 8, 0.025},
        {"steps before", "policy=steps\nlearning_rate=0.1\nsteps=2,5\nscales=.1,.5\n", 1, 1, 0.1},
        {"steps at first", "policy=steps\nlearning_rate=0.1\nsteps=2,5\nscales=.1,.5\n", 1, 2, 0.01},
        {"steps between", "policy=steps\nlearning_rate=0.1\nsteps=2,5\nscales=.1,.5\n", 1, 4, 0.01},
        {"steps at second", "policy=steps\nlearning_rate=0.1\nsteps=2,5\nscales=.1,.5\n", 1, 5, 0.005},
        {"steps negative step (yolov2)", "policy=steps\nlearning_rate=0.1\nsteps=-1,100\nscales=.1,10\n", 1, 0, 0.01},
        {"steps negative step, later", "policy=steps\nlearning_rate=0.1\nsteps=-1,100\nscales=.1,10\n", 1, 100, 0.1},
        {"exp", "policy=exp\nlearning_rate=0.1\ngamma=0.9\n", 1, 3, 0.1 * 0.729},
        {"poly half way", "policy=poly\nlearning_rate=0.1\npower=4\nmax_batches=10\n", 1, 5, 0.1 * 0.0625},
        {"poly at max_batches", "policy=poly\nlearning_rate=0.1\npower=4\nmax_batches=10\n", 1, 10, 0},
        {"poly past max_batches", "policy=poly\nlearning_rate=0.1\npower=4\nmax_batches=10\n", 1, 12, 0},
        {"sigmoid (Darknet's name)", "policy=sigmoid\nlearning_rate=0.1\ngamma=0.9\nstep=3\n", 1, 3, 0.05},
        {"sig at step", "policy=sig\nlearning_rate=0.1\ngamma=0.9\nstep=3\n", 1, 3, 0.05},
        {"sig before step (signed)", "policy=sig\nlearning_rate=0.1\ngamma=0.9\nstep=3\n", 1, 0, 0.1 / (1 + 0.067205512739749756)},
        /* sgdr: cycles [0,10], (10,30], (30,70] with size 10, 20, 40 */
        {"sgdr start", "policy=sgdr\nlearning_rate=0.1\nlearning_rate_min=0.001\nsgdr_cycle=10\n", 1, 0, 0.1},
        {"sgdr middle", "policy=sgdr\nlearning_rate=0.1\nlearning_rate_min=0.001\nsgdr_cycle=10\n", 1, 5, 0.0505},
        {"sgdr end is the old cycle", "policy=sgdr\nlearning_rate=0.1\nlearning_rate_min=0.001\nsgdr_cycle=10\n", 1, 10, 0.001},
        {"sgdr second cycle", "policy=sgdr\nlearning_rate=0.1\nlearning_rate_min=0.001\nsgdr_cycle=10\n", 1, 11, COSV(0.1, 0.001, 1, 20)},
        {"sgdr third cycle", "policy=sgdr\nlearning_rate=0.1\nlearning_rate_min=0.001\nsgdr_cycle=10\n", 1, 31, COSV(0.1, 0.001, 1, 40)},
        {"sgdr mult 1", "policy=sgdr\nlearning_rate=0.1\nlearning_rate_min=0.001\nsgdr_cycle=10\nsgdr_mult=1\n", 1, 25, 0.0505},
        {"sgdr mult 1 boundary", "policy=sgdr\nlearning_rate=0.1\nlearning_rate_min=0.001\nsgdr_cycle=10\nsgdr_mult=1\n", 1, 20, 0.001},
        {"sgdr cycle from max_batches", "policy=sgdr\nlearning_rate=0.1\nlearning_rate_min=0\nmax_batches=100\n", 1, 50, 0.05},
        /* burn_in: lr (b/burn_in)^power on top of any policy */
        {"burn_in power 4", "learning_rate=0.1\nburn_in=100\n", 1, 50, 0.1 * 0.0625},
        {"burn_in power 1", "learning_rate=0.1\nburn_in=100\npower=1\n", 1, 25, 0.025},
        {"burn_in done", "learning_rate=0.1\nburn_in=100\n", 1, 100, 0.1},
        {"burn_in on poly", "policy=poly\nlearning_rate=0.1\nburn_in=10\npower=2\nmax_batches=100\n", 1, 5, 0.025},
        {"poly after burn_in", "policy=poly\nlearning_rate=0.1\nburn_in=10\npower=2\nmax_batches=100\n", 1, 50, 0.025},
        {"burn_in on cosine", COS "burn_in=4\npower=1\n", 8, 2, 0.05},
        /* restart phases, Figure 1 settings, 8 batches per epoch: warm-up
         * [0, 8), initial decay [8, 16), restarts of 1, 1.5, 2.25, 3.375
         * epochs from batches 16, 24, 36, 54, 81 */
        {"warm-up start", COS, 8, 0, 0.0001},
        {"warm-up half", COS, 8, 4, 0.05005},
        {"warm-up is a half cosine", COS, 8, 7, WUC(0.1, 0.0001, 0.875, 1)},
        {"warmup_shape=linear", COS "warmup_shape=linear\n", 8, 7, 0.0001 + 0.0999 * 0.875},
        {"cycle 0 start", COS, 8, 8, 0.1},
        {"cycle 0 middle", COS, 8, 12, 0.0505},
        {"cycle 0 last batch", COS, 8, 15, COSV(0.1, 0.001, 0.875, 1)},
        {"restart 1 start", COS, 8, 16, 0.05},
        {"restart 1 middle", COS, 8, 20, 0.0255},
        {"restart 1 last batch", COS, 8, 23, COSV(0.05, 0.001, 0.875, 1)},
        {"restart 2 start", COS, 8, 24, 0.05},
        {"restart 2 middle", COS, 8, 30, 0.0255},
        {"restart 3 start", COS, 8, 36, 0.05},
        {"restart 3 middle", COS, 8, 45, COSV(0.05, 0.001, 1.125, 2.25)},
        {"restart 4 last batch", COS, 8, 80, COSV(0.05, 0.001, 3.25, 3.375)},
        {"restart 5 start", COS, 8, 81, 0.05},
        {"restart_decay cycle 1", COS "restart_decay=0.5\n", 8, 16, 0.05},
        {"restart_decay cycle 2", COS "restart_decay=0.5\n", 8, 24, 0.025},
        {"restart_decay cycle 3", COS "restart_decay=0.5\n", 8, 36, 0.0125},
        {"decayed peak floors at min_lr", COS "restart_decay=0.001\n", 8, 36, 0.001},
        /* init_decay_epochs=0: restarts of 1, 1.5, 2.25 from batches 8, 16, 28 */
        {"no initial decay", NO_D, 8, 8, 0.05},
        {"no initial decay, restart 2 middle", NO_D, 8, 20, COSV(0.05, 0.001, 0.5, 1.5)},
        {"no initial decay, restart 3", NO_D, 8, 28, 0.05},
        /* no restart_interval: min_lr after the initial decay */
        {"no restarts, decay", NO_R, 4, 6, COSV(0.1, 0.002, 1.5, 2)},
        {"no restarts, then min_lr", NO_R, 4, 8, 0.002},
        {"no restarts, long after", NO_R, 4, 4000, 0.002},
        {"no warm-up", "policy=cosine_restart\nlearning_rate=0.1\nrestart_interval=2\n", 4, 0, 0.1},
        /* restart_mult 1.25, I = D = 2: restarts of 2, 2.5, 3.125, 3.90625,
         * 4.8828125 epochs from epochs 2, 4, 6.5, 9.625, 13.53125 (batch
         * 216.5 at 16 per epoch: off the grid) */
        {"mult 1.25 restart 3 start", MULT125, 16, 104, 0.1},
        {"mult 1.25 restart 2 end", MULT125, 16, 103, COSV(0.1, 0, 2.4375, 2.5)},
        {"mult 1.25 off-grid boundary", MULT125, 16, 217, COSV(0.1, 0, 0.5 / 16, 4.8828125)},
        /* log, paper form: tau' = max(tau, log_tau_floor = 1 epoch) */
        {"log cycle 0 spike", LOG, 8, 8, LOGV(0.1, 0.001, 1, 1)},
        {"log cycle 0 flat for one epoch", LOG, 8, 15, LOGV(0.1, 0.001, 1, 1)},
        {"log_tau_floor=0.125", LOG "log_tau_floor=0.125\n", 8, 12, LOGV(0.1, 0.001, 0.5, 1)},
        {"log restart 1 spike", LOG, 8, 16, LOGV(0.05, 0.001, 1, 1)},
        {"log restart 3 middle", LOG, 8, 45, LOGV(0.05, 0.001, 1.125, 2.25)},
        {"log restart 3 start", LOG, 8, 36, LOGV(0.05, 0.001, 1, 2.25)},
        {"log warm-up is a half cosine", LOG, 8, 7, WUC(0.1, 0.0001, 0.875, 1)},
        {"log_base=10", LOG "log_base=10\nlog_tau_floor=0.125\n", 8, 12, 0.001 + 0.0495 * (1 + log10(2 * M_PI))},
        {"max_lr_clip", LOG "max_lr_clip=0.05\n", 8, 8, 0.05},
        {"max_lr_clip below", LOG "max_lr_clip=0.05\n", 8, 40, LOGV(0.05, 0.001, 1, 2.25)},
        {"log flat when hi == lo", "policy=log_restart\nlearning_rate=0.01\nmin_lr=0.01\nrestart_interval=2\n", 4, 3, 0.01},
        {"log no restarts, then min_lr", "policy=log_restart\nlearning_rate=0.1\nmin_lr=0.002\ninit_decay_epochs=2\n", 4, 9, 0.002},
        /* beta < 1: |hi - lo| > 1, the log changes sign; the result is |...| */
        {"log base below 1", "policy=log_restart\nlearning_rate=3\nrestart_interval=1\n", 4, 2,
         fabs(1.5 * (1 + log(M_PI) / log(1.0 / 3)))},
        /* log, reference form (the author's code, once per epoch n):
         * n < W: ws + (n+1)/W (lr - ws); then interval = I m^floor(n/I),
         * T = n mod interval, lo + (hi-lo)/2 (1 - |ln max(1,T) / ln interval|) */
        {"reference warm-up epoch 0", LOGREF, 8, 0, 0.1},
        {"reference holds for the epoch", LOGREF, 8, 7, 0.1},
        {"reference epoch 1 is the midpoint", LOGREF, 8, 12, 0.0255},
        {"reference epoch 2", LOGREF, 8, 16, 0.001 + 0.0245 * (1 - log(2) / log(2.25))},
        {"reference epoch 3", LOGREF, 8, 31, 0.001 + 0.0245 * (1 - log(3) / log(3.375))},
        {"reference warm-up of 4", "policy=log_restart\nlog_form=reference\nlearning_rate=0.1\nwarmup_epochs=4\nwarmup_start_lr=0.02\n", 1, 1, 0.02 + 0.5 * 0.08},
        {"reference 0/0 is the midpoint", "policy=log_restart\nlog_form=reference\nlearning_rate=0.1\nmin_lr=0.001\nrestart_interval=1\n", 1, 3, 0.0505},
        {"reference interval 10", "policy=log_restart\nlog_form=reference\nlearning_rate=0.1\nmin_lr=0.001\nrestart_interval=10\nrestart_mult=2\n", 1, 25,
         0.001 + 0.0495 * (1 - log(25) / log(40))},
    };

    for (size_t i = 0; i < sizeof rate_cases / sizeof *rate_cases; i++) {
        const rate_case *c = &rate_cases[i];
        dn_cfg *cfg;
        dn_schedule *s = must_parse(c->keys, &cfg);
        char what[160];
        snprintf(what, sizeof what, "%s (batch %ld)", c->what, c->batch);
        assert_close(rate_at(s, c->batch, c->batches_per_epoch), c->want, TOL,
                     what);
        dn_schedule_free(s);
        dn_cfg_free(cfg);
    }
}

/* Inside a cosine cycle the rate never rises; it rises only at the first
 * batch of a restart (390 batches per epoch: epochs 2, 3, 4.5, 6.75 are
 * batches 780, 1170, 1755, 2632.5 -> 2633). */
static void test_cosine_decreases_within_cycles(void **state)
{
    dn_cfg *cfg;
    dn_schedule *s = must_parse(COS, &cfg);
    const long restarts[] = {780, 1170, 1755, 2633};
    double prev = rate_at(s, 390, 390);
    for (long b = 391, r = 0; b <= 3900; b++) {
        double lr = rate_at(s, b, 390);
        if (r < 4 && b == restarts[r]) {
            assert_true(lr > prev);
            r++;
        } else if (lr > prev) {
            fail_msg("rate rises inside a cycle at batch %ld: %.17g -> %.17g",
                     b, prev, lr);
        }
        prev = lr;
    }
    dn_schedule_free(s);
    dn_cfg_free(cfg);
}

/*
 * PyTorch's CosineAnnealingWarmRestarts(T_0, T_mult, eta_min) stepped with a
 * fractional epoch e: cycles of T_0, T_0 T_mult, T_0 T_mult^2, ... epochs;
 * T_cur = e - (start of the cycle holding e), T_i = its length, and
 *   lr = eta_min + (base_lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2,
 * a new cycle starting when e reaches its start. Recomputed here in whole
 * batches (every boundary T_0 bpe (T_mult^n - 1)/(T_mult - 1) is a whole
 * batch for integer T_0 and T_mult), so boundaries are exact. Our side, with
 * CyclicCosineDecayLR's phases: warmup_epochs=0, init_decay_epochs = T_0,
 * restart_interval = T_0 T_mult, restart_mult = T_mult, restart_lr =
 * learning_rate, min_lr = eta_min.
 */
static double pytorch_reference(long b, long bpe, long T_0, long T_mult,
                                double base_lr, double eta_min)
{
    long start = 0, len = T_0 * bpe;
    while (b >= start + len) {
        start += len;
        len *= T_mult;
    }
    double T_cur = (double)(b - start) / bpe, T_i = (double)len / bpe;
    return eta_min + (base_lr - eta_min) * (1 + cos(M_PI * T_cur / T_i)) / 2;
}

static void test_cosine_matches_pytorch(void **state)
{
    const long T0s[] = {1, 2, 3}, mults[] = {1, 2, 3}, bpes[] = {1, 7, 10};
    const double mins[] = {0, 0.001};
    for (int a = 0; a < 3; a++)
        for (int m = 0; m < 3; m++)
            for (int p = 0; p < 3; p++)
                for (int z = 0; z < 2; z++) {
                    char keys[512];
                    snprintf(keys, sizeof keys, "policy=cosine_restart\n"
                             "learning_rate=0.1\ninit_decay_epochs=%ld\n"
                             "restart_interval=%ld\nrestart_mult=%ld\n"
                             "min_lr=%g\n", T0s[a], T0s[a] * mults[m],
                             mults[m], mins[z]);
                    dn_cfg *cfg;
                    dn_schedule *s = must_parse(keys, &cfg);
                    for (long b = 0; b <= 40 * bpes[p]; b++) {
                        double want = pytorch_reference(b, bpes[p], T0s[a],
                                                        mults[m], 0.1, mins[z]);
                        char what[600];
                        snprintf(what, sizeof what, "%sbatch %ld of %ld/epoch",
                                 keys, b, bpes[p]);
                        assert_close(rate_at(s, b, bpes[p]), want, TOL, what);
                    }
                    dn_schedule_free(s);
                    dn_cfg_free(cfg);
                }
}

/*
 * The warm-restart schedulers at integer epochs against tables computed
 * independently (tests/schedules/gen_tables.py: CyclicCosineDecayLR's
 * phases with eq. 3 or eq. 4 inside, and the author's CyclicalLogAnnealing),
 * for the paper's experiment 1, its Figure 1 and fixed intervals, at three
 * batch counts per epoch. Tolerance 1e-6 relative.
 */
static void test_restart_tables(void **state)
{
    const long bpes[] = {1, 7, 390};
    for (size_t i = 0; i < sizeof sched_tables / sizeof *sched_tables; i++) {
        const sched_table *t = &sched_tables[i];
        dn_cfg *cfg;
        dn_schedule *s = must_parse(t->keys, &cfg);
        for (int p = 0; p < 3; p++)
            for (int e = 0; e <= t->epochs; e++) {
                char what[160];
                snprintf(what, sizeof what, "%s, epoch %d, %ld batches/epoch",
                         t->what, e, bpes[p]);
                assert_close(rate_at(s, e * bpes[p], bpes[p]), t->rate[e],
                             1e-6 * fabs(t->rate[e]), what);
            }
        dn_schedule_free(s);
        dn_cfg_free(cfg);
    }
}

/* Eq. 4's tau' is floored in epochs, not batches: the paper form's highest
 * rate over 60 epochs (the spike after each restart) and its values at
 * every epoch are the same at 1, 10, 390 and 1562 batches per epoch. */
static void test_log_paper_independent_of_batches(void **state)
{
    const long bpes[] = {1, 10, 390, 1562};
    double hi[4], ep_hi[4], ep_lo[4];
    dn_cfg *cfg;
    dn_schedule *s = must_parse(sched_tables[1].keys, &cfg);
    assert_non_null(strstr(sched_tables[1].what, "exp1, log paper"));
    for (int p = 0; p < 4; p++) {
        hi[p] = ep_hi[p] = 0, ep_lo[p] = HUGE_VAL;
        for (long b = 0; b <= 60 * bpes[p]; b++) {
            double lr = rate_at(s, b, bpes[p]);
            hi[p] = fmax(hi[p], lr);
            if (b % bpes[p] == 0) {
                ep_hi[p] = fmax(ep_hi[p], lr);
                ep_lo[p] = fmin(ep_lo[p], lr);
            }
        }
    }
    for (int p = 1; p < 4; p++) {
        assert_close(hi[p], hi[0], 1e-12, "highest rate");
        assert_close(ep_hi[p], ep_hi[0], 1e-12, "highest rate at epochs");
        assert_close(ep_lo[p], ep_lo[0], 1e-12, "lowest rate at epochs");
    }
    /* the highest spike: the restart at epoch 45 (cycles of 10, 20, 40
     * epochs from epochs 15, 25, 45), tau' = 1 epoch, T = 40 */
    assert_close(hi[0], LOGV(0.1, 0.001, 1, 40), 1e-12, "spike value");
    dn_schedule_free(s);
    dn_cfg_free(cfg);
}

/* random: a pure function of (seed, batch), lr * u^power with u taken from
 * the same hash as the host's dn_hash3(seed, 0x6c72, batch). */
static void test_random_is_pure(void **state)
{
    dn_cfg *cfg, *cfg2;
    dn_schedule *s = must_parse("policy=random\nlearning_rate=0.1\npower=2\n"
                                "seed=7\n", &cfg);
    dn_schedule *t = must_parse("policy=random\nlearning_rate=0.1\npower=2\n"
                                "seed=8\n", &cfg2);
    int differ = 0;
    for (long b = 0; b < 200; b++) {
        double u = (double)(dn_hash3(7, 0x6c72, (uint64_t)b) >> 11) * 0x1.0p-53;
        double lr = rate_at(s, b, 1);
        assert_close(lr, 0.1 * u * u, TOL, "random vs dn_hash3");
        assert_true(lr >= 0 && lr < 0.1);
        assert_true(lr == rate_at(s, b, 1));
        differ += lr != rate_at(t, b, 1);
    }
    assert_true(differ > 190);
    dn_schedule_free(s);
    dn_schedule_free(t);
    dn_cfg_free(cfg);
    dn_cfg_free(cfg2);
}

/* --------------------------------------------- Debian's libdarknet */

/*
 * The leading fields of Debian's `network` struct (package darknet
 * 0.0.0+git20180914, its include/darknet.h), through burn_in: all that
 * get_current_rate() reads. rest[] stands in for the remaining fields.
 */
typedef struct darknet_network {
    int n, batch;
    size_t *seen;
    int *t;
    float epoch;
    int subdivisions;
    void *layers;
    float *output;
    int policy; /* CONSTANT, STEP, EXP, POLY, STEPS, SIG, RANDOM */
    float learning_rate, momentum, decay, gamma, scale, power;
    int time_steps, step, max_batches;
    float *scales;
    int *steps;
    int num_steps, burn_in;
    char rest[4096];
} darknet_network;

enum { DK_CONSTANT, DK_STEP, DK_EXP, DK_POLY, DK_STEPS, DK_SIG };

typedef struct darknet_case {
    int policy;
    const char *keys;
    int burn_in;
    long first, last; /* batches compared */
} darknet_case;

/* One parameter set for every policy; ours reads the keys of its policy. */
#define DK_KEYS "learning_rate=0.1\ngamma=0.9\nscale=0.5\nstep=3\npower=4\n" \
                "max_batches=10\nsteps=2,5\nscales=.1,.5\n"

static const darknet_case darknet_cases[] = {
    {DK_CONSTANT, "policy=constant\n" DK_KEYS, 0, 0, 12},
    {DK_STEP, "policy=step\n" DK_KEYS, 0, 0, 12},
    {DK_EXP, "policy=exp\n" DK_KEYS, 0, 0, 12},
    {DK_POLY, "policy=poly\n" DK_KEYS, 0, 0, 10},
    {DK_STEPS, "policy=steps\n" DK_KEYS, 0, 0, 12},
    /* Darknet's sig is 0 before step (unsigned b - step): compare from step */
    {DK_SIG, "policy=sig\n" DK_KEYS, 0, 3, 12},
    {DK_SIG, "policy=sigmoid\n" DK_KEYS, 0, 3, 12},
    {DK_CONSTANT, "policy=constant\nburn_in=4\n" DK_KEYS, 4, 0, 8},
    {DK_STEPS, "policy=steps\nburn_in=3\n" DK_KEYS, 3, 0, 8},
};
#define N_DK_CASES (sizeof darknet_cases / sizeof *darknet_cases)
#define DK_MAX_BATCHES 13

/* In a child process (libdarknet pulls in OpenCV and more; a crash there
 * must not take the test down): every case's rates, written to fd. */
static void darknet_child(int fd)
{
    const char *lib = getenv("DN_LIBDARKNET");
    void *h = dlopen(lib ? lib : "/usr/lib/darknet/libdarknet.so",
                     RTLD_NOW | RTLD_LOCAL);
    float (*get_current_rate)(darknet_network *) =
        h ? (float (*)(darknet_network *))dlsym(h, "get_current_rate") : NULL;
    if (!get_current_rate)
        _exit(77);
    static float out[N_DK_CASES][DK_MAX_BATCHES];
    int steps[] = {2, 5};
    float scales[] = {0.1f, 0.5f};
    for (size_t i = 0; i < N_DK_CASES; i++)
        for (long b = 0; b < DK_MAX_BATCHES; b++) {
            size_t seen = (size_t)b;
            darknet_network net;
            memset(&net, 0, sizeof net);
            net.batch = net.subdivisions = 1;
            net.seen = &seen;
            net.policy = darknet_cases[i].policy;
            net.learning_rate = 0.1f, net.gamma = 0.9f, net.scale = 0.5f;
            net.power = 4, net.step = 3, net.max_batches = 10;
            net.steps = steps, net.scales = scales, net.num_steps = 2;
            net.burn_in = darknet_cases[i].burn_in;
            out[i][b] = get_current_rate(&net);
        }
    _exit(write(fd, out, sizeof out) == (ssize_t)sizeof out ? 0 : 1);
}

static void test_darknet_policies_match_libdarknet(void **state)
{
    static float ref[N_DK_CASES][DK_MAX_BATCHES];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        darknet_child(fds[1]);
    }
    close(fds[1]);
    ssize_t got = 0, r;
    while ((r = read(fds[0], (char *)ref + got, sizeof ref - got)) > 0)
        got += r;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != sizeof ref) {
        fprintf(stderr, "[  SKIPPED ] Debian's libdarknet.so (package darknet) "
                        "is not usable here\n");
        skip();
    }
    /* the struct mirror matches if the constant policy reads learning_rate */
    if (fabs(ref[0][5] - 0.1f) > 1e-7) {
        fprintf(stderr, "[  SKIPPED ] libdarknet's network layout differs\n");
        skip();
    }
    for (size_t i = 0; i < N_DK_CASES; i++) {
        const darknet_case *c = &darknet_cases[i];
        dn_cfg *cfg;
        dn_schedule *s = must_parse(c->keys, &cfg);
        for (long b = c->first; b <= c->last; b++) {
            char what[400];
            snprintf(what, sizeof what, "libdarknet %s batch %ld", c->keys, b);
            assert_close(rate_at(s, b, 1), ref[i][b],
                         1e-5 * fabs(ref[i][b]) + 1e-9, what);
        }
        dn_schedule_free(s);
        dn_cfg_free(cfg);
    }
}

/* ---------------------------------------------------------------- errors */

/* log_restart with its required lengths, on lines 2 and 3 */
#define LOG_I "policy=log_restart\nrestart_interval=10\n"

typedef struct error_case {
    const char *keys;  /* after "[net]\n" on line 1 */
    const char *where; /* ":LINE: [net] KEY" */
    const char *what;
} error_case;

static const error_case error_cases[] = {
    {"policy=cosin\n", ":2: [net] policy", "unknown policy \"cosin\"; valid: "
     "constant, step, steps, exp, poly, sigmoid, random, sgdr, cosine_restart, "
     "log_restart"},
    {"policy=cosin\n", ":2: [net] policy", "plugin (with plugin=PATH)"},
    {"learning_rate=-1\n", ":2: [net] learning_rate", "expected a number >= 0, got \"-1\""},
    {"learning_rate=0.1x\n", ":2: [net] learning_rate", "got \"0.1x\""},
    {"burn_in=77foo\n", ":2: [net] burn_in", "expected an integer >= 0, got \"77foo\""},
    {"power=-1\n", ":2: [net] power", "expected a number >= 0"},
    {LOG_I "log_base=1\n", ":4: [net] log_base", "log_base is 1; a log base must be > 0 and != 1"},
    {LOG_I "log_base=0\n", ":4: [net] log_base", "log_base is 0; a log base must be > 0"},
    {LOG_I "log_base=-2\n", ":4: [net] log_base", "must be > 0"},
    {LOG_I "learning_rate=1.5\nmin_lr=0.5\n", ":4: [net] learning_rate",
     "1/|learning_rate - min_lr| is 1; a log base must be > 0 and != 1 (set log_base= or move min_lr)"},
    {LOG_I "learning_rate=2\nrestart_lr=1.25\nmin_lr=0.25\n",
     ":5: [net] restart_lr", "1/|restart_lr - min_lr| is 1"},
    {"policy=log_restart\nlog_form=bogus\n", ":3: [net] log_form",
     "unknown value \"bogus\"; valid: paper, reference"},
    {LOG_I "log_tau_floor=0\n", ":4: [net] log_tau_floor", "expected a number >= 1e-06"},
    {"policy=cosine_restart\nrestart_interval=0\n", ":3: [net] restart_interval",
     "expected a number >= 1e-06"},
    /* a cycle lookup of 1e20 cycles once looped for ever */
    {"policy=cosine_restart\nrestart_interval=1e-20\nrestart_mult=1\n",
     ":3: [net] restart_interval", "expected a number >= 1e-06"},
    {"policy=cosine_restart\nrestart_mult=0.5\nrestart_interval=1\n", ":3: [net] restart_mult",
     "expected a number >= 1"},
    {"policy=cosine_restart\n", ":1: [net] init_decay_epochs",
     "required: the length of the initial decay in epochs"},
    {"policy=log_restart\nlearning_rate=0.1\n", ":1: [net] init_decay_epochs", "required"},
    {"policy=cosine_restart\nrestart_interval=1\nwarmup_shape=sine\n", ":4: [net] warmup_shape",
     "unknown value \"sine\"; valid: cosine, linear"},
    {"policy=log_restart\nlog_form=reference\nwarmup_shape=linear\n", ":4: [net] warmup_shape",
     "log_form=reference warms up as the author's code does"},
    {"policy=cosine_restart\nrestart_interval=1\nlearning_rate=0.1\nmin_lr=0.2\n", ":5: [net] min_lr",
     "above learning_rate"},
    {"policy=cosine_restart\nrestart_interval=1\nrestart_lr=0.0001\nmin_lr=0.0002\n", ":5: [net] min_lr",
     "above restart_lr"},
    {"policy=steps\nsteps=10,20\n", ":1: [net] scales", "needs both steps= and scales="},
    {"policy=steps\nsteps=10,20\nscales=.1\n", ":4: [net] scales",
     "expected 2 values (one per step), got 1"},
    {"policy=steps\nsteps=20,10\nscales=.1,.1\n", ":3: [net] steps", "must not decrease"},
    {"policy=steps\nsteps=2.5\nscales=.1\n", ":3: [net] steps", "not a whole number"},
    {"policy=steps\nsteps=1,x\nscales=.1,.1\n", ":3: [net] steps", "got \"x\" in \"1,x\""},
    {"policy=poly\n", ":1: [net] max_batches", "needs max_batches >= 1"},
    {"policy=sgdr\n", ":1: [net] sgdr_cycle", "needs sgdr_cycle >= 1"},
    {"policy=step\nstep=0\n", ":3: [net] step", "expected an integer >= 1"},
    {"policy=plugin\n", ":2: [net] policy", "policy=plugin needs plugin=PATH"},
    {"policy=plugin\nplugin=no_such_plugin\n", ":3: [net] plugin",
     "no plugin \"no_such_plugin\" found; tried "},
    {"policy=plugin\nplugin=./no/such.so\n", ":3: [net] plugin",
     "plugin ./no/such.so: open: "},
};

/* Each case from a string and from a file: the message names the file and
 * line, section and key, and no schedule comes back. */
static void test_parse_errors(void **state)
{
    for (size_t i = 0; i < sizeof error_cases / sizeof *error_cases; i++) {
        const error_case *c = &error_cases[i];
        char text[1024], want[256];
        snprintf(text, sizeof text, "[net]\n%s", c->keys);
        for (int from_file = 0; from_file < 2; from_file++) {
            dn_cfg *cfg;
            dn_error err = {{0}};
            const char *path = from_file ? tu_write_file("bad.cfg", text) : "t.cfg";
            if (from_file)
                assert_int_equal(dn_cfg_load(path, &cfg, &err), 0);
            else
                assert_int_equal(dn_cfg_parse_string(text, path, &cfg, &err), 0);
            dn_schedule *s = (dn_schedule *)&err; /* must be reset to NULL */
            assert_int_equal(dn_schedule_parse(dn_cfg_find(cfg, "net"), &s, &err), -1);
            assert_null(s);
            snprintf(want, sizeof want, "%s%s", path, c->where);
            assert_contains(err.msg, want);
            assert_contains(err.msg, c->what);
            dn_cfg_free(cfg);
        }
    }
}

/* ------------------------------------------------------------ plugins */

static const char *plugin_path(const char *file)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", DN_TEST_PLUGIN_DIR, file);
    return p;
}

static void require_plugin(const char *file)
{
    if (access(plugin_path(file), R_OK) != 0)
        fail_msg("%s is missing: build it with `make plugins` or `make test` "
                 "and run the tests from the repository root",
                 plugin_path(file));
}

static void test_external_linear_by_path(void **state)
{
    require_plugin("libdn_sched_linear.so");
    char keys[1024];
    snprintf(keys, sizeof keys, "policy=plugin\nplugin=%s\nlearning_rate=0.1\n"
             "min_lr=0.01\nmax_batches=100\n", plugin_path("libdn_sched_linear.so"));
    dn_cfg *cfg;
    dn_schedule *s = must_parse(keys, &cfg);
    assert_string_equal(dn_schedule_policy(s), "linear");
    assert_non_null(dn_scheduler_find("linear"));
    assert_contains(dn_scheduler_names(), "linear");
    assert_close(rate_at(s, 0, 10), 0.1, TOL, "linear start");
    assert_close(rate_at(s, 50, 10), 0.055, TOL, "linear half way");
    assert_close(rate_at(s, 200, 10), 0.01, TOL, "linear after max_batches");
    /* a second parse loads the same library again: same registration */
    dn_cfg *cfg2;
    dn_schedule *t = must_parse(keys, &cfg2);
    assert_ptr_equal(dn_scheduler_find("linear"), dn_scheduler_find("linear"));
    dn_schedule_free(t);
    dn_cfg_free(cfg2);
    dn_schedule_free(s);
    dn_cfg_free(cfg);
}

/* A bare name is looked up in $DN_PLUGIN_PATH as libdn_sched_NAME.so. */
static void test_external_linear_by_name(void **state)
{
    require_plugin("libdn_sched_linear.so");
    setenv("DN_PLUGIN_PATH", "/nonexistent:" DN_TEST_PLUGIN_DIR, 1);
    dn_cfg *cfg;
    dn_schedule *s = must_parse("policy=plugin\nplugin=linear\nlearning_rate=0.1\n"
                                "min_lr=0\nlinear_epochs=2\n", &cfg);
    unsetenv("DN_PLUGIN_PATH");
    assert_string_equal(dn_schedule_policy(s), "linear");
    assert_close(rate_at(s, 10, 10), 0.05, TOL, "linear_epochs half way");
    assert_close(rate_at(s, 30, 10), 0, TOL, "linear_epochs after");
    dn_schedule_free(s);
    dn_cfg_free(cfg);
}

/* The same name from a different file is a duplicate. */
static void test_duplicate_plugin_name_rejected(void **state)
{
    require_plugin("libdn_sched_linear.so");
    const dn_scheduler *first;
    dn_error err = {{0}};
    assert_int_equal(dn_scheduler_load(plugin_path("libdn_sched_linear.so"),
                                       &first, &err), 0);
    char copy[600];
    snprintf(copy, sizeof copy, "%s/copy_of_linear.so", tu_tmpdir());
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", plugin_path("libdn_sched_linear.so"),
             copy);
    assert_int_equal(system(cmd), 0);
    const dn_scheduler *out = first;
    assert_int_equal(dn_scheduler_load(copy, &out, &err), -1);
    assert_null(out);
    assert_contains(err.msg, copy);
    assert_contains(err.msg, "register: a scheduler named \"linear\" is already "
                             "registered");
    assert_ptr_equal(dn_scheduler_find("linear"), first);
}

typedef struct bad_plugin_case {
    const char *file;
    const char *stage; /* "STAGE: detail" */
    const char *detail;
} bad_plugin_case;

static const bad_plugin_case bad_plugin_cases[] = {
    {"libdn_bad_abi.so", "abi: version 1001", "speaks version 1"},
    {"libdn_bad_size.so", "abi: struct_size", "smaller than dn_scheduler"},
    {"libdn_bad_noentry.so", "entry: no symbol dn_scheduler_entry", "undefined symbol"},
    {"libdn_bad_nullentry.so", "entry: dn_scheduler_entry() returned NULL", ""},
    {"libdn_bad_norate.so", "check: scheduler \"bad_fixture\" lacks rate()", ""},
    {"libdn_bad_nofree.so", "check: scheduler \"bad_fixture\" lacks free()", ""},
    /* fuzzed: these four crashed the host (SEGV reading or calling them) */
    {"libdn_bad_dataentry.so", "entry: dn_scheduler_entry is not a function",
     "const dn_scheduler *dn_scheduler_entry(void)"},
    {"libdn_bad_badptr.so", "entry: dn_scheduler_entry() returned 0x1000, "
     "which is not readable memory", ""},
    {"libdn_bad_badnameptr.so", "check: the scheduler's name is not a readable "
     "string", ""},
    {"libdn_bad_datarate.so", "check: scheduler \"bad_fixture\": rate is ",
     "not an address in code"},
    {"libdn_bad_badname.so", "check: invalid scheduler name \"no spaces\"", ""},
    {"libdn_bad_dupname.so", "register: a scheduler named \"constant\"",
     "already registered (built in)"},
    {"libdn_bad_missing.so", "open: ", "cannot open shared object file"},
};

static void test_bad_plugins_rejected_by_stage(void **state)
{
    for (size_t i = 0; i < sizeof bad_plugin_cases / sizeof *bad_plugin_cases; i++) {
        const bad_plugin_case *c = &bad_plugin_cases[i];
        if (strcmp(c->file, "libdn_bad_missing.so"))
            require_plugin(c->file);
        const char *path = plugin_path(c->file);
        const dn_scheduler *out = dn_scheduler_find("constant"); /* reset? */
        dn_error err = {{0}};
        assert_int_equal(dn_scheduler_load(path, &out, &err), -1);
        assert_null(out);
        char want[700];
        snprintf(want, sizeof want, "plugin %s: %s", path, c->stage);
        assert_contains(err.msg, want);
        assert_contains(err.msg, c->detail);
        assert_null(dn_scheduler_find("bad_fixture"));
        assert_null(dn_scheduler_find("no spaces"));
    }
}

/* Through a cfg, a plugin error also names the cfg line. */
static void test_bad_plugin_error_names_cfg_line(void **state)
{
    require_plugin("libdn_bad_abi.so");
    char keys[1024];
    snprintf(keys, sizeof keys, "learning_rate=0.1\npolicy=plugin\nplugin=%s\n",
             plugin_path("libdn_bad_abi.so"));
    dn_cfg *cfg;
    dn_error err = {{0}};
    assert_null(parse_text(keys, &cfg, &err));
    assert_contains(err.msg, "t.cfg:4: [net] plugin: plugin ");
    assert_contains(err.msg, "abi: version 1001");
    dn_cfg_free(cfg);
}

static void test_names_list_builtins(void **state)
{
    const char *names = dn_scheduler_names();
    const char *want[] = {"constant", "step", "steps", "exp", "poly", "sigmoid",
                          "random", "sgdr", "cosine_restart", "log_restart"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_contains(names, want[i]);
        const dn_scheduler *s = dn_scheduler_find(want[i]);
        assert_non_null(s);
        assert_string_equal(s->name, want[i]);
        assert_int_equal(s->abi_version, DN_SCHED_ABI_VERSION);
    }
    assert_null(dn_scheduler_find("cosine"));
    /* sig: this framework's first name for Darknet's sigmoid, kept */
    assert_ptr_equal(dn_scheduler_find("sig"), dn_scheduler_find("sigmoid"));
    assert_null(strstr(names, "sig,"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates_closed_form),
        cmocka_unit_test(test_cosine_decreases_within_cycles),
        cmocka_unit_test(test_cosine_matches_pytorch),
        cmocka_unit_test(test_restart_tables),
        cmocka_unit_test(test_log_paper_independent_of_batches),
        cmocka_unit_test(test_random_is_pure),
        cmocka_unit_test(test_darknet_policies_match_libdarknet),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_names_list_builtins),
        cmocka_unit_test(test_external_linear_by_path),
        cmocka_unit_test(test_external_linear_by_name),
        cmocka_unit_test(test_duplicate_plugin_name_rejected),
        cmocka_unit_test(test_bad_plugins_rejected_by_stage),
        cmocka_unit_test(test_bad_plugin_error_names_cfg_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
