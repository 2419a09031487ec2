/*
 * test_cmd_summary.c - darknet/src/cli/cmd_summary.c, `darknet summary CFG`:
 * the network is planned, never built (no tensor is allocated, so any cfg
 * is answered at once), and the cfg is checked as training checks it:
 * unknown and duplicate keys in every section, -strict, and the trainer's
 * own keys (epochs=nonsense is an error here too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "testutil.h"

size_t __sanitizer_get_current_allocated_bytes(void); /* the ASan runtime */

#define NET "[net]\nbatch=4\nheight=8\nwidth=8\nchannels=3\n"
#define LAYERS "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n" \
               "[connected]\noutput=10\n[softmax]\n"

typedef struct summary_case {
    const char *cfg;
    const char *extra[5]; /* command-line words after the cfg */
    int rc;
    const char *text; /* part of stderr or stdout */
} summary_case;

static const summary_case cases[] = {
    /* an unknown key in a layer section: a warning, an error with -strict */
    {NET "[convolutional]\nfilterz=4\n[softmax]\n", {NULL}, 0,
     "s.cfg:7: [convolutional] filterz: warning: unused key (no layer of "
     "this type reads it)"},
    {NET "[convolutional]\nfilterz=4\n[softmax]\n", {"-strict"}, 1,
     "s.cfg:7: [convolutional] filterz: unknown key"},
    /* a duplicate key, with both lines */
    {NET "subdivisions=1\nsubdivisions=2\n" LAYERS, {NULL}, 0,
     "s.cfg:7: [net] subdivisions: warning: duplicate key: line 6 sets it "
     "first"},
    {NET "subdivisions=1\nsubdivisions=x\n" LAYERS, {NULL}, 1,
     "s.cfg:7: [net] subdivisions: expected an integer"},
    /* the trainer's keys are checked, not ignored */
    {NET LAYERS, {"-set", "epochs=nonsense"}, 1,
     "-set: [net] epochs: expected an integer"},
    {NET LAYERS, {"-set", "epochs=nan"}, 1, "[net] epochs: expected an integer"},
    {NET LAYERS, {"-set", "halt_loss=inf"}, 1, "[net] halt_loss: expected a number"},
    {NET LAYERS, {"-set", "flip=2"}, 1, "[net] flip: expected an integer in [0, 1]"},
    {NET LAYERS, {"-set", "epochs=3", "-set", "flip=1"}, 0,
     "total: 2682 parameters"},
    {NET LAYERS, {"-set", "epoch=3"}, 1, "-set: [net] epoch: unknown key"},
    /* a network no machine holds: refused by the plan, naming the layer */
    {"[net]\nbatch=1\nheight=32\nwidth=32\nchannels=3\n[convolutional]\n"
     "size=2000\npad=1\nfilters=64\n", {NULL}, 1,
     "s.cfg:6: [convolutional] layer 0: error: needs "},
    {"[net]\nbatch=64\nheight=224\nwidth=224\nchannels=65536\n"
     "[convolutional]\nsize=3\nfilters=64\n", {NULL}, 1,
     "s.cfg:1: [net]: error: needs 784.0 GiB (the input batch)"},
    /* shapes that cannot work, in the layer that has them */
    {NET "[convolutional]\nsize=11\n", {NULL}, 1,
     "s.cfg:7: [convolutional] size: a 11x11 kernel"},
    {NET "[shortcut]\nfrom=99\n", {NULL}, 1, "s.cfg:7: [shortcut] from: 99"},
    /* legal but implausible: a kernel wider than its input */
    {NET "[convolutional]\nsize=11\npad=1\n[softmax]\n", {NULL}, 0,
     "s.cfg:7: [convolutional] size: warning: a 11x11 kernel (extent 11) on a "
     "8x8 input: most of it only ever sees the zero padding"},
};

static void test_summary_checks_the_cfg_as_training_does(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const summary_case *c = &cases[i];
        const char *args[8] = {"summary", tu_write_file("s.cfg", c->cfg)};
        for (int k = 0; c->extra[k]; k++)
            args[2 + k] = c->extra[k];
        const char *out, *errs;
        int rc = tu_run_cmd(dn_cmd_summary, args, &out, &errs);
        if (rc != c->rc || (!strstr(errs, c->text) && !strstr(out, c->text)))
            fail_msg("case %zu: status %d (expected %d)\nstdout: %s\nstderr: "
                     "%s\nexpected: %s", i, rc, c->rc, out, errs, c->text);
    }
}

/* Planned, not built: the summary of ResNet-18 at batch 128 (1.4 GiB of
 * tensors to train) allocates next to nothing, and says what training
 * would allocate. */
static void test_summary_allocates_no_tensors(void **state)
{
    (void)state;
    const char *args[] = {"summary", "cfg/resnet18-cifar.cfg", NULL};
    const char *out;
    const size_t before = __sanitizer_get_current_allocated_bytes();
    size_t peak = 0;
    assert_int_equal(tu_run_cmd(dn_cmd_summary, args, &out, NULL), 0);
    peak = __sanitizer_get_current_allocated_bytes();
    assert_contains(out, "total: 11173962 parameters");
    assert_contains(out, "batch 128 x 1 subdivisions");
    assert_contains(out, "1.4 GiB of tensors");
    /* what is left allocated; the peak is checked by test_networks */
    assert_true(peak < before + (1 << 20));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_checks_the_cfg_as_training_does),
        cmocka_unit_test(test_summary_allocates_no_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
