/* gradcheck.c - see gradcheck.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

static double loss_of(dn_net *net, const float *R, int train)
{
    dn_net_forward(net, train);
    dn_layer *last = dn_net_output_layer(net);
    if (last->is_loss)
        return dn_net_cost(net);
    double L = 0;
    for (long i = 0; i < (long)last->batch * last->outputs; i++)
        L += (double)R[i] * last->output[i];
    return L;
}

/* The largest error over up to `samples` coordinates of x (n floats). */
static double check_tensor(dn_net *net, const float *R, int train, float *x,
                           const float *analytic, long n, double eps,
                           int samples, dn_rng *rng)
{
    double worst = 0;
    long count = n < samples ? n : samples;
    for (long s = 0; s < count; s++) {
        long j = n <= samples ? s : (long)(dn_rng_u64(rng) % (uint64_t)n);
        float keep = x[j];
        x[j] = keep + (float)eps;
        double lp = loss_of(net, R, train);
        x[j] = keep - (float)eps;
        double lm = loss_of(net, R, train);
        x[j] = keep;
        /* the step actually taken in fp32 */
        double h = (double)(keep + (float)eps) - (double)(keep - (float)eps);
        double numeric = (lp - lm) / h;
        double a = analytic[j];
        double denom = fmax(fmax(fabs(a), fabs(numeric)), 1e-3);
        double err = fabs(a - numeric) / denom;
        if (err > worst)
            worst = err;
    }
    return worst;
}

double gc_run(const gc_case *c)
{
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    if (dn_cfg_parse_string(c->cfg, c->name, &cfg, &err) ||
        dn_net_make(cfg, NULL, &net, &err)) {
        print_error("%s: %s\n", c->name, err.msg);
        return -1;
    }
    const double eps = c->eps > 0 ? c->eps : 1e-2;
    const int samples = 40;
    dn_rng rng;
    dn_rng_seed(&rng, 12345);
    long nin = (long)net->batch * net->inputs;
    for (long i = 0; i < nin; i++)
        net->input_data[i] = (float)(2 * dn_rng_uniform(&rng) - 1);
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            dn_param *p = &net->layers[i].params[k];
            for (long j = 0; j < p->n; j++)
                p->w[j] = (float)(0.5 * dn_rng_normal(&rng));
        }
    dn_layer *last = dn_net_output_layer(net);
    long nout = (long)last->batch * last->outputs;
    float *R = calloc(nout, sizeof *R);
    for (long i = 0; i < nout; i++)
        R[i] = (float)(2 * dn_rng_uniform(&rng) - 1);
    /* one-hot truth for loss layers */
    for (int b = 0; b < net->batch; b++)
        net->truth[b * net->truths + (long)(dn_rng_u64(&rng) % net->truths)] = 1;
    net->input_delta = calloc(nin, sizeof(float));

    /* analytic */
    dn_net_forward(net, c->train);
    if (!c->train)
        dn_net_zero_deltas(net);
    if (!last->is_loss)
        memcpy(last->delta, R, nout * sizeof *R);
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++)
            memset(net->layers[i].params[k].grad, 0,
                   net->layers[i].params[k].n * sizeof(float));
    dn_net_backward(net);

    /* a training forward zeroes input_delta: keep the analytic copy */
    float *din = malloc(nin * sizeof *din);
    memcpy(din, net->input_delta, nin * sizeof *din);
    double worst = check_tensor(net, R, c->train, net->input_data, din, nin,
                                eps, samples, &rng);
    free(din);
    printf("  %-28s %-22s max err %.2e\n", c->name, "input", worst);
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            dn_param *p = &net->layers[i].params[k];
            float *g = malloc(p->n * sizeof *g);
            memcpy(g, p->grad, p->n * sizeof *g);
            double e = check_tensor(net, R, c->train, p->w, g, p->n, eps,
                                    samples, &rng);
            char what[64];
            snprintf(what, sizeof what, "%d:%s.%s", i, net->layers[i].type->name,
                     p->name);
            printf("  %-28s %-22s max err %.2e\n", c->name, what, e);
            if (e > worst)
                worst = e;
            free(g);
        }
    free(net->input_delta);
    net->input_delta = NULL;
    free(R);
    dn_net_free(net);
    return worst;
}

void gc_assert(const gc_case *c)
{
    double tol = c->tol > 0 ? c->tol : 1e-2;
    double worst = gc_run(c);
    if (worst < 0 || worst > tol) {
        print_error("%s: largest gradient error %.3e > tolerance %.1e\n",
                    c->name, worst, tol);
        fail();
    }
}
