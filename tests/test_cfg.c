/*
 * test_cfg.c - darknet/src/cfg.c: the cfg parser, typed getters, overrides
 * (-set, -overlay) and the unused-key check.
 *
 * Bad input is a table; every case is fed from a string and from a file,
 * and every message must name the file, the line and, for a value error, the
 * section and key. Outputs must be left unchanged on failure.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* Darknet's own cfgs, as the Debian package installs them. */
#define DARKNET_CFG_DIR "/usr/share/darknet/cfg"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A parsed cfg from a string ("t.cfg") or a file (tmpdir/t.cfg). */
static int load(const char *text, int from_file, dn_cfg **cfg, dn_error *err,
                const char **name)
{
    *name = from_file ? tu_write_file("t.cfg", text) : "t.cfg";
    return from_file ? dn_cfg_load(*name, cfg, err)
                     : dn_cfg_parse_string(text, *name, cfg, err);
}

/* ------------------------------------------------- Darknet's own cfgs */

static void check_darknet_file(const char *path, const char *file)
{
    dn_cfg *cfg;
    dn_error err = {{0}};
    int flat = ends_with(file, ".data") || ends_with(file, ".dataset");
    int rc = flat ? dn_cfg_load_flat(path, &cfg, &err) : dn_cfg_load(path, &cfg, &err);
    if (rc)
        fail_msg("%s: %s", file, err.msg);
    assert_true(cfg->n_sections >= 1);
    if (flat) {
        assert_true(dn_sec_has(&cfg->sections[0], "classes"));
    } else {
        /* the [net] section's schedule parses too: every policy Darknet's
         * cfgs use is supported */
        dn_section *net = dn_cfg_find(cfg, "net");
        if (!net)
            net = dn_cfg_find(cfg, "network");
        assert_non_null(net);
        dn_schedule *s;
        if (dn_schedule_parse(net, &s, &err))
            fail_msg("%s: %s", file, err.msg);
        dn_schedule_free(s);
    }
    dn_cfg_free(cfg);
}

static void test_darknet_cfgs_parse(void **state)
{
    DIR *dir = opendir(DARKNET_CFG_DIR);
    if (!dir) {
        fprintf(stderr, "[  SKIPPED ] %s is absent (Debian package darknet)\n",
                DARKNET_CFG_DIR);
        skip();
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!ends_with(e->d_name, ".cfg") && !ends_with(e->d_name, ".data") &&
            !ends_with(e->d_name, ".dataset"))
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", DARKNET_CFG_DIR, e->d_name);
        check_darknet_file(path, e->d_name);
        n++;
    }
    closedir(dir);
    printf("parsed %d files from %s\n", n, DARKNET_CFG_DIR);
    assert_true(n > 0);
}

/* ---------------------------------------------------------- bad input */

typedef enum getter { G_PARSE, G_INT, G_DOUBLE, G_CHOICE, G_INTS, G_DOUBLES } getter;

typedef struct bad_case {
    const char *what;
    const char *text;
    getter get;          /* G_PARSE: the parse itself must fail */
    const char *section; /* section and key for the getter */
    const char *key;
    const char *where; /* after the file name: ":LINE: ..." */
    const char *message;
} bad_case;

static const char *const activations[] = {"linear", "leaky", "relu", NULL};

static const bad_case bad_cases[] = {
    {"missing '='", "[net]\nbatch=1\nheight 32\n", G_PARSE, NULL, NULL,
     ":3: error:", "expected key=value or [section], got: height 32"},
    {"unclosed header", "[net]\nbatch=1\n[convolutional\n", G_PARSE, NULL, NULL,
     ":3: error:", "malformed section header: [convolutional"},
    {"empty header", "[net]\n[]\n", G_PARSE, NULL, NULL, ":2: error:",
     "malformed section header"},
    {"text after header", "[net] x\n", G_PARSE, NULL, NULL, ":1: error:",
     "malformed section header"},
    {"key before any section", "batch=1\n[net]\n", G_PARSE, NULL, NULL,
     ":1: error:", "key=value before the first [section]: batch=1"},
    {"integer with junk", "[net]\nbatch=77foo\n", G_INT, "net", "batch",
     ":2: [net] batch:", "expected an integer >= 1, got \"77foo\""},
    {"number with junk", "[net]\nmomentum=0.9x\n", G_DOUBLE, "net", "momentum",
     ":2: [net] momentum:", "expected a number in [0, 1], got \"0.9x\""},
    {"integer out of range", "[net]\n\nbatch=0\n", G_INT, "net", "batch",
     ":3: [net] batch:", "expected an integer >= 1, got \"0\""},
    {"number out of range", "[net]\nmomentum=1.5\n", G_DOUBLE, "net", "momentum",
     ":2: [net] momentum:", "expected a number in [0, 1], got \"1.5\""},
    {"unknown choice", "[net]\nbatch=1\n[convolutional]\nactivation=relux\n",
     G_CHOICE, "convolutional", "activation", ":4: [convolutional] activation:",
     "unknown value \"relux\"; valid: linear, leaky, relu"},
    {"integer list with a bad item", "[net]\nsteps=100,abc,300\n", G_INTS, "net",
     "steps", ":2: [net] steps:",
     "expected a list of integers, got \"abc\" in \"100,abc,300\""},
    {"number list with a bad item", "[net]\n# c\nscales=.1,x\n", G_DOUBLES, "net",
     "scales", ":3: [net] scales:", "expected a list of numbers, got \"x\""},
    {"list too long", "[net]\nsteps=1,2,3,4,5\n", G_INTS, "net", "steps",
     ":2: [net] steps:", "at most 4 values"},
};

#define SENTINEL 12345

/* Run the case's getter; returns its result. Outputs must stay untouched. */
static int run_getter(const bad_case *c, dn_cfg *cfg, dn_error *err)
{
    dn_section *s = dn_cfg_find(cfg, c->section);
    assert_non_null(s);
    long l = SENTINEL, list[4];
    double d = SENTINEL, dlist[4];
    int index = SENTINEL, n = SENTINEL, rc = 0;
    switch (c->get) {
    case G_INT:
        rc = dn_sec_int(s, c->key, 1, 1, __LONG_MAX__, &l, err);
        break;
    case G_DOUBLE:
        rc = dn_sec_double(s, c->key, 0.9, 0, 1, &d, err);
        break;
    case G_CHOICE:
        rc = dn_sec_choice(s, c->key, "linear", activations, &index, err);
        break;
    case G_INTS:
        rc = dn_sec_ints(s, c->key, list, 4, &n, err);
        break;
    case G_DOUBLES:
        rc = dn_sec_doubles(s, c->key, dlist, 4, &n, err);
        break;
    case G_PARSE:
        break;
    }
    assert_int_equal(l, SENTINEL);
    assert_true(d == SENTINEL);
    assert_int_equal(index, SENTINEL);
    if (c->get == G_INTS || c->get == G_DOUBLES)
        assert_int_equal(n, 0); /* a failed list reads as empty */
    return rc;
}

static void test_bad_input_names_file_line_key(void **state)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const bad_case *c = &bad_cases[i];
        for (int from_file = 0; from_file < 2; from_file++) {
            dn_cfg *cfg = (dn_cfg *)c; /* must become NULL on failure */
            dn_error err = {{0}};
            const char *name;
            int rc = load(c->text, from_file, &cfg, &err, &name);
            if (c->get == G_PARSE) {
                assert_int_equal(rc, -1);
                assert_null(cfg);
            } else {
                if (rc)
                    fail_msg("%s: %s", c->what, err.msg);
                assert_int_equal(run_getter(c, cfg, &err), -1);
                dn_cfg_free(cfg);
            }
            char want[700];
            snprintf(want, sizeof want, "%s%s", name, c->where);
            assert_contains(err.msg, want);
            assert_contains(err.msg, c->message);
        }
    }
}

/* A missing file is an error naming it. */
static void test_missing_file(void **state)
{
    dn_cfg *cfg;
    dn_error err = {{0}};
    assert_int_equal(dn_cfg_load("no/such/file.cfg", &cfg, &err), -1);
    assert_null(cfg);
    assert_contains(err.msg, "no/such/file.cfg: cannot open");
}

/* Comments, blank lines, whitespace around '='; the first occurrence of a
 * key wins (Darknet's option_find) and values keep inner spaces. A
 * duplicate is reported with both lines: a warning, an error under
 * -strict. */
static void test_good_input(void **state)
{
    dn_cfg *cfg;
    dn_error err = {{0}};
    const char *name;
    assert_int_equal(load("# top\n[net]\n  batch = 64 \n; c\n\nbatch=32\n"
                          "[maxpool]\nsize=2\n", 1, &cfg, &err, &name), 0);
    assert_int_equal(cfg->n_sections, 2);
    long batch, size;
    dn_section *net = dn_cfg_find(cfg, "net");
    assert_int_equal(dn_sec_int(net, "batch", 1, 1, 4096, &batch, &err), 0);
    assert_int_equal(batch, 64);
    assert_int_equal(dn_sec_int(dn_cfg_find(cfg, "maxpool"), "size", 1, 1, 9,
                                &size, &err), 0);
    assert_int_equal(size, 2);
    assert_int_equal(dn_cfg_check_unused(cfg, 0, NULL, &err), 0);
    assert_int_equal(dn_cfg_check_unused(cfg, 1, NULL, &err), -1);
    assert_contains(err.msg, ":6: [net] batch: duplicate key: line 3 sets it "
                             "first");
    dn_cfg_free(cfg);
}

/* ---------------------------------------------------------- overrides */

static const char *net_value(dn_cfg *cfg, const char *key)
{
    const char *v = NULL;
    dn_error err;
    assert_int_equal(dn_sec_string(dn_cfg_find(cfg, "net"), key, NULL, &v, &err), 0);
    return v;
}

static dn_cfg *base_cfg(void)
{
    dn_cfg *cfg;
    dn_error err;
    assert_int_equal(dn_cfg_parse_string("[net]\nbatch=64\nlearning_rate=0.1\n"
                                         "[maxpool]\nsize=2\n", "t.cfg", &cfg,
                                         &err), 0);
    return cfg;
}

static void test_set_replaces_and_adds(void **state)
{
    dn_cfg *cfg = base_cfg();
    dn_error err = {{0}};
    assert_int_equal(dn_cfg_set(cfg, "learning_rate=0.5", &err), 0);
    assert_int_equal(dn_cfg_set(cfg, " momentum = 0.8 ", &err), 0);
    assert_string_equal(net_value(cfg, "learning_rate"), "0.5");
    assert_string_equal(net_value(cfg, "momentum"), "0.8");
    assert_string_equal(net_value(cfg, "batch"), "64");
    /* a bad overridden value names its source */
    assert_int_equal(dn_cfg_set(cfg, "batch=abc", &err), 0);
    long batch = SENTINEL;
    assert_int_equal(dn_sec_int(dn_cfg_find(cfg, "net"), "batch", 1, 1, 4096,
                                &batch, &err), -1);
    assert_int_equal(batch, SENTINEL);
    assert_contains(err.msg, "-set: [net] batch: expected an integer");
    dn_cfg_free(cfg);
}

static void test_set_malformed(void **state)
{
    const char *bad[] = {"novalue", "=3", "key=", " = "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dn_cfg *cfg = base_cfg();
        dn_error err = {{0}};
        assert_int_equal(dn_cfg_set(cfg, bad[i], &err), -1);
        assert_contains(err.msg, "expected key=value");
        assert_string_equal(net_value(cfg, "learning_rate"), "0.1");
        dn_cfg_free(cfg);
    }
}

static void test_overlay(void **state)
{
    dn_cfg *cfg = base_cfg();
    dn_error err = {{0}};
    const char *ov = tu_write_file("ov.cfg", "[net]\nlearning_rate=0.01\n"
                                             "momentum=abc\n");
    assert_int_equal(dn_cfg_overlay(cfg, ov, &err), 0);
    assert_string_equal(net_value(cfg, "learning_rate"), "0.01");
    double m = SENTINEL;
    assert_int_equal(dn_sec_double(dn_cfg_find(cfg, "net"), "momentum", 0.9, 0,
                                   1, &m, &err), -1);
    assert_true(m == SENTINEL);
    char want[600];
    snprintf(want, sizeof want, "%s:3: [net] momentum:", ov);
    assert_contains(err.msg, want);
    dn_cfg_free(cfg);
}

static void test_overlay_rejects_other_sections(void **state)
{
    dn_cfg *cfg = base_cfg();
    dn_error err = {{0}};
    const char *ov = tu_write_file("ov2.cfg", "[net]\nlearning_rate=0.01\n"
                                              "[convolutional]\nsize=3\n");
    assert_int_equal(dn_cfg_overlay(cfg, ov, &err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s:3: error: an overlay may hold only [net] "
             "keys, found [convolutional]", ov);
    assert_contains(err.msg, want);
    dn_cfg_free(cfg);
}

/* Read every key of base_cfg() as a parser would. */
static void read_all(dn_cfg *cfg)
{
    long batch, size;
    double lr;
    dn_error err;
    assert_int_equal(dn_sec_int(dn_cfg_find(cfg, "net"), "batch", 1, 1, 4096,
                                &batch, &err), 0);
    assert_int_equal(dn_sec_double(dn_cfg_find(cfg, "net"), "learning_rate",
                                   0.001, 0, 10, &lr, &err), 0);
    assert_int_equal(dn_sec_int(dn_cfg_find(cfg, "maxpool"), "size", 1, 1, 9,
                                &size, &err), 0);
}

/* A copy keeps values, override marks and file names (an overlay's key
 * still names the overlay), and is independent of the original: what the
 * library builds a network from, leaving the caller's cfg as it was. */
static void test_copy_keeps_overrides_and_sources(void **state)
{
    dn_cfg *cfg = base_cfg();
    dn_error err = {{0}};
    const char *ov = tu_write_file("ov3.cfg", "[net]\nmomentum=abc\n");
    assert_int_equal(dn_cfg_overlay(cfg, ov, &err), 0);
    assert_int_equal(dn_cfg_set(cfg, "learning_rate=0.5", &err), 0);
    assert_int_equal(dn_cfg_set(cfg, "learnin_rate=0.5", &err), 0);
    dn_cfg *copy = dn_cfg_clone(cfg);
    assert_non_null(copy);
    dn_cfg_free(cfg);
    assert_string_equal(net_value(copy, "learning_rate"), "0.5");
    double m = SENTINEL;
    assert_int_equal(dn_sec_double(dn_cfg_find(copy, "net"), "momentum", 0.9,
                                   0, 1, &m, &err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s:2: [net] momentum:", ov);
    assert_contains(err.msg, want);
    /* an unknown key from -set is still an error */
    read_all(copy);
    assert_int_equal(dn_cfg_check_unused(copy, 0, NULL, &err), -1);
    assert_contains(err.msg, "-set: [net] learnin_rate: unknown key");
    dn_cfg_free(copy);
}

static void test_unknown_override_key_is_an_error(void **state)
{
    dn_cfg *cfg = base_cfg();
    dn_error err = {{0}};
    assert_int_equal(dn_cfg_set(cfg, "learnin_rate=0.5", &err), 0);
    read_all(cfg);
    assert_int_equal(dn_cfg_check_unused(cfg, 0, NULL, &err), -1);
    assert_contains(err.msg, "-set: [net] learnin_rate: unknown key");
    assert_contains(err.msg, "(from an override)");
    dn_cfg_free(cfg);
}

/* An unused key in the file is a warning, or an error in strict mode. */
static void test_strict_mode(void **state)
{
    for (int strict = 0; strict < 2; strict++) {
        dn_cfg *cfg;
        dn_error err = {{0}};
        assert_int_equal(dn_cfg_parse_string("[net]\nbatch=64\nlearning_rate=0.1\n"
                                             "momentun=0.9\n[maxpool]\nsize=2\n",
                                             "t.cfg", &cfg, &err), 0);
        read_all(cfg);
        char *report = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&report, &len);
        int rc = dn_cfg_check_unused(cfg, strict, f, &err);
        fclose(f);
        assert_contains(report, "t.cfg:4: [net] momentun");
        assert_contains(report, strict ? "error" : "warning");
        if (strict) {
            assert_int_equal(rc, -1);
            assert_contains(err.msg, "t.cfg:4: [net] momentun: unknown key");
        } else {
            assert_int_equal(rc, 0);
        }
        free(report);
        dn_cfg_free(cfg);
    }
}

/* ---------------------------------------------------- files and keys */

/* A FIFO (which would block a plain fopen until a writer comes), a
 * directory and a device are refused at once, naming what they are. */
static void test_only_regular_files_are_read(void **state)
{
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.cfg", tu_tmpdir());
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const struct {
        const char *path, *kind;
    } cases[] = {{fifo, "a FIFO"}, {tu_tmpdir(), "a directory"},
                 {"/dev/null", "a character device"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int flat = 0; flat < 2; flat++) {
            dn_cfg *cfg = (dn_cfg *)state;
            dn_error err = {{0}};
            int rc = flat ? dn_cfg_load_flat(cases[i].path, &cfg, &err)
                          : dn_cfg_load(cases[i].path, &cfg, &err);
            assert_int_equal(rc, -1);
            assert_null(cfg);
            assert_contains(err.msg, cases[i].path);
            assert_contains(err.msg, cases[i].kind);
        }
    }
    unlink(fifo);
}

/* Darknet uses the first of two equal keys; a later one with a bad value
 * is still an error (it was ignored), in every typed getter. */
static void test_duplicate_keys_are_all_checked(void **state)
{
    const struct {
        const char *text;
        int line;
    } cases[] = {
        {"[net]\nbatch=64\nbatch=abc\n", 3},
        {"[net]\nbatch=64\nbatch=-1\n", 3},
        {"[net]\nmomentum=0.9\nmomentum=nan\n", 3},
        {"[net]\nsteps=1,2\nsteps=1,x\n", 3},
        {"[net]\npolicy=steps\npolicy=stepz\n", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dn_cfg *cfg;
        dn_error err = {{0}};
        assert_int_equal(dn_cfg_parse_string(cases[i].text, "d.cfg", &cfg,
                                             &err), 0);
        dn_section *net = dn_cfg_find(cfg, "net");
        long v;
        double d, list[4];
        int n, choice;
        static const char *const policies[] = {"constant", "steps", NULL};
        int rc = i < 2   ? dn_sec_int(net, "batch", 1, 1, 4096, &v, &err)
                 : i == 2 ? dn_sec_double(net, "momentum", 0.9, 0, 1, &d, &err)
                 : i == 3 ? dn_sec_doubles(net, "steps", list, 4, &n, &err)
                          : dn_sec_choice(net, "policy", "constant", policies,
                                          &choice, &err);
        if (rc != -1)
            fail_msg("case %zu accepted: %s", i, cases[i].text);
        char want[64];
        snprintf(want, sizeof want, "d.cfg:%d: [net] ", cases[i].line);
        assert_contains(err.msg, want);
        dn_cfg_free(cfg);
    }
}

/* Duplicates are reported with both lines, in layer sections and .data
 * files too; an overlay may not set a key twice. */
static void test_duplicate_keys_are_reported(void **state)
{
    dn_cfg *cfg;
    dn_error err = {{0}};
    assert_int_equal(dn_cfg_parse_string("[net]\nsubdivisions=1\nbatch=2\n"
                                         "subdivisions=2\n[maxpool]\nsize=2\n"
                                         "size=3\n", "d.cfg", &cfg, &err), 0);
    for (int i = 0; i < cfg->n_sections; i++)
        for (int j = 0; j < cfg->sections[i].n_kv; j++)
            cfg->sections[i].kvs[j].used = 1;
    char *report = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&report, &len);
    assert_int_equal(dn_cfg_check_unused(cfg, 0, f, &err), 0);
    fclose(f);
    assert_contains(report, "d.cfg:4: [net] subdivisions: warning: duplicate "
                            "key: line 2 sets it first");
    assert_contains(report, "d.cfg:7: [maxpool] size: warning: duplicate key: "
                            "line 6 sets it first");
    free(report);
    assert_int_equal(dn_cfg_check_unused(cfg, 1, NULL, &err), -1);
    assert_contains(err.msg, "d.cfg:4: [net] subdivisions: duplicate key");
    /* -set replaces every occurrence: no duplicate is left */
    assert_int_equal(dn_cfg_set(cfg, "subdivisions=1", &err), 0);
    for (int j = 0; j < cfg->sections[0].n_kv; j++)
        cfg->sections[0].kvs[j].used = 1;
    assert_int_equal(dn_cfg_check_unused(cfg, 0, NULL, &err), 0);
    /* an overlay may not say two things */
    const char *ov = tu_write_file("dup-ov.cfg", "[net]\nbatch=4\nbatch=8\n");
    assert_int_equal(dn_cfg_overlay(cfg, ov, &err), -1);
    assert_contains(err.msg, ":3: [net] batch: error: duplicate key in an "
                             "overlay (line 2 sets it first)");
    dn_cfg_free(cfg);

    const char *data = tu_write_file("dup.data", "classes=10\ntrain=a\n"
                                                 "vaild=b\ntrain=c\n");
    assert_int_equal(dn_cfg_load_flat(data, &cfg, &err), 0);
    dn_sec_kv(&cfg->sections[0], "classes");
    dn_sec_kv(&cfg->sections[0], "train");
    assert_int_equal(dn_cfg_check_unused(cfg, 1, NULL, &err), -1);
    assert_contains(err.msg, "dup.data:3: [data] vaild: unknown key: no "
                             "reader of .data files reads it");
    report = NULL;
    f = open_memstream(&report, &len);
    dn_cfg_check_unused(cfg, 0, f, &err);
    fclose(f);
    assert_contains(report, "dup.data:4: [data] train: warning: duplicate "
                            "key: line 2 sets it first");
    free(report);
    dn_cfg_free(cfg);
}

/* dn_sec_warn: once per key, printed by the check, never an error. */
static void test_warnings_print_once(void **state)
{
    dn_cfg *cfg;
    dn_error err = {{0}};
    assert_int_equal(dn_cfg_parse_string("[net]\nlearning_rate=50\n", "w.cfg",
                                         &cfg, &err), 0);
    dn_section *net = dn_cfg_find(cfg, "net");
    dn_sec_kv(net, "learning_rate");
    dn_sec_warn(net, "learning_rate", "first %d", 1);
    dn_sec_warn(net, "learning_rate", "second");
    dn_sec_warn(net, "absent", "never shown");
    char *report = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&report, &len);
    assert_int_equal(dn_cfg_check_unused(cfg, 1, f, &err), 0);
    fclose(f);
    assert_string_equal(report, "w.cfg:2: [net] learning_rate: warning: "
                                "first 1\n");
    free(report);
    dn_cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_darknet_cfgs_parse),
        cmocka_unit_test(test_bad_input_names_file_line_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_good_input),
        cmocka_unit_test(test_only_regular_files_are_read),
        cmocka_unit_test(test_duplicate_keys_are_all_checked),
        cmocka_unit_test(test_duplicate_keys_are_reported),
        cmocka_unit_test(test_warnings_print_once),
        cmocka_unit_test(test_set_replaces_and_adds),
        cmocka_unit_test(test_set_malformed),
        cmocka_unit_test(test_overlay),
        cmocka_unit_test(test_overlay_rejects_other_sections),
        cmocka_unit_test(test_copy_keeps_overrides_and_sources),
        cmocka_unit_test(test_unknown_override_key_is_an_error),
        cmocka_unit_test(test_strict_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
