/*
 * fuzz_cfg.c - a cfg file, parsed, planned, checked as training checks it
 * and, when it fits a small budget (FZ_MAX_BYTES, 10^9 FLOPs a batch),
 * built and trained for one step: forward, backward, update.
 * Seeds: tests/fuzz/corpus/cfg/ (every layer type, every policy).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* Builds the network of cfg (owned by it on success) and runs one step. */
static void train_once(dn_cfg *cfg)
{
    dn_error err;
    dn_net *net;
    dn_net_options opt = {.max_bytes = FZ_MAX_BYTES};
    if (dn_net_make(cfg, &opt, &net, &err)) {
        dn_cfg_free(cfg);
        return;
    }
    for (long i = 0; i < (long)net->batch * net->inputs; i++)
        net->input_data[i] = (float)((i * 37) % 101) / 101.0f;
    for (int b = 0; b < net->batch; b++)
        net->truth[(long)b * net->truths + b % net->truths] = 1;
    dn_net_forward(net, 1);
    dn_net_backward(net);
    dn_net_update(net, 0.01);
    dn_net_check_finite(net, &err);
    dn_net_forward(net, 0);
    dn_net_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    dn_cfg *cfg;
    dn_error err;
    int rc = dn_cfg_parse_string(text, "fuzz.cfg", &cfg, &err);
    free(text);
    if (rc)
        return 0;
    dn_net_options opt = {.max_bytes = FZ_MAX_BYTES};
    dn_net *plan;
    if (dn_net_plan(cfg, &opt, &plan, &err)) {
        dn_cfg_free(cfg);
        return 0;
    }
    dn_net_summary(plan, fz_null());
    const double flops = dn_net_flops(plan) * plan->batch;
    plan->cfg = NULL;
    dn_net_free(plan);
    dn_trainer_keys_check(&cfg->sections[0], &err);
    dn_cfg_check_unused(cfg, 1, NULL, &err);
    if (flops < 1e9)
        train_once(cfg);
    else
        dn_cfg_free(cfg);
    return 0;
}
