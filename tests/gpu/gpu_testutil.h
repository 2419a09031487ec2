/*
 * gpu_testutil.h - what the GPU tests share: building a CPU network and its
 * twin on GPU 0 from one cfg, identical random inputs and parameters, and
 * comparing tensors with a stated relative bound.
 *
 * The error of a tensor is normwise:
 *     max_i |gpu_i - cpu_i| / max(max_i |cpu_i|, 1e-6)
 * so a bound of 1e-5 means "agrees to about five digits of its largest
 * entry"; summation orders differ between the CPU and the GPU, and a single
 * near-cancelling entry would make an elementwise bound meaningless.
 */
#ifndef GPU_TESTUTIL_H
#define GPU_TESTUTIL_H

#include "testutil.h"

/* 1 and a line on stdout when there is no CUDA device (tests then skip);
 * with DN_REQUIRE_GPU set in the environment it exits 1 instead. */
int gt_no_device(const char *program);
/* Build from cfg text; fails the test with the message if it does not. */
dn_net *gt_build(const char *text, const char *name);
/* Move net to GPU 0, failing the test on error. */
void gt_to_gpu(dn_net *net);
/* Inputs uniform in [-1, 1), parameters N(0, 0.5^2), statistics (saved
 * tensors that are not parameters) uniform in [0.5, 1.5), one-hot truth:
 * a pure function of seed, so two networks of one cfg get the same. */
void gt_randomize(dn_net *net, uint64_t seed);
/* New inputs and truth only (a training step's batch). */
void gt_random_batch(dn_net *net, uint64_t seed);
/* The normwise error of gpu against cpu (n floats). */
double gt_error(const float *cpu, const float *gpu, long n);
/* Print "  what  err  (bound)" and return 1 if err <= bound. */
int gt_check(const char *what, const float *cpu, const float *gpu, long n,
             double bound);

#endif
