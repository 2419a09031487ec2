/*
 * gradcheck.h - finite-difference checks of every layer's backward pass.
 *
 * A case is a complete cfg (a [net] section and the layers under test). The
 * harness builds the network, randomises the input and every parameter
 * (seeded), and defines the scalar loss
 *     L = sum(R .* output)      R a fixed random tensor, or
 *     L = the loss layers' cost when the last layer is a loss layer.
 * It compares the analytic dL/d(input) and dL/d(param) of the backward pass
 * with central differences (L - and + eps, the loss summed in double) on up
 * to `samples` coordinates per tensor. The error of a coordinate is
 *     |analytic - numeric| / max(|analytic|, |numeric|, 1e-3)
 * and the case passes when the largest is <= tol (fp32 forward passes).
 */
#ifndef GRADCHECK_H
#define GRADCHECK_H

typedef struct gc_case {
    const char *name;
    const char *cfg; /* full cfg text */
    int train;       /* forward mode: 1 training, 0 inference */
    double eps;      /* finite-difference step; 0 means 1e-2 */
    double tol;      /* largest error allowed; 0 means 1e-2 */
} gc_case;

/* Runs one case; prints one line per tensor. Returns the largest error, or a
 * negative value if the cfg failed to build (the message is printed). */
double gc_run(const gc_case *c);

/* cmocka-friendly: fails the current test when the case does not pass. */
void gc_assert(const gc_case *c);

#endif
