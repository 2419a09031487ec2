/*
 * keys.c - reading a key through its table entry, the registry of every
 * table, and the key reference (docs/keys.md) written from them.
 */
#include <limits.h>
#include <stdio.h>

#include "keys.h"

const dn_key dn_no_keys[] = {DN_KEYS_END};

static const char *type_name(dn_key_type t)
{
    static const char *const names[] = {
        "integer", "number", "string", "choice", "integers", "numbers",
        "bytes"};
    return names[t];
}

/* The entry of name, of one of two types; a missing or mistyped entry is
 * a bug of the caller, not of the cfg. */
static const dn_key *entry(const dn_key *table, const char *name,
                           dn_key_type t1, dn_key_type t2)
{
    const dn_key *k = dn_key_in(table, name);
    if (k && (k->type == t1 || k->type == t2))
        return k;
    fprintf(stderr, "darknet: bug: key %s is %s its table as %s\n", name,
            k ? "not typed in" : "missing from", k ? type_name(t1) : "read");
    abort();
}

static long to_long(double x)
{
    if (x <= (double)LONG_MIN)
        return LONG_MIN;
    if (x >= (double)LONG_MAX)
        return LONG_MAX;
    return (long)x;
}

/* A required key (default "") that is missing. */
static int required(dn_section *s, const dn_key *k, dn_error *err)
{
    return dn_fail(err, "%s:%d: [%s] %s: required (%s)", s->path, s->line,
                   s->type, k->name, k->doc);
}

static double fixed_default(const dn_key *k)
{
    double def;
    if (dn_key_default(k, &def)) {
        fprintf(stderr, "darknet: bug: key %s has the computed default %s: "
                "read it with a *_def getter\n", k->name, k->def);
        abort();
    }
    return def;
}

int dn_key_int_def(dn_section *s, const dn_key *table, const char *name,
                   long def, long *out, dn_error *err)
{
    const dn_key *k = entry(table, name, DN_KEY_INT, DN_KEY_INT);
    return dn_sec_int(s, name, def, to_long(k->lo), to_long(k->hi), out, err);
}

int dn_key_int(dn_section *s, const dn_key *table, const char *name,
               long *out, dn_error *err)
{
    const dn_key *k = entry(table, name, DN_KEY_INT, DN_KEY_INT);
    if (!*k->def && !dn_sec_has(s, name))
        return required(s, k, err);
    long def = *k->def ? to_long(fixed_default(k)) : 0;
    return dn_sec_int(s, name, def, to_long(k->lo), to_long(k->hi), out, err);
}

int dn_key_double_def(dn_section *s, const dn_key *table, const char *name,
                      double def, double *out, dn_error *err)
{
    const dn_key *k = entry(table, name, DN_KEY_FLOAT, DN_KEY_FLOAT);
    return dn_sec_double(s, name, def, k->lo, k->hi, out, err);
}

int dn_key_double(dn_section *s, const dn_key *table, const char *name,
                  double *out, dn_error *err)
{
    const dn_key *k = entry(table, name, DN_KEY_FLOAT, DN_KEY_FLOAT);
    if (!*k->def && !dn_sec_has(s, name))
        return required(s, k, err);
    double def = *k->def ? fixed_default(k) : 0;
    return dn_sec_double(s, name, def, k->lo, k->hi, out, err);
}

int dn_key_string(dn_section *s, const dn_key *table, const char *name,
                  const char **out, dn_error *err)
{
    const dn_key *k = entry(table, name, DN_KEY_STRING, DN_KEY_CHOICE);
    return dn_sec_string(s, name, *k->def ? k->def : NULL, out, err);
}

int dn_key_choice(dn_section *s, const dn_key *table, const char *name,
                  int *index, dn_error *err)
{
    const dn_key *k = entry(table, name, DN_KEY_CHOICE, DN_KEY_CHOICE);
    return dn_sec_choice(s, name, k->def, k->choices, index, err);
}

int dn_key_ints(dn_section *s, const dn_key *table, const char *name,
                long *out, int max, int *n, dn_error *err)
{
    entry(table, name, DN_KEY_INTS, DN_KEY_INTS);
    return dn_sec_ints(s, name, out, max, n, err);
}

int dn_key_doubles(dn_section *s, const dn_key *table, const char *name,
                   double *out, int max, int *n, dn_error *err)
{
    entry(table, name, DN_KEY_FLOATS, DN_KEY_FLOATS);
    return dn_sec_doubles(s, name, out, max, n, err);
}

dn_kv *dn_key_kv(dn_section *s, const dn_key *table, const char *name)
{
    if (!dn_key_in(table, name))
        entry(table, name, DN_KEY_INT, DN_KEY_INT); /* aborts */
    return dn_sec_kv(s, name);
}

void dn_key_mark(dn_section *s, const dn_key *table)
{
    for (const dn_key *k = table; k->name; k++)
        if (dn_sec_has(s, k->name))
            dn_sec_kv(s, k->name);
}

/* --------------------------------------------------------------- registry */

int dn_key_tables(dn_key_table *out, int max)
{
    const dn_key_table fixed[] = {
        {"net", "network", dn_net_keys, 0},
        {"net", "schedule", dn_schedule_keys, 1},
        {"net", "training", dn_train_keys, 0},
        {"net", "preprocessing and augmentation", dn_augment_keys, 0},
    };
    static char titles[64][80];
    int n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++, n++)
        if (n < max)
            out[n] = fixed[i];
    const char *name;
    const dn_key *keys;
    for (int i = 0; dn_schedule_builtin_keys(i, &name, &keys); i++, n++)
        if (n < max) {
            snprintf(titles[i % 64], sizeof titles[0], "scheduler: policy=%s",
                     name);
            out[n] = (dn_key_table){"net", titles[i % 64], keys, 1};
        }
    if (n < max)
        out[n] = (dn_key_table){"data", ".data file", dn_data_keys, 0};
    n++;
    const dn_layer_type *t;
    for (int i = 0; (t = dn_layer_type_at(i)); i++, n++)
        if (n < max)
            out[n] = (dn_key_table){t->name, t->name, t->keys, 0};
    return n;
}

#define MAX_TABLES 64

/* Calls fn on every entry of the tables of a section; stops at nonzero. */
static const dn_key *each_key(const char *type, int net,
                              int (*fn)(const dn_key *k, void *ctx), void *ctx)
{
    dn_key_table tables[MAX_TABLES];
    int n = dn_key_tables(tables, MAX_TABLES);
    const char *want = net ? "net" : type;
    for (int i = 0; i < n && i < MAX_TABLES; i++) {
        if (strcmp(tables[i].section, want) != 0)
            continue;
        if (!net && strcmp(want, "net") == 0)
            continue; /* a [net] section that is not the first */
        for (const dn_key *k = tables[i].keys; k && k->name; k++)
            if (fn(k, ctx))
                return k;
    }
    return NULL;
}

static int same_name(const dn_key *k, void *name)
{
    return strcmp(k->name, name) == 0;
}

const dn_key *dn_key_known(const char *type, int net, const char *name)
{
    return each_key(type, net, same_name, (void *)name);
}

/* Levenshtein distance of two short strings (longer ones: far). */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

typedef struct nearest_ctx {
    const char *name;
    const char *best;
    int best_d;
} nearest_ctx;

static int nearer(const dn_key *k, void *ctx)
{
    nearest_ctx *c = ctx;
    int d = distance(c->name, k->name);
    if (d < c->best_d)
        c->best_d = d, c->best = k->name;
    return 0;
}

const char *dn_key_nearest(const char *type, int net, const char *name)
{
    nearest_ctx c = {name, NULL, 3}; /* at most two edits away */
    each_key(type, net, nearer, &c);
    return (int)strlen(name) > c.best_d ? c.best : NULL;
}

/* ------------------------------------------------------------------ docs */

/* "[1, 1048576]", ">= 0", "any" */
static void range_text(const dn_key *k, char *buf, size_t n)
{
    if (k->type == DN_KEY_CHOICE) {
        size_t used = 0;
        buf[0] = '\0';
        for (int i = 0; k->choices[i] && used < n; i++)
            used += snprintf(buf + used, n - used, "%s%s", i ? ", " : "",
                             k->choices[i]);
        return;
    }
    if (k->type != DN_KEY_INT && k->type != DN_KEY_FLOAT) {
        snprintf(buf, n, "-");
        return;
    }
    int has_lo = isfinite(k->lo) && k->lo > -9e18;
    int has_hi = isfinite(k->hi) && k->hi < 9e18;
    const char *fmt_lo = k->type == DN_KEY_INT ? "%.0f" : "%g";
    char lo[40], hi[40];
    snprintf(lo, sizeof lo, fmt_lo, k->lo);
    snprintf(hi, sizeof hi, fmt_lo, k->hi);
    if (has_lo && has_hi)
        snprintf(buf, n, "[%s, %s]", lo, hi);
    else if (has_lo)
        snprintf(buf, n, ">= %s", lo);
    else if (has_hi)
        snprintf(buf, n, "<= %s", hi);
    else
        snprintf(buf, n, "any");
}

/* A table cell: '|' escaped. */
static void cell(FILE *out, const char *text)
{
    fputs(" ", out);
    for (; *text; text++) {
        if (*text == '|')
            fputc('\\', out);
        fputc(*text, out);
    }
    fputs(" |", out);
}

void dn_keys_markdown(FILE *out)
{
    dn_key_table tables[MAX_TABLES];
    int n = dn_key_tables(tables, MAX_TABLES);
    fprintf(out,
            "# Cfg keys\n\n"
            "Generated by `make keys-doc` from the key tables (one per module,\n"
            "see `darknet/src/keys.h`); do not edit by hand. The parser, the\n"
            "unused-key check and `darknet lr` read the same tables.\n\n"
            "A key given twice in one section keeps its first value (as\n"
            "Darknet's `option_find` does); the repeat is warned about with both\n"
            "lines, and is an error under `-strict`. A default in parentheses\n"
            "is computed when the cfg is read; an empty one means the key has\n"
            "no default (it is required where the module needs it).\n");
    const char *section = "";
    for (int i = 0; i < n && i < MAX_TABLES; i++) {
        const dn_key_table *t = &tables[i];
        if (strcmp(t->section, section) != 0) {
            section = t->section;
            if (strcmp(section, "net") == 0)
                fprintf(out, "\n## [net]\n");
            else if (strcmp(section, "data") == 0)
                fprintf(out, "\n## .data file\n");
            else
                fprintf(out, "\n## [%s]\n", section);
        }
        if (strcmp(t->section, "net") == 0)
            fprintf(out, "\n### %s\n", t->title);
        if (!t->keys || !t->keys->name) {
            fprintf(out, "\nNo keys.\n");
            continue;
        }
        fprintf(out, "\n| key | type | default | range or values | meaning |\n"
                     "|---|---|---|---|---|\n");
        for (const dn_key *k = t->keys; k->name; k++) {
            char range[512];
            range_text(k, range, sizeof range);
            fprintf(out, "| `%s` |", k->name);
            cell(out, type_name(k->type));
            cell(out, k->def);
            cell(out, range);
            cell(out, k->doc);
            fputc('\n', out);
        }
    }
}
