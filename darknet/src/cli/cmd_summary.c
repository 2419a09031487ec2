/* cmd_summary.c - `darknet summary CFG`: one row per layer, then totals.
 * The network is planned, not built: every key is read and checked (the
 * trainer's too, and unused or duplicate keys are reported as training
 * reports them), every shape computed, and no tensor allocated, so the
 * answer is immediate for any cfg. */
#include <stdio.h>

#include "cli.h"

int dn_cmd_summary(int argc, char **argv)
{
    dn_error err;
    char *pos[2];
    dn_cfg *cfg;
    dn_net *net;
    int strict = 0;
    if (dn_check_options(argc, argv, &err))
        goto fail;
    if (dn_positional(argc, argv, pos, 2) != 1) {
        fprintf(stderr, "usage: darknet summary CFG [-set k=v] [-overlay F] "
                        "[-strict]\n");
        return 2;
    }
    if (dn_cli_load_cfg(pos[0], argc, argv, &cfg, &strict, &err))
        goto fail;
    /* at the cfg's batch: what training would allocate, and refuse */
    if (dn_net_plan(cfg, NULL, &net, &err)) {
        dn_cfg_free(cfg);
        goto fail;
    }
    if (dn_trainer_keys_check(&cfg->sections[0], &err) ||
        dn_cfg_check_unused(cfg, strict, stderr, &err)) {
        dn_net_free(net);
        goto fail;
    }
    dn_net_summary(net, stdout);
    /* training costs about 3x the forward pass (forward, input and weight
     * gradients) */
    printf("training: about %.3f BFLOPs per image (forward + backward), "
           "%s of tensors (limit %s)\n", 3 * dn_net_flops(net) / 1e9,
           dn_bytes_text(net->planned_bytes + 4.0 * net->planned_workspace),
           dn_bytes_text(net->max_bytes));
    dn_net_free(net);
    return 0;
fail:
    fprintf(stderr, "darknet summary: %s\n", err.msg);
    return 1;
}
