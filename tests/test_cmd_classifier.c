/*
 * test_cmd_classifier.c - darknet/src/cli/cmd_classifier.c, the classifier
 * commands' front end: predict without an image reads image paths from
 * stdin (Darknet's behaviour), but an error that does not depend on the
 * image (the .data file, the cfg, the weights) ends the command at once
 * instead of waiting for input that may never come.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "testutil.h"

static void test_predict_fails_before_reading_stdin(void **state)
{
    (void)state;
    const char *data = tu_write_file("p.data", "classes=3\n");
    const char *good = tu_write_file("p-good.cfg",
                                     "[net]\nbatch=1\nheight=4\nwidth=4\n"
                                     "channels=1\n[connected]\noutput=3\n"
                                     "[softmax]\n");
    const char *bad = tu_write_file("p-bad.cfg",
                                    "[net]\nbatch=1\nheight=4\nwidth=4\n"
                                    "channels=1\n[connected]\noutput=3\n"
                                    "[shortcut]\nfrom=99\n");
    const struct {
        const char *cfg, *weights, *message;
    } cases[] = {
        {bad, "none.weights", "p-bad.cfg:9: [shortcut] from: 99"},
        {good, "none.weights", "none.weights: cannot open"},
    };
    /* stdin: a pipe nobody writes to and nobody closes */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(0);
    dup2(fds[0], 0);
    alarm(20); /* a regression waits for input: fail instead of hanging */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[] = {"classifier", "predict", data, cases[i].cfg,
                              cases[i].weights, NULL};
        const char *errs;
        assert_int_equal(tu_run_cmd(dn_cmd_classifier, args, NULL, &errs), 1);
        assert_contains(errs, cases[i].message);
    }
    alarm(0);
    dup2(saved, 0);
    close(saved);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_fails_before_reading_stdin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
