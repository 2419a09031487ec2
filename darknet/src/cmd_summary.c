/* cmd_summary.c - `darknet summary CFG`: one row per layer, then totals. */
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
    dn_net_options opt = {.batch_override = 1};
    if (dn_net_make(cfg, &opt, &net, &err)) {
        dn_cfg_free(cfg);
        goto fail;
    }
    dn_net_summary(net, stdout);
    /* training costs about 3x the forward pass (forward, input and weight
     * gradients) */
    printf("training: about %.3f BFLOPs per image (forward + backward)\n",
           3 * dn_net_flops(net) / 1e9);
    dn_net_free(net);
    return 0;
fail:
    fprintf(stderr, "darknet summary: %s\n", err.msg);
    return 1;
}
