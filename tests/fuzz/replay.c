/*
 * replay.c - make test's replay of the fuzz inputs, without clang: every
 * seed (tests/fuzz/corpus/TARGET/) and every input that ever crashed or hung
 * a target (tests/fuzz/regress/TARGET/) through the target's
 * LLVMFuzzerTestOneInput, in the plain ASan/UBSan build. Each input has 30
 * seconds (a hang fails the test by SIGALRM). Built once per target with
 * -DFUZZ_TARGET='"cfg"'; runs from the repository root.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET='\"name\"'"
#endif

/* The two directories, made absolute before any input runs: a target may
 * change directory. Empty when absent. */
static char seeds[PATH_MAX], regress[PATH_MAX];

/* Runs every regular file of dir; returns how many (-1: no dir). */
static int replay_dir(const char *dir)
{
    if (!dir[0])
        return -1;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        uint8_t *buf = malloc(st.st_size ? st.st_size : 1);
        assert_int_equal(fread(buf, 1, st.st_size, f), (size_t)st.st_size);
        fclose(f);
        fprintf(stderr, "    %s\n", path);
        alarm(30);
        LLVMFuzzerTestOneInput(buf, st.st_size);
        alarm(0);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void replay_seeds(void **state)
{
    (void)state;
    int n = replay_dir(seeds);
    if (n < 1)
        fail_msg("tests/fuzz/corpus/" FUZZ_TARGET ": no seeds (run from the "
                 "repository root)");
    print_message("%d seeds\n", n);
}

static void replay_regressions(void **state)
{
    (void)state;
    int n = replay_dir(regress);
    print_message("%d regression inputs\n", n < 0 ? 0 : n);
}

int main(void)
{
    if (!realpath("tests/fuzz/corpus/" FUZZ_TARGET, seeds))
        seeds[0] = '\0';
    if (!realpath("tests/fuzz/regress/" FUZZ_TARGET, regress))
        regress[0] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replay_seeds),
        cmocka_unit_test(replay_regressions),
    };
    return cmocka_run_group_tests_name("fuzz replay: " FUZZ_TARGET, tests,
                                       NULL, NULL);
}
