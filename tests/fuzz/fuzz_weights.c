/*
 * fuzz_weights.c - a .weights file and its .state sidecar, loaded as a
 * resumed run loads them (dn_checkpoint_load) into a small network with
 * every kind of saved tensor (conv with batch norm, connected, [batchnorm],
 * [layernorm], [attention]).
 *
 * Input: a flags byte (bit 0: Adam; bit 1: the state goes to .state.tmp,
 * as after a kill between the renames; bit 2: to both), a little-endian
 * u16 length L, L bytes of weights, the rest the state.
 * Seeds: checkpoints this network saves, and damaged ones.
 */
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static const char *NET =
    "[net]\nbatch=2\nheight=4\nwidth=4\nchannels=2\nadam=%d\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\n"
    "activation=leaky\n"
    "[batchnorm]\n"
    "[layernorm]\n"
    "[attention]\nheads=2\npositional=1\n"
    "[connected]\noutput=3\nactivation=linear\n"
    "[softmax]\n";

static dn_net *fz_weights_net(int adam)
{
    static dn_net *nets[2];
    if (!nets[adam]) {
        char text[1024];
        snprintf(text, sizeof text, NET, adam);
        dn_cfg *cfg;
        dn_error err;
        if (dn_cfg_parse_string(text, "weights.cfg", &cfg, &err) ||
            dn_net_make(cfg, NULL, &nets[adam], &err)) {
            fprintf(stderr, "fuzz_weights: %s\n", err.msg);
            return NULL;
        }
    }
    return nets[adam];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    fz_reader r = {data, size};
    const uint8_t flags = fz_u8(&r);
    size_t nw, ns;
    const uint8_t *w = fz_bytes(&r, fz_u16(&r), &nw);
    const uint8_t *st = fz_bytes(&r, r.left, &ns);
    dn_net *net = fz_weights_net(flags & 1);
    if (!net)
        return 0;
    const char *path = fz_write("w.weights", w, nw);
    char state[300], tmp[300];
    snprintf(state, sizeof state, "%s.state", path);
    snprintf(tmp, sizeof tmp, "%s.state.tmp", path);
    unlink(state);
    unlink(tmp);
    if (ns && (flags & 6) != 2)
        fz_write("w.weights.state", st, ns);
    if (ns && (flags & 6))
        fz_write("w.weights.state.tmp", st, ns);
    dn_error err;
    int loaded;
    if (dn_checkpoint_load(net, path, 1, &loaded, &err) == 0)
        dn_net_check_finite(net, &err);
    return 0;
}
