/*
 * activations.c - element-wise activation functions and their derivatives.
 * Definitions follow the papers (and PyTorch):
 *   leaky: x > 0 ? x : 0.1x (Darknet's slope)
 *   elu:   x > 0 ? x : e^x - 1                     (Clevert et al. 2015)
 *   selu:  lambda * (x > 0 ? x : alpha (e^x - 1)), lambda = 1.0507009873554805,
 *          alpha = 1.6732632423543772               (Klambauer et al. 2017)
 *   mish:  x tanh(softplus(x))                      (Misra 2019)
 *   swish: x sigmoid(x)                             (Ramachandran et al. 2017)
 *   gelu:  x Phi(x), the exact erf form             (Hendrycks and Gimpel 2016)
 */
#include <math.h>
#include <string.h>

#include "activation_math.h"
#include "layer_util.h"

const char *const dn_activation_names[DN_N_ACTIVATIONS + 1] = {
    "linear", "relu", "leaky", "logistic", "tanh", "elu", "selu",
    "mish",   "swish", "gelu", NULL};

int dn_parse_activation(dn_section *s, const dn_key *table,
                        dn_activation *out, dn_error *err)
{
    int i;
    if (dn_key_choice(s, table, "activation", &i, err))
        return -1;
    *out = (dn_activation)i;
    return 0;
}

const char *dn_activation_name(dn_activation a) { return dn_activation_names[a]; }

int dn_activation_needs_input(dn_activation a)
{
    return a == DN_MISH || a == DN_SWISH || a == DN_GELU;
}

/*
 * The element loops: one loop per activation for the common ones, so the
 * switch is decided once per range and the loop vectorises; the rest share
 * a generic loop.
 */
static void forward_range(float *x, long n, dn_activation a)
{
    switch (a) {
    case DN_RELU:
        for (long i = 0; i < n; i++)
            x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case DN_LEAKY:
        for (long i = 0; i < n; i++)
            x[i] = x[i] > 0 ? x[i] : 0.1f * x[i];
        break;
    default:
        for (long i = 0; i < n; i++)
            x[i] = dn_act(x[i], a);
    }
}

static void backward_range(const float *x, const float *y, float *delta,
                           long n, dn_activation a)
{
    switch (a) {
    case DN_RELU:
        for (long i = 0; i < n; i++)
            delta[i] = y[i] > 0 ? delta[i] : 0;
        break;
    case DN_LEAKY:
        for (long i = 0; i < n; i++)
            delta[i] *= y[i] > 0 ? 1.0f : 0.1f;
        break;
    case DN_LOGISTIC:
        for (long i = 0; i < n; i++)
            delta[i] *= y[i] * (1 - y[i]);
        break;
    default:
        for (long i = 0; i < n; i++)
            delta[i] *= dn_act_grad(x ? x[i] : 0, y[i], a);
    }
}

void dn_activate_serial(float *x, long n, dn_activation a)
{
    if (a != DN_LINEAR)
        forward_range(x, n, a);
}

void dn_activate_backward_serial(const float *x, const float *y, float *delta,
                                 long n, dn_activation a)
{
    if (a != DN_LINEAR)
        backward_range(x, y, delta, n, a);
}

/* ranges of this many elements go to the OpenMP threads */
#define RANGE DN_ACTIVATE_RANGE

void dn_activate(float *x, long n, dn_activation a)
{
    if (a == DN_LINEAR)
        return;
    const long ranges = (n + RANGE - 1) / RANGE;
#pragma omp parallel for if (ranges > 1)
    for (long r = 0; r < ranges; r++) {
        long lo = r * RANGE, m = n - lo < RANGE ? n - lo : RANGE;
        forward_range(x + lo, m, a);
    }
}

void dn_activate_backward(const float *x, const float *y, float *delta, long n,
                          dn_activation a)
{
    if (a == DN_LINEAR)
        return;
    const long ranges = (n + RANGE - 1) / RANGE;
#pragma omp parallel for if (ranges > 1)
    for (long r = 0; r < ranges; r++) {
        long lo = r * RANGE, m = n - lo < RANGE ? n - lo : RANGE;
        backward_range(x ? x + lo : NULL, y + lo, delta + lo, m, a);
    }
}
