/*
 * test_cli.c - darknet/src/cli/cli.c, the command-line front end every command
 * shares: "-name value" options, flags, and the cfg loader's -set, -overlay
 * and -strict, wherever they stand on the line; -gpus lists, and the
 * device of one rank under an MPI launcher.
 *
 * Malformed lines are a table run through the real commands (summary, lr,
 * classifier train): each must exit non-zero with a message naming the
 * option, never crash, and never take one option's value for another
 * option.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "testutil.h"

static const char *NET =
    "[net]\nbatch=2\nheight=4\nwidth=4\nchannels=1\nlearning_rate=0.1\n"
    "max_batches=4\n"
    "[connected]\noutput=3\nactivation=linear\n"
    "[softmax]\n";

typedef struct cli_case {
    int (*cmd)(int, char **);
    const char *args[12];
    const char *message; /* part of stderr */
} cli_case;

static void test_bad_command_lines_fail_with_a_message(void **state)
{
    (void)state;
    const char *cfg = tu_write_file("cli.cfg", NET);
    const char *data = tu_write_file("cli.data", "classes=3\ntrain=none.bin\n");
    const cli_case cases[] = {
        /* a flag taken for -set's value: crashed in strdup(NULL) */
        {dn_cmd_lr, {"lr", cfg, "-set", "-strict"}, "-set -strict: expected key=value"},
        {dn_cmd_summary, {"summary", cfg, "-set", "-strict"}, "-set -strict: expected key=value"},
        /* an option with a value after -set */
        {dn_cmd_lr, {"lr", cfg, "-set", "-epochs", "3"}, "-set -epochs: expected key=value"},
        {dn_cmd_classifier, {"classifier", "train", data, cfg, "-set", "-clear"},
         "-set -clear: expected key=value"},
        {dn_cmd_classifier, {"classifier", "train", data, cfg, "-overlay", "-clear"},
         "-clear: cannot open"},
        /* an option without its value */
        {dn_cmd_summary, {"summary", cfg, "-set"}, "-set needs a value"},
        {dn_cmd_summary, {"summary", cfg, "-overlay"}, "-overlay needs a value"},
        {dn_cmd_lr, {"lr", cfg, "-epochs"}, "-epochs"},
        {dn_cmd_classifier, {"classifier", "train", data, cfg, "-every"},
         "-every"},
        {dn_cmd_classifier, {"classifier", "valid", data, cfg, "w", "-bogus"},
         "unknown option -bogus"},
        {dn_cmd_summary, {"summary", cfg, "-set", "=3"}, "-set =3: expected key=value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *errs;
        int rc = tu_run_cmd(cases[i].cmd, cases[i].args, NULL, &errs);
        if (rc == 0)
            fail_msg("case %zu (%s %s): succeeded", i, cases[i].args[0],
                     cases[i].args[2]);
        if (!strstr(errs, cases[i].message))
            fail_msg("case %zu: stderr \"%s\" lacks \"%s\"", i, errs,
                     cases[i].message);
    }
}

/* -set's value is its own even when it looks like another option's name;
 * the command's options around it still work. */
static void test_set_pairs_are_never_split(void **state)
{
    (void)state;
    const char *cfg = tu_write_file("cli2.cfg", NET);
    const char *args[] = {"lr", cfg, "-epochs", "1", "-set", "batch=1",
                          "-batches-per-epoch", "2", "-strict", NULL};
    const char *out, *errs;
    if (tu_run_cmd(dn_cmd_lr, args, &out, &errs) != 0)
        fail_msg("%s", errs);
    assert_contains(out, "batch,epoch,lr\n0,0,0.1\n1,0.5,0.1\n");
}

static void test_arg_helpers_skip_loader_pairs(void **state)
{
    (void)state;
    char *argv[] = {"x", "-set", "-every", "-every", "3", "-overlay", "-clear",
                    "-clear", NULL};
    const int argc = 8;
    assert_string_equal(dn_arg_str(argc, argv, "-every", "none"), "3");
    assert_int_equal(dn_arg_flag(argc, argv, "-clear"), 1);
    /* the loader's pairs are left for dn_cli_load_cfg */
    assert_string_equal(argv[1], "-set");
    assert_string_equal(argv[2], "-every");
    assert_string_equal(argv[5], "-overlay");
    assert_string_equal(argv[6], "-clear");
    char *pos[4];
    assert_int_equal(dn_positional(argc, argv, pos, 4), 0);
}

/* -gpus LIST in every build: the devices, or an error naming the
 * list and what is wrong with it */
static void test_gpus_list_is_parsed(void **state)
{
    static const struct {
        const char *list;
        int n, ids[3];
        const char *error; /* NULL: parses */
    } cases[] = {
        {"0", 1, {0}, NULL},
        {"0,1,3", 3, {0, 1, 3}, NULL},
        {"15", 1, {15}, NULL},
        {"", 0, {0}, "expected device numbers"},
        {"x", 0, {0}, "-gpus x: expected device numbers 0..15"},
        {"-1", 0, {0}, "-gpus -1: expected device numbers"},
        {"16", 0, {0}, "-gpus 16: expected device numbers 0..15"},
        {"0;1", 0, {0}, "-gpus 0;1: expected device numbers"},
        {"0,0", 0, {0}, "-gpus 0,0: GPU 0 is listed twice"},
        {"1,", 0, {0}, "-gpus 1,: trailing comma"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dn_devices d;
        dn_error err = {0};
        int rc = dn_devices_parse(cases[i].list, &d, &err);
        if (!cases[i].error) {
            assert_int_equal(rc, 0);
            assert_int_equal(d.n, cases[i].n);
            for (int k = 0; k < d.n; k++)
                assert_int_equal(d.ids[k], cases[i].ids[k]);
        } else {
            assert_int_equal(rc, -1);
            assert_contains(err.msg, cases[i].error);
        }
    }
}

/* Under a launcher of 2 processes (this one rank 1, local rank 1) each rank
 * takes one GPU: several ids are an error naming the list and the way
 * out; -nogpu is the CPU; a CPU build without options runs on the CPU. */
static void test_ranks_take_one_gpu_each(void **state)
{
    const dn_comm two = {.rank = 1, .size = 2, .local = 1, .node_rank = 1};
    static const struct {
        const char *args[4];
        const char *error; /* NULL: no device, no error */
    } cases[] = {
        {{"train", "-gpus", "0,1"}, "-gpus 0,1: under an MPI launcher each "
         "of the 2 processes drives one GPU"},
        {{"train", "-gpus", "1,0"}, "several GPUs in one process are -gpus "
         "1,0 without mpirun"},
        {{"train", "-gpus", "x"}, "-gpus x: expected device numbers"},
        {{"train", "-gpus", "0", "-nogpu"}, "contradict each other"},
        {{"train", "-nogpu"}, NULL},
        {{"train"}, NULL}, /* a CPU build: the CPU */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[4] = {0};
        int argc = 0;
        while (argc < 4 && cases[i].args[argc]) {
            argv[argc] = (char *)cases[i].args[argc];
            argc++;
        }
        dn_devices d;
        dn_error err = {0};
        int rc = dn_arg_rank_devices(argc, argv, &two, &d, &err);
        if (!cases[i].error) {
            assert_int_equal(rc, 0);
            assert_int_equal(d.n, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_contains(err.msg, cases[i].error);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_command_lines_fail_with_a_message),
        cmocka_unit_test(test_set_pairs_are_never_split),
        cmocka_unit_test(test_arg_helpers_skip_loader_pairs),
        cmocka_unit_test(test_gpus_list_is_parsed),
        cmocka_unit_test(test_ranks_take_one_gpu_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
