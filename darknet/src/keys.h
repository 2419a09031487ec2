/*
 * keys.h - the cfg keys, one table per module that reads them.
 *
 * A module declares the keys it owns in one table of dn_key: name, type,
 * default, range or allowed values, one line of meaning. The module reads
 * its keys through that table (dn_key_int(s, table, "batch", ...)), so the
 * default and range exist once; the unused-key check (cfg.c), `darknet lr`
 * and docs/keys.md (make keys-doc) read the same tables through the
 * registry below. Tables end with an entry whose name is NULL.
 *
 *   [net]   network.c, schedule.c, train_keys.c, augment.c, and one table per
 *           built-in scheduler (plugins/, see builtin.h)
 *   .data   data.c
 *   layers  each dn_layer_type's .keys (an empty table when it has none)
 *
 * A key missing from its table is a bug of this program: the getters
 * print it and abort.
 */
#ifndef DN_KEYS_H
#define DN_KEYS_H

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"

#ifdef __cplusplus /* layer_util.h includes it into the GPU twins */
extern "C" {
#endif

typedef enum dn_key_type {
    DN_KEY_INT,    /* an integer in [lo, hi] */
    DN_KEY_FLOAT,  /* a finite number in [lo, hi] */
    DN_KEY_STRING, /* text: a path, a name */
    DN_KEY_CHOICE, /* one of choices */
    DN_KEY_INTS,   /* comma-separated integers */
    DN_KEY_FLOATS, /* comma-separated numbers */
    DN_KEY_BYTES,  /* a byte count, suffixes K, M, G, T */
} dn_key_type;

struct dn_key {
    const char *name;
    dn_key_type type;
    /* The default as a cfg writes it. "" : none (the key is optional and
     * its absence means something, or it is required); "(text)": computed
     * when the cfg is read, text saying from what; the module passes the
     * value to a *_def getter. */
    const char *def;
    double lo, hi;              /* INT, FLOAT; HUGE_VAL: no bound */
    const char *const *choices; /* CHOICE: NULL-terminated */
    const char *doc;            /* one line */
};

#define DN_INT(n, d, lo, hi, doc) {n, DN_KEY_INT, d, lo, hi, NULL, doc}
#define DN_FLOAT(n, d, lo, hi, doc) {n, DN_KEY_FLOAT, d, lo, hi, NULL, doc}
#define DN_STRING(n, d, doc) {n, DN_KEY_STRING, d, 0, 0, NULL, doc}
#define DN_CHOICE(n, d, c, doc) {n, DN_KEY_CHOICE, d, 0, 0, c, doc}
#define DN_INTS(n, doc) {n, DN_KEY_INTS, "", 0, 0, NULL, doc}
#define DN_FLOATS(n, doc) {n, DN_KEY_FLOATS, "", 0, 0, NULL, doc}
#define DN_BYTES(n, d, doc) {n, DN_KEY_BYTES, d, 0, 0, NULL, doc}
#define DN_KEYS_END {NULL, DN_KEY_INT, NULL, 0, 0, NULL, NULL}
/* No upper (or lower) bound; as an integer bound, LONG_MAX (LONG_MIN). */
#define DN_NO_LIMIT HUGE_VAL

/* A layer type without keys points at this empty table. */
extern const dn_key dn_no_keys[];

/* The entry of name in table, or NULL. Inline: the built-in schedulers
 * call nothing in the host (plugins/builtin.h). */
static inline const dn_key *dn_key_in(const dn_key *table, const char *name)
{
    for (; table && table->name; table++)
        if (strcmp(table->name, name) == 0)
            return table;
    return NULL;
}

/* The default of an INT or FLOAT entry as a number: 0 with *out set, -1
 * when it is "" or computed. */
static inline int dn_key_default(const dn_key *k, double *out)
{
    char *end;
    if (!k->def || !*k->def || *k->def == '(')
        return -1;
    errno = 0;
    *out = strtod(k->def, &end);
    return end == k->def || *end || errno ? -1 : 0;
}

/* ---------------------------------------------------------------- getters */

/* As the dn_sec_* getters (first occurrence, every occurrence checked, the
 * key marked used, errors "path:line: [section] key: ..."), with the
 * default and range of name's entry in table. A key whose default is ""
 * is required by dn_key_int/dn_key_double: missing, it is an error. */
int dn_key_int(dn_section *s, const dn_key *table, const char *name,
               long *out, dn_error *err);
int dn_key_double(dn_section *s, const dn_key *table, const char *name,
                  double *out, dn_error *err);
/* The same for a computed default (an entry whose def is "(...)"). */
int dn_key_int_def(dn_section *s, const dn_key *table, const char *name,
                   long def, long *out, dn_error *err);
int dn_key_double_def(dn_section *s, const dn_key *table, const char *name,
                      double def, double *out, dn_error *err);
/* STRING (or CHOICE read as text): def "" gives NULL when missing. */
int dn_key_string(dn_section *s, const dn_key *table, const char *name,
                  const char **out, dn_error *err);
/* CHOICE: the index of the value in the entry's choices. */
int dn_key_choice(dn_section *s, const dn_key *table, const char *name,
                  int *index, dn_error *err);
int dn_key_ints(dn_section *s, const dn_key *table, const char *name,
                long *out, int max, int *n, dn_error *err);
int dn_key_doubles(dn_section *s, const dn_key *table, const char *name,
                   double *out, int max, int *n, dn_error *err);
/* The raw first occurrence (marked used) of a key the module parses
 * itself (BYTES, a list of layer indices), or NULL. */
dn_kv *dn_key_kv(dn_section *s, const dn_key *table, const char *name);

/* --------------------------------------------------------------- registry */

typedef struct dn_key_table {
    const char *section; /* "net", "data" or a layer type's name */
    const char *title;   /* "network", "schedule: policy=steps", ... */
    const dn_key *keys;
    int schedule;        /* read by dn_schedule_parse (darknet lr reads it) */
} dn_key_table;

/* Every table: [net]'s, then .data's, then each layer type's. Returns the
 * count; fills at most max. */
int dn_key_tables(dn_key_table *out, int max);
/* The entry of name in the tables of a section: section 0 of a cfg with
 * type net/network is [net] (net set), "data" the .data file, any other
 * type a layer's. NULL for an unknown key (or section type). */
const dn_key *dn_key_known(const char *type, int net, const char *name);
/* The known key of that section nearest to name (a typo), or NULL. */
const char *dn_key_nearest(const char *type, int net, const char *name);
/* Marks the keys of table present in s as read: keys a command validates
 * and accepts without using them (darknet lr: what only training reads). */
void dn_key_mark(dn_section *s, const dn_key *table);

/* The built-in schedulers' tables (schedule.c): name and keys of the i-th,
 * 0 past the end. */
int dn_schedule_builtin_keys(int i, const char **name, const dn_key **keys);
/* The module tables of [net] and .data. */
extern const dn_key dn_net_keys[];      /* network.c */
extern const dn_key dn_schedule_keys[]; /* schedule.c */
extern const dn_key dn_train_keys[];    /* train_keys.c */
extern const dn_key dn_augment_keys[];  /* augment.c */
extern const dn_key dn_data_keys[];     /* data.c */

/* docs/keys.md, as make keys-doc writes it. */
void dn_keys_markdown(FILE *out);

#ifdef __cplusplus
}
#endif

#endif
