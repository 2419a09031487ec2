/*
 * test_keys.c - darknet/src/keys.c and the key tables of every module: each
 * key documented, defaults within range, no name twice in a table, keys
 * shared by [net] tables agreeing; reading through a table; unknown keys
 * still warned about and refused; a key given twice keeping its first value
 * with a warning naming both lines; `darknet lr` accepting every known key;
 * docs/keys.md current.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "keys.h"
#include "testutil.h"

#define MAX_TABLES 64

static int tables(dn_key_table *t)
{
    int n = dn_key_tables(t, MAX_TABLES);
    assert_true(n > 0 && n <= MAX_TABLES);
    return n;
}

static void test_every_key_documented(void **state)
{
    dn_key_table t[MAX_TABLES];
    int n = tables(t);
    for (int i = 0; i < n; i++)
        for (const dn_key *k = t[i].keys; k->name; k++) {
            if (!k->doc || strlen(k->doc) < 8 || !k->def)
                fail_msg("[%s] %s: no meaning or default", t[i].section,
                         k->name);
            if (k->type == DN_KEY_CHOICE && (!k->choices || !k->choices[0]))
                fail_msg("[%s] %s: a choice without values", t[i].section,
                         k->name);
        }
}

static void test_every_layer_type_has_a_table(void **state)
{
    const dn_layer_type *type;
    int n = 0;
    for (; (type = dn_layer_type_at(n)); n++)
        if (!type->keys)
            fail_msg("[%s] has no key table (dn_no_keys when it reads none)",
                     type->name);
    assert_true(n >= 12);
}

static int is_choice(const dn_key *k, const char *v)
{
    for (int i = 0; k->choices[i]; i++)
        if (strcmp(k->choices[i], v) == 0)
            return 1;
    return 0;
}

/* A default is a number in range, one of the choices, "" (none) or
 * "(text)" (computed when the cfg is read). */
static void test_defaults_within_range(void **state)
{
    dn_key_table t[MAX_TABLES];
    int n = tables(t);
    for (int i = 0; i < n; i++)
        for (const dn_key *k = t[i].keys; k->name; k++) {
            if (!*k->def || k->def[0] == '(')
                continue;
            double d;
            if (k->type == DN_KEY_CHOICE) {
                if (!is_choice(k, k->def))
                    fail_msg("[%s] %s: default %s is not a choice",
                             t[i].section, k->name, k->def);
            } else if (k->type == DN_KEY_INT || k->type == DN_KEY_FLOAT) {
                if (dn_key_default(k, &d) || d < k->lo || d > k->hi ||
                    (k->type == DN_KEY_INT && d != (double)(long)d))
                    fail_msg("[%s] %s: default %s outside %g..%g",
                             t[i].section, k->name, k->def, k->lo, k->hi);
            }
        }
}

static void test_no_name_twice_in_a_table(void **state)
{
    dn_key_table t[MAX_TABLES];
    int n = tables(t);
    for (int i = 0; i < n; i++)
        for (const dn_key *a = t[i].keys; a->name; a++)
            for (const dn_key *b = a + 1; b->name; b++)
                if (strcmp(a->name, b->name) == 0)
                    fail_msg("[%s] %s: twice in the %s table", t[i].section,
                             a->name, t[i].title);
}

/* A [net] key in two tables (learning_rate in the schedule's and every
 * scheduler's) is one key: the same type and default. */
static void test_shared_net_keys_agree(void **state)
{
    dn_key_table t[MAX_TABLES];
    int n = tables(t);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (strcmp(t[i].section, t[j].section))
                continue;
            for (const dn_key *a = t[i].keys; a->name; a++) {
                const dn_key *b = dn_key_in(t[j].keys, a->name);
                if (b && (a->type != b->type || strcmp(a->def, b->def)))
                    fail_msg("%s: %s and %s disagree", a->name, t[i].title,
                             t[j].title);
            }
        }
}

/* Default and range come from the entry; errors name file, line, section
 * and key; a required key missing is an error. */
static void test_read_through_the_table(void **state)
{
    static const dn_key keys[] = {
        DN_INT("size", "3", 1, 9, "a size for this test"),
        DN_FLOAT("rate", "0.5", 0, 1, "a rate for this test"),
        DN_INT("from", "", -5, 5, "a required key for this test"),
        DN_KEYS_END,
    };
    dn_cfg *cfg;
    dn_error err = {{0}};
    assert_int_equal(dn_cfg_parse_string("[x]\nrate=2\n", "k.cfg", &cfg, &err), 0);
    dn_section *s = &cfg->sections[0];
    long size;
    double rate;
    assert_int_equal(dn_key_int(s, keys, "size", &size, &err), 0);
    assert_int_equal(size, 3);
    assert_int_equal(dn_key_double(s, keys, "rate", &rate, &err), -1);
    assert_contains(err.msg, "k.cfg:2: [x] rate: expected a number in [0, 1], "
                             "got \"2\"");
    assert_int_equal(dn_key_int(s, keys, "from", &size, &err), -1);
    assert_contains(err.msg, "k.cfg:1: [x] from: required");
    dn_cfg_free(cfg);
}

static const char *check(const char *text, int strict, int *rc)
{
    static char report[4096];
    dn_cfg *cfg;
    dn_error err = {{0}};
    assert_int_equal(dn_cfg_parse_string(text, "u.cfg", &cfg, &err), 0);
    dn_schedule *sched;
    assert_int_equal(dn_schedule_parse(&cfg->sections[0], &sched, &err), 0);
    FILE *f = fmemopen(report, sizeof report, "w");
    *rc = dn_cfg_check_unused(cfg, strict, f, &err);
    fclose(f);
    if (*rc)
        snprintf(report, sizeof report, "%s", err.msg);
    dn_schedule_free(sched);
    dn_cfg_free(cfg);
    return report;
}

static void test_unknown_keys_warned_and_refused(void **state)
{
    int rc;
    const char *r = check("[net]\nlearning_rate=0.1\nlerning_rate=0.2\n", 0, &rc);
    assert_int_equal(rc, 0);
    assert_contains(r, "u.cfg:3: [net] lerning_rate: warning: unused key (no "
                       "[net] option reads it); did you mean learning_rate?");
    r = check("[net]\nlerning_rate=0.2\n", 1, &rc);
    assert_int_equal(rc, -1);
    assert_contains(r, "u.cfg:2: [net] lerning_rate: unknown key");
    /* known, but not read by this policy */
    r = check("[net]\npolicy=constant\nsteps=4\n", 0, &rc);
    assert_int_equal(rc, 0);
    assert_contains(r, "u.cfg:3: [net] steps: warning: unused key (no [net] "
                       "option reads it); it is a known key, but these "
                       "settings do not use it");
}

/* Darknet's option_find keeps the first; the repeat names both lines. */
static void test_duplicate_key_keeps_the_first(void **state)
{
    dn_cfg *cfg;
    dn_error err = {{0}};
    assert_int_equal(dn_cfg_parse_string("[net]\nlearning_rate=0.1\n"
                                         "learning_rate=0.2\n",
                                         "d.cfg", &cfg, &err), 0);
    dn_schedule *sched;
    assert_int_equal(dn_schedule_parse(&cfg->sections[0], &sched, &err), 0);
    dn_clock c = dn_clock_at(0, 1, 1, 0);
    assert_true(dn_schedule_rate(sched, &c) == 0.1);
    char report[1024] = "";
    FILE *f = fmemopen(report, sizeof report, "w");
    assert_int_equal(dn_cfg_check_unused(cfg, 0, f, &err), 0);
    fclose(f);
    assert_contains(report, "d.cfg:3: [net] learning_rate: warning: duplicate "
                            "key: line 2 sets it first, and the first value "
                            "is the one used");
    assert_int_equal(dn_cfg_check_unused(cfg, 1, NULL, &err), -1);
    assert_contains(err.msg, "d.cfg:3: [net] learning_rate: duplicate key: "
                             "line 2 sets it first");
    dn_schedule_free(sched);
    dn_cfg_free(cfg);
}

#define LR_CFG "[net]\nbatch=10\nlearning_rate=0.1\npolicy=constant\n" \
               "max_batches=5\nbn_momentum=0.02\nflip=1\ntf32=0\n"     \
               "conv_backend=im2col\n"

/* Keys only training reads are accepted by darknet lr, from the cfg and
 * from -set; an unknown one is still refused. */
static void test_lr_accepts_every_known_key(void **state)
{
    const char *cfg = tu_write_file("lr.cfg", LR_CFG);
    char *csv = tu_tmp_path("lr.csv");
    const char *errs;
    const char *strict[] = {"lr", cfg, "-strict", "-csv", csv, NULL};
    assert_int_equal(tu_run_cmd(dn_cmd_lr, strict, NULL, &errs), 0);
    assert_null(strstr(errs, "warning"));
    const char *set[] = {"lr", cfg, "-set", "crop_pad=4", "-set",
                         "zca_epsilon=0.1", "-csv", csv, NULL};
    assert_int_equal(tu_run_cmd(dn_cmd_lr, set, NULL, &errs), 0);
    const char *typo[] = {"lr", cfg, "-set", "crop_padd=4", "-csv", csv, NULL};
    assert_int_not_equal(tu_run_cmd(dn_cmd_lr, typo, NULL, &errs), 0);
    assert_contains(errs, "-set: [net] crop_padd: unknown key");
    assert_contains(errs, "did you mean crop_pad?");
    const char *bad[] = {"lr", cfg, "-set", "flip=2", "-csv", csv, NULL};
    assert_int_not_equal(tu_run_cmd(dn_cmd_lr, bad, NULL, &errs), 0);
    assert_contains(errs, "[net] flip: expected an integer in [0, 1]");
}

/* docs/keys.md is what make keys-doc writes now. */
static void test_keys_doc_is_current(void **state)
{
    char *now = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&now, &n);
    dn_keys_markdown(f);
    fclose(f);
    FILE *doc = fopen("docs/keys.md", "rb");
    if (!doc)
        fail_msg("docs/keys.md is missing: run make keys-doc (from the "
                 "repository root)");
    char *old = calloc(n + 2, 1);
    size_t got = fread(old, 1, n + 1, doc);
    fclose(doc);
    if (got != n || memcmp(old, now, n) != 0) {
        free(old);
        free(now);
        fail_msg("docs/keys.md is stale: run make keys-doc and commit it");
    }
    free(old);
    free(now);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_documented),
        cmocka_unit_test(test_every_layer_type_has_a_table),
        cmocka_unit_test(test_defaults_within_range),
        cmocka_unit_test(test_no_name_twice_in_a_table),
        cmocka_unit_test(test_shared_net_keys_agree),
        cmocka_unit_test(test_read_through_the_table),
        cmocka_unit_test(test_unknown_keys_warned_and_refused),
        cmocka_unit_test(test_duplicate_key_keeps_the_first),
        cmocka_unit_test(test_lr_accepts_every_known_key),
        cmocka_unit_test(test_keys_doc_is_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
