/*
 * builtin.h - the schedulers compiled into libdarknet.a.
 *
 * Each file plugins/NAME.c defines a family of them; darknet/src/schedule.c
 * lists them in its one registry table. They implement exactly the ABI of
 * dn_scheduler.h, as an external plugin would, and call nothing in the host.
 */
#ifndef DN_BUILTIN_SCHEDULERS_H
#define DN_BUILTIN_SCHEDULERS_H

#include "dn_scheduler.h"

/* plugins/darknet_policies.c: Darknet's policies plus AlexeyAB's sgdr */
extern const dn_scheduler dn_sched_constant;
extern const dn_scheduler dn_sched_step;
extern const dn_scheduler dn_sched_steps;
extern const dn_scheduler dn_sched_exp;
extern const dn_scheduler dn_sched_poly;
extern const dn_scheduler dn_sched_sig;
extern const dn_scheduler dn_sched_random;
extern const dn_scheduler dn_sched_sgdr;

/* plugins/restart.c: warm restarts (cosine, cyclical log annealing) */
extern const dn_scheduler dn_sched_cosine_restart;
extern const dn_scheduler dn_sched_log_restart;

#endif
