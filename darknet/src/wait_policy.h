/*
 * wait_policy.h - the OpenMP waiting policy of the programs that train
 * (bin/darknet, bench/train_bench): passive unless the user chose one.
 *
 * OpenMP's threads spin at every barrier by default. Alone on the machine
 * that costs nothing, but when another busy process shares the cores the
 * spinning threads take turns burning each other's time: the small demo
 * ResNet kept 26% of its speed beside one busy process, and 45% with
 * OMP_WAIT_POLICY=passive, which loses nothing alone (make bench measures
 * both, results/bench/bench.md). So passive is the default when the user
 * set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT.
 *
 * A setenv() in main() comes too late: libgomp reads both variables in its
 * library constructor (initialize_env in libgomp's env.c), which runs when
 * the library is loaded, before main; a setenv() from .preinit_array, which
 * runs earlier still, did not reach it either when tried. So the program
 * runs itself again, with the variable set, through /proc/self/exe; the
 * second run finds it set and returns at once. If the exec fails, the
 * program carries on with libgomp's default.
 *
 * Call first thing in main(), before anything that could start threads.
 */
#ifndef DN_WAIT_POLICY_H
#define DN_WAIT_POLICY_H

#include <stdlib.h>
#include <unistd.h>

static inline void dn_default_wait_policy(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    if (setenv("OMP_WAIT_POLICY", "passive", 0) == 0)
        execv("/proc/self/exe", argv);
}

#endif
