/*
 * test_registry.c - every registered layer type is tested
 * (darknet/src/layers.c's registry against the test tables).
 *
 * It walks the registry (dn_layer_type_count, dn_layer_type_at) and fails
 * for a type that
 *   - has no gradient-check case: no row of a table in `grad_tables`
 *     whose cfg has a [name] section;
 *   - has a GPU twin (type->gpu; set in GPU builds) with a function
 *     missing, or no CPU/GPU parity case in `parity_tables`.
 * The tables are read as the test sources they are (this program runs from
 * the repository root, as make test runs it): a table is the text from its
 * declaration to the "};" that ends it, and a case names its section
 * literally ("[name]\n" in its cfg string). Adding a layer to the registry
 * without cases fails here; a new table of cases is one more row below.
 *
 * It also checks that placing a network on a device refuses a type
 * without a twin.
 *
 * make test runs it in the CPU build (gradient checks) and, from
 * tests/gpu, in the GPU builds (where the twins are set: parity cases).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct case_table {
    const char *path;  /* from the repository root */
    const char *start; /* the table's declaration, as written */
} case_table;

static const case_table grad_tables[] = {
    {"tests/test_layers.c", "static const layer_case cases[] = {"},
    {"tests/test_conv_layers.c", "static const gc_case grad_cases[] = {"},
    {"tests/test_attention.c", "static const gc_entry gc_cases[] = {"},
};

static const case_table parity_tables[] = {
    {"tests/gpu/test_gpu_layers.c", "static const parity_case cases[] = {"},
};

#define N_OF(a) (sizeof (a) / sizeof *(a))

/* The text of a table (malloc'd), or NULL with a message. */
static char *table_text(const case_table *t)
{
    FILE *f = fopen(t->path, "rb");
    if (!f) {
        print_error("%s: cannot open (run from the repository root)\n",
                    t->path);
        return NULL;
    }
    char *src = NULL;
    size_t n = 0, cap = 0;
    for (int c; (c = fgetc(f)) != EOF;) {
        if (n + 2 > cap && !(src = realloc(src, cap = cap ? 2 * cap : 65536)))
            abort();
        src[n++] = (char)c;
    }
    fclose(f);
    if (!src)
        return NULL;
    src[n] = '\0';
    const char *begin = strstr(src, t->start);
    const char *end = begin ? strstr(begin, "\n};") : NULL;
    if (!begin || !end) {
        print_error("%s: no table \"%s\" ending in \"};\"\n", t->path,
                    t->start);
        free(src);
        return NULL;
    }
    char *text = strndup(begin, (size_t)(end - begin));
    free(src);
    return text;
}

/* The files of one kind, each table's text; NULL entries fail the test. */
typedef struct kind {
    const char *what; /* "gradient-check", "CPU/GPU parity" */
    const case_table *tables;
    size_t n;
    char *text[8];
} kind;

static kind grad = {"gradient-check", grad_tables, N_OF(grad_tables), {0}};
static kind parity = {"CPU/GPU parity", parity_tables, N_OF(parity_tables),
                      {0}};

static int load(kind *k)
{
    int ok = 1;
    for (size_t i = 0; i < k->n; i++)
        ok &= (k->text[i] = table_text(&k->tables[i])) != NULL;
    return ok ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    return load(&grad) || load(&parity) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < grad.n; i++)
        free(grad.text[i]);
    for (size_t i = 0; i < parity.n; i++)
        free(parity.text[i]);
    return 0;
}

/* Where a case of layer type `name` is, or NULL. */
static const char *find_case(const kind *k, const char *name)
{
    char section[96];
    snprintf(section, sizeof section, "[%s]\\n", name);
    for (size_t i = 0; i < k->n; i++)
        if (strstr(k->text[i], section))
            return k->tables[i].path;
    return NULL;
}

static int require_case(const kind *k, const dn_layer_type *t)
{
    const char *where = find_case(k, t->name);
    if (where) {
        printf("  [%s]: %s cases in %s\n", t->name, k->what, where);
        return 1;
    }
    printf("  [%s]: no %s case: add one to", t->name, k->what);
    for (size_t i = 0; i < k->n; i++)
        printf(" %s", k->tables[i].path);
    printf("\n");
    return 0;
}

static void test_every_type_has_a_gradient_check(void **state)
{
    (void)state;
    int ok = 1;
    assert_true(dn_layer_type_count() > 0);
    for (int i = 0; i < dn_layer_type_count(); i++)
        ok &= require_case(&grad, dn_layer_type_at(i));
    assert_true(ok);
}

/* All four functions of a twin, or no twin (dn_layer_gpu_ops). */
static void test_every_twin_is_complete(void **state)
{
    (void)state;
    int ok = 1;
    for (int i = 0; i < dn_layer_type_count(); i++) {
        const dn_layer_type *t = dn_layer_type_at(i);
        const dn_layer_gpu_ops *g = t->gpu;
        if (g && !(g->make && g->forward && g->backward && g->free)) {
            printf("  [%s]: its GPU twin lacks a function\n", t->name);
            ok = 0;
        }
    }
    assert_true(ok);
}

static void test_every_twin_has_a_parity_case(void **state)
{
    (void)state;
    int ok = 1, twins = 0;
    for (int i = 0; i < dn_layer_type_count(); i++) {
        const dn_layer_type *t = dn_layer_type_at(i);
        if (t->gpu) {
            twins++;
            ok &= require_case(&parity, t);
        }
    }
    if (!twins)
        printf("  no type has a GPU twin in this build (a CPU build)\n");
    assert_true(ok);
}

/* Placement refuses a layer whose type has no twin, naming it, before it
 * touches a device (a CPU build refuses every device and says why). */
static void test_placement_refuses_a_type_without_twin(void **state)
{
    (void)state;
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    assert_int_equal(dn_cfg_parse_string("[net]\nbatch=2\ninputs=4\n"
                                         "[softmax]\n", "twin.cfg", &cfg,
                                         &err), 0);
    assert_int_equal(dn_net_make(cfg, NULL, &net, &err), 0);
    dn_layer_type no_twin = *net->layers[0].type;
    no_twin.gpu = NULL;
    const dn_layer_type *kept = net->layers[0].type;
    net->layers[0].type = &no_twin;
    dn_devices dev = {.n = 1, .ids = {0}};
    const int rc = dn_net_use_devices(net, &dev, &err);
    net->layers[0].type = kept;
    assert_int_equal(rc, -1);
    printf("  %s\n", err.msg);
    if (kept->gpu)
        assert_non_null(strstr(err.msg, "layer 0 [softmax] has no GPU "
                                        "implementation"));
    else
        assert_non_null(strstr(err.msg, "without GPU support"));
    assert_string_equal(dn_net_device_name(net), "CPU");
    dn_net_free(net);
}

/* The walk sees exactly the registry, and a name without cases is caught. */
static void test_the_walk_is_the_registry(void **state)
{
    (void)state;
    const int n = dn_layer_type_count();
    for (int i = 0; i < n; i++)
        assert_ptr_equal(dn_layer_type_find(dn_layer_type_at(i)->name),
                         dn_layer_type_at(i));
    assert_null(dn_layer_type_at(-1));
    assert_null(dn_layer_type_at(n));
    assert_null(find_case(&grad, "no_such_layer"));
    assert_null(find_case(&parity, "no_such_layer"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_walk_is_the_registry),
        cmocka_unit_test(test_every_type_has_a_gradient_check),
        cmocka_unit_test(test_every_twin_is_complete),
        cmocka_unit_test(test_every_twin_has_a_parity_case),
        cmocka_unit_test(test_placement_refuses_a_type_without_twin),
    };
    return cmocka_run_group_tests_name("registry", tests, setup, teardown);
}
