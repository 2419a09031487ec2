/*
 * cfg.c - Darknet cfg files: [section] headers, key=value lines, '#' and ';'
 * comment lines, blank lines, whitespace around '='. Sections keep file
 * order. Unlike Darknet, a line that is neither is an error naming file and
 * line (Darknet prints and carries on), numbers must parse completely
 * (Darknet's atoi("77foo") is 77), and keys no layer reads are reported.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "xalloc.h"
#include "file.h"
#include "keys.h"

/* A cfg larger than this is refused before it is read (Darknet's largest
 * cfgs are under 100 KB). */
#define MAX_CFG_BYTES (64L << 20)

/* Strip leading and trailing whitespace in place. */
char *dn_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static const char *intern_path(dn_cfg *cfg, const char *path)
{
    for (int i = 0; i < cfg->n_paths; i++)
        if (strcmp(cfg->paths[i], path) == 0)
            return cfg->paths[i];
    char **p = dn_xrealloc(cfg->paths, (cfg->n_paths + 1) * sizeof *p);
    cfg->paths = p;
    p[cfg->n_paths] = dn_xstrdup(path);
    return p[cfg->n_paths++];
}

static dn_section *add_section(dn_cfg *cfg, const char *type, int line,
                               const char *path)
{
    if (cfg->n_sections == cfg->cap_sections) {
        int cap = cfg->cap_sections ? 2 * cfg->cap_sections : 16;
        dn_section *s = dn_xrealloc(cfg->sections, cap * sizeof *s);
        cfg->sections = s;
        cfg->cap_sections = cap;
    }
    dn_section *s = &cfg->sections[cfg->n_sections++];
    memset(s, 0, sizeof *s);
    s->type = dn_xstrdup(type);
    s->line = line;
    s->path = path;
    return s;
}

static dn_kv *add_kv(dn_section *s, const char *key, const char *value,
                     int line, const char *src)
{
    if (s->n_kv == s->cap_kv) {
        int cap = s->cap_kv ? 2 * s->cap_kv : 8;
        dn_kv *k = dn_xrealloc(s->kvs, cap * sizeof *k);
        s->kvs = k;
        s->cap_kv = cap;
    }
    dn_kv *kv = &s->kvs[s->n_kv++];
    memset(kv, 0, sizeof *kv);
    kv->key = dn_xstrdup(key);
    kv->value = dn_xstrdup(value);
    kv->line = line;
    kv->src = src;
    return kv;
}

/* Parse text into cfg. flat: key=value lines only, in one [data] section. */
static int parse_text(dn_cfg *cfg, const char *text, const char *name,
                      int flat, dn_error *err)
{
    const char *path = intern_path(cfg, name);
    dn_section *cur = NULL;
    if (flat)
        cur = add_section(cfg, "data", 1, path);
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char *buf = dn_xmalloc(len + 1);
        memcpy(buf, p, len);
        buf[len] = '\0';
        p += len + (eol ? 1 : 0);
        lineno++;
        char *line = dn_trim(buf);
        int rc = 0;
        if (*line == '\0' || *line == '#' || *line == ';') {
            /* blank or comment */
        } else if (*line == '[' && !flat) {
            char *close = strchr(line, ']');
            char *type = NULL;
            if (close) {
                *close = '\0';
                type = dn_trim(line + 1);
            }
            if (!close || *type == '\0' || *dn_trim(close + 1) != '\0')
                rc = dn_fail(err, "%s:%d: error: malformed section header: %s",
                             name, lineno, line);
            else
                cur = add_section(cfg, type, lineno, path);
        } else {
            char *eq = strchr(line, '=');
            if (!eq) {
                rc = dn_fail(err, "%s:%d: error: expected key=value or [section], "
                             "got: %s", name, lineno, line);
            } else if (!cur) {
                rc = dn_fail(err, "%s:%d: error: key=value before the first "
                             "[section]: %s", name, lineno, line);
            } else {
                *eq = '\0';
                char *key = dn_trim(line), *value = dn_trim(eq + 1);
                if (*key == '\0')
                    rc = dn_fail(err, "%s:%d: [%s] error: empty key in: %s=%s",
                                 name, lineno, cur->type, key, value);
                else
                    add_kv(cur, key, value, lineno, path);
            }
        }
        free(buf);
        if (rc)
            return -1;
    }
    return 0;
}

static char *read_file(const char *path, dn_error *err)
{
    long long size;
    FILE *f = dn_fopen_regular(path, &size, err);
    if (!f)
        return NULL;
    if (size > MAX_CFG_BYTES) {
        fclose(f);
        dn_fail(err, "%s: %lld bytes: a cfg file may hold at most %ld", path,
                size, MAX_CFG_BYTES);
        return NULL;
    }
    /* one byte more than the size: a file that grew is noticed */
    size_t cap = (size_t)size + 2, n = 0;
    char *buf = dn_xmalloc(cap); /* at most MAX_CFG_BYTES + 2 */
    n = fread(buf, 1, cap - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n != (size_t)size) {
        free(buf);
        dn_fail(err, "%s: read error (%zu of %lld bytes%s)", path, n, size,
                bad ? "" : ": the file changed while it was read");
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        dn_fail(err, "%s: not a text file (contains NUL bytes)", path);
        return NULL;
    }
    return buf;
}

static int load(const char *path, int flat, dn_cfg **out, dn_error *err)
{
    *out = NULL;
    char *text = read_file(path, err);
    if (!text)
        return -1;
    dn_cfg *cfg = dn_xcalloc(1, sizeof *cfg);
    cfg->path = dn_xstrdup(path);
    int rc = parse_text(cfg, text, path, flat, err);
    free(text);
    if (rc) {
        dn_cfg_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

int dn_cfg_load(const char *path, dn_cfg **out, dn_error *err)
{
    return load(path, 0, out, err);
}

int dn_cfg_load_flat(const char *path, dn_cfg **out, dn_error *err)
{
    return load(path, 1, out, err);
}

int dn_cfg_parse_string(const char *text, const char *name, dn_cfg **out,
                        dn_error *err)
{
    dn_cfg *cfg = dn_xcalloc(1, sizeof *cfg);
    cfg->path = dn_xstrdup(name);
    if (parse_text(cfg, text, name, 0, err)) {
        dn_cfg_free(cfg);
        *out = NULL;
        return -1;
    }
    *out = cfg;
    return 0;
}

/* Each key of s, into d (empty); file names still point into src. */
static void copy_section(const dn_section *s, dn_section *d)
{
    d->line = s->line;
    d->path = s->path;
    d->type = dn_xstrdup(s->type);
    d->kvs = dn_xcalloc(s->n_kv ? s->n_kv : 1, sizeof *d->kvs);
    d->cap_kv = s->n_kv ? s->n_kv : 1;
    for (int j = 0; j < s->n_kv; j++) {
        dn_kv *kv = &d->kvs[d->n_kv++];
        *kv = s->kvs[j];
        kv->key = dn_xstrdup(s->kvs[j].key);
        kv->value = dn_xstrdup(s->kvs[j].value);
        kv->warning = s->kvs[j].warning ? dn_xstrdup(s->kvs[j].warning) : NULL;
    }
}

/* A replica of a network on several devices, and each training run, is
 * built from its own copy. */
dn_cfg *dn_cfg_clone(const dn_cfg *src)
{
    dn_cfg *c = dn_xcalloc(1, sizeof *c);
    c->path = dn_xstrdup(src->path);
    c->paths = dn_xcalloc(src->n_paths ? src->n_paths : 1, sizeof *c->paths);
    c->sections = dn_xcalloc(src->n_sections ? src->n_sections : 1,
                             sizeof *c->sections);
    c->cap_sections = src->n_sections ? src->n_sections : 1;
    for (; c->n_paths < src->n_paths; c->n_paths++)
        c->paths[c->n_paths] = dn_xstrdup(src->paths[c->n_paths]);
    for (; c->n_sections < src->n_sections; c->n_sections++)
        copy_section(&src->sections[c->n_sections],
                     &c->sections[c->n_sections]);
    /* file names point into the copy's own list */
    for (int p = 0; p < src->n_paths; p++)
        for (int i = 0; i < c->n_sections; i++) {
            dn_section *d = &c->sections[i];
            if (d->path == src->paths[p])
                d->path = c->paths[p];
            for (int j = 0; j < d->n_kv; j++)
                if (d->kvs[j].src == src->paths[p])
                    d->kvs[j].src = c->paths[p];
        }
    return c;
}

void dn_cfg_free(dn_cfg *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < cfg->n_sections; i++) {
        dn_section *s = &cfg->sections[i];
        for (int j = 0; j < s->n_kv; j++) {
            free(s->kvs[j].key);
            free(s->kvs[j].value);
            free(s->kvs[j].warning);
        }
        free(s->kvs);
        free(s->type);
    }
    free(cfg->sections);
    for (int i = 0; i < cfg->n_paths; i++)
        free(cfg->paths[i]);
    free(cfg->paths);
    free(cfg->path);
    free(cfg);
}

dn_section *dn_cfg_find(dn_cfg *cfg, const char *type)
{
    for (int i = 0; i < cfg->n_sections; i++)
        if (strcmp(cfg->sections[i].type, type) == 0)
            return &cfg->sections[i];
    return NULL;
}

static dn_section *net_section(dn_cfg *cfg)
{
    if (cfg->n_sections == 0)
        return NULL;
    dn_section *s = &cfg->sections[0];
    if (strcmp(s->type, "net") && strcmp(s->type, "network"))
        return NULL;
    return s;
}

/* Override key in [net] (every occurrence), or append it. */
static int set_net_key(dn_cfg *cfg, const char *key, const char *value,
                       int line, const char *src, dn_error *err)
{
    dn_section *net = net_section(cfg);
    if (!net)
        return dn_fail(err, "%s: error: no [net] section to override", cfg->path);
    int found = 0;
    for (int i = 0; i < net->n_kv; i++) {
        dn_kv *kv = &net->kvs[i];
        if (strcmp(kv->key, key) == 0) {
            free(kv->value);
            kv->value = dn_xstrdup(value);
            kv->line = line;
            kv->src = src;
            kv->override = 1;
            found = 1;
        }
    }
    if (!found) {
        add_kv(net, key, value, line, src)->override = 1;
    }
    return 0;
}

int dn_cfg_set(dn_cfg *cfg, const char *assignment, dn_error *err)
{
    char *copy = dn_xstrdup(assignment);
    char *eq = strchr(copy, '=');
    int rc;
    if (!eq) {
        rc = dn_fail(err, "-set %s: expected key=value", assignment);
    } else {
        *eq = '\0';
        char *key = dn_trim(copy), *value = dn_trim(eq + 1);
        if (*key == '\0' || *value == '\0')
            rc = dn_fail(err, "-set %s: expected key=value", assignment);
        else
            rc = set_net_key(cfg, key, value, 0, intern_path(cfg, "-set"), err);
    }
    free(copy);
    return rc;
}

int dn_cfg_overlay(dn_cfg *cfg, const char *overlay_path, dn_error *err)
{
    dn_cfg *ov;
    if (dn_cfg_load(overlay_path, &ov, err))
        return -1;
    int rc = 0;
    const char *src = intern_path(cfg, overlay_path);
    for (int i = 0; i < ov->n_sections && !rc; i++) {
        dn_section *s = &ov->sections[i];
        if (strcmp(s->type, "net") && strcmp(s->type, "network")) {
            rc = dn_fail(err, "%s:%d: error: an overlay may hold only [net] "
                         "keys, found [%s]", overlay_path, s->line, s->type);
            break;
        }
        for (int j = 0; j < s->n_kv && !rc; j++) {
            for (int k = 0; k < j && !rc; k++)
                if (strcmp(s->kvs[k].key, s->kvs[j].key) == 0)
                    rc = dn_fail(err, "%s:%d: [net] %s: error: duplicate key "
                                 "in an overlay (line %d sets it first)",
                                 overlay_path, s->kvs[j].line, s->kvs[j].key,
                                 s->kvs[k].line);
            if (!rc)
                rc = set_net_key(cfg, s->kvs[j].key, s->kvs[j].value,
                                 s->kvs[j].line, src, err);
        }
    }
    dn_cfg_free(ov);
    return rc;
}

/* ------------------------------------------------------------- getters */

/* First occurrence (Darknet's option_find); marks every occurrence used. */
static dn_kv *find_kv(dn_section *s, const char *key)
{
    dn_kv *first = NULL;
    for (int i = 0; i < s->n_kv; i++)
        if (strcmp(s->kvs[i].key, key) == 0) {
            s->kvs[i].used = 1;
            if (!first)
                first = &s->kvs[i];
        }
    return first;
}

int dn_sec_has(const dn_section *s, const char *key)
{
    for (int i = 0; i < s->n_kv; i++)
        if (strcmp(s->kvs[i].key, key) == 0)
            return 1;
    return 0;
}

dn_kv *dn_sec_kv(dn_section *s, const char *key) { return find_kv(s, key); }

static int kv_fail(const dn_section *s, const dn_kv *kv, const char *key,
                   dn_error *err, const char *fmt, va_list ap)
{
    char what[DN_ERROR_MAX / 2];
    vsnprintf(what, sizeof what, fmt, ap);
    if (kv && kv->line > 0)
        return dn_fail(err, "%s:%d: [%s] %s: %s", kv->src, kv->line, s->type,
                       key, what);
    if (kv)
        return dn_fail(err, "%s: [%s] %s: %s", kv->src, s->type, key, what);
    return dn_fail(err, "%s:%d: [%s] %s: %s", s->path, s->line, s->type, key,
                   what);
}

int dn_sec_fail(const dn_section *s, const char *key, dn_error *err,
                const char *fmt, ...)
{
    const dn_kv *kv = NULL;
    for (int i = 0; i < s->n_kv && !kv; i++)
        if (strcmp(s->kvs[i].key, key) == 0)
            kv = &s->kvs[i];
    va_list ap;
    va_start(ap, fmt);
    kv_fail(s, kv, key, err, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_at(const dn_section *s, const dn_kv *kv, dn_error *err,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_at(const dn_section *s, const dn_kv *kv, dn_error *err,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kv_fail(s, kv, kv->key, err, fmt, ap);
    va_end(ap);
    return -1;
}

/* "an integer >= 1", "a number in [0, 1]", ... */
static void describe_range(char *buf, size_t n, const char *what, double lo,
                           double hi)
{
    int has_lo = isfinite(lo) && lo > -1e300 && lo != (double)-__LONG_MAX__ - 1;
    int has_hi = isfinite(hi) && hi < 1e300 && hi != (double)__LONG_MAX__;
    if (has_lo && has_hi)
        snprintf(buf, n, "%s in [%g, %g]", what, lo, hi);
    else if (has_lo)
        snprintf(buf, n, "%s >= %g", what, lo);
    else if (has_hi)
        snprintf(buf, n, "%s <= %g", what, hi);
    else
        snprintf(buf, n, "%s", what);
}

static int parse_long(const char *v, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno)
        return -1;
    *out = x;
    return 0;
}

static int parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

/* The getters below use the first occurrence of a key (Darknet's rule) and
 * check every one: a later duplicate with a bad value is an error too. */
#define EACH_OCCURRENCE(s, kv, key)                                         \
    for (dn_kv *kv = (s)->n_kv ? (s)->kvs : NULL,                           \
               *kv##_end = kv ? kv + (s)->n_kv : NULL;                      \
         kv && kv < kv##_end; kv++)                                         \
        if (strcmp(kv->key, (key)) == 0)

int dn_sec_int(dn_section *s, const char *key, long def, long lo, long hi,
               long *out, dn_error *err)
{
    dn_kv *kv = find_kv(s, key);
    char range[96];
    describe_range(range, sizeof range, "an integer", (double)lo, (double)hi);
    if (!kv) {
        *out = def;
        return 0;
    }
    long x, first = 0;
    EACH_OCCURRENCE(s, k, key) {
        if (parse_long(k->value, &x) || x < lo || x > hi)
            return fail_at(s, k, err, "expected %s, got \"%s\"", range,
                           k->value);
        if (k == kv)
            first = x;
    }
    *out = first;
    return 0;
}

int dn_sec_double(dn_section *s, const char *key, double def, double lo,
                  double hi, double *out, dn_error *err)
{
    dn_kv *kv = find_kv(s, key);
    char range[96];
    describe_range(range, sizeof range, "a number", lo, hi);
    if (!kv) {
        *out = def;
        return 0;
    }
    double x, first = 0;
    EACH_OCCURRENCE(s, k, key) {
        if (parse_double(k->value, &x) || x < lo || x > hi)
            return fail_at(s, k, err, "expected %s, got \"%s\"", range,
                           k->value);
        if (k == kv)
            first = x;
    }
    *out = first;
    return 0;
}

int dn_sec_string(dn_section *s, const char *key, const char *def,
                  const char **out, dn_error *err)
{
    dn_kv *kv = find_kv(s, key);
    *out = kv ? kv->value : def;
    return 0;
}

/* Split a comma list in place-free fashion; calls parse on each item. */
static int split_list(dn_section *s, dn_kv *kv, int max, int *n, dn_error *err,
                      int (*item)(const char *tok, void *dst, int i), void *dst,
                      const char *what)
{
    char *copy = dn_xstrdup(kv->value);
    int count = 0, rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *t = dn_trim(tok);
        if (count >= max) {
            rc = fail_at(s, kv, err, "at most %d values, got \"%s\"", max,
                         kv->value);
            break;
        }
        if (item(t, dst, count)) {
            rc = fail_at(s, kv, err, "expected a list of %s, got \"%s\" in \"%s\"",
                         what, t, kv->value);
            break;
        }
        count++;
    }
    free(copy);
    if (!rc && count == 0)
        rc = fail_at(s, kv, err, "expected a list of %s, got \"%s\"", what,
                     kv->value);
    *n = rc ? 0 : count;
    return rc;
}

static int long_item(const char *t, void *dst, int i)
{
    return parse_long(t, (long *)dst + i);
}

static int double_item(const char *t, void *dst, int i)
{
    return parse_double(t, (double *)dst + i);
}

int dn_sec_ints(dn_section *s, const char *key, long *out, int max, int *n,
                dn_error *err)
{
    dn_kv *kv = find_kv(s, key);
    *n = 0;
    if (!kv)
        return 0;
    EACH_OCCURRENCE(s, k, key) /* the first last: it is the one kept */
        if (k != kv && split_list(s, k, max, n, err, long_item, out, "integers"))
            return -1;
    return split_list(s, kv, max, n, err, long_item, out, "integers");
}

int dn_sec_doubles(dn_section *s, const char *key, double *out, int max,
                   int *n, dn_error *err)
{
    dn_kv *kv = find_kv(s, key);
    *n = 0;
    if (!kv)
        return 0;
    EACH_OCCURRENCE(s, k, key)
        if (k != kv && split_list(s, k, max, n, err, double_item, out, "numbers"))
            return -1;
    return split_list(s, kv, max, n, err, double_item, out, "numbers");
}

static int choice_of(const char *const *choices, const char *v)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], v) == 0)
            return i;
    return -1;
}

int dn_sec_choice(dn_section *s, const char *key, const char *def,
                  const char *const *choices, int *index, dn_error *err)
{
    dn_kv *kv = find_kv(s, key);
    const char *v = kv ? kv->value : def;
    EACH_OCCURRENCE(s, k, key)
        if (k != kv && choice_of(choices, k->value) < 0) {
            kv = k, v = k->value;
            break;
        }
    int i = choice_of(choices, v);
    if (i >= 0) {
        *index = i;
        return 0;
    }
    char list[512] = "";
    for (int i = 0; choices[i]; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                 choices[i]);
    }
    if (!kv)
        return dn_fail(err, "%s:%d: [%s] %s: default \"%s\" is not one of: %s",
                       s->path, s->line, s->type, key, v, list);
    return fail_at(s, kv, err, "unknown value \"%s\"; valid: %s", v, list);
}

void dn_sec_warn(dn_section *s, const char *key, const char *fmt, ...)
{
    dn_kv *kv = NULL;
    for (int i = 0; i < s->n_kv && !kv; i++)
        if (strcmp(s->kvs[i].key, key) == 0)
            kv = &s->kvs[i];
    if (!kv || kv->warning)
        return; /* once per key */
    char what[DN_ERROR_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    kv->warning = dn_xstrdup(what);
}

/* "path:line: [section] key" of a key, or "-set: [net] key" */
static void where_of(const dn_section *s, const dn_kv *kv, char *buf,
                     size_t n)
{
    if (kv->line > 0)
        snprintf(buf, n, "%s:%d: [%s] %s", kv->src, kv->line, s->type, kv->key);
    else
        snprintf(buf, n, "%s: [%s] %s", kv->src, s->type, kv->key);
}

/* The first earlier occurrence of kv's key in s, or NULL. Keys set by an
 * override replace every occurrence, so they are never duplicates. */
static const dn_kv *earlier(const dn_section *s, const dn_kv *kv)
{
    if (kv->override)
        return NULL;
    for (const dn_kv *k = s->kvs; k < kv; k++)
        if (!k->override && strcmp(k->key, kv->key) == 0)
            return k;
    return NULL;
}

/* Why nobody read kv, from the key tables (keys.h): a key no table of its
 * section has is unknown, with the nearest known name when there is one;
 * a known key was not read with these settings (a scheduler's key under
 * another policy, stretch_low without contrast_stretch=1). */
static void unused_why(const dn_section *s, int net, const dn_kv *kv,
                       char *buf, size_t n)
{
    const char *near;
    buf[0] = '\0';
    if (dn_key_known(s->type, net, kv->key))
        snprintf(buf, n, "; it is a known key, but these settings do not use "
                 "it");
    else if ((near = dn_key_nearest(s->type, net, kv->key)))
        snprintf(buf, n, "; did you mean %s?", near);
}

int dn_cfg_check_unused(const dn_cfg *cfg, int strict, FILE *report,
                        dn_error *err)
{
    int rc = 0;
    for (int i = 0; i < cfg->n_sections; i++) {
        const dn_section *s = &cfg->sections[i];
        const int net = i == 0 && (strcmp(s->type, "net") == 0 ||
                                   strcmp(s->type, "network") == 0);
        const char *reader = strcmp(s->type, "data") == 0 ? "reader of .data files"
                             : i == 0 ? "[net] option" : "layer of this type";
        for (int j = 0; j < s->n_kv; j++) {
            const dn_kv *kv = &s->kvs[j];
            char where[600];
            where_of(s, kv, where, sizeof where);
            if (kv->warning && report)
                fprintf(report, "%s: warning: %s\n", where, kv->warning);
            const dn_kv *first = earlier(s, kv);
            if (first) {
                if (report)
                    fprintf(report, "%s: %s: duplicate key: line %d sets it "
                            "first, and the first value is the one used\n",
                            where, strict ? "error" : "warning", first->line);
                if (strict && rc == 0)
                    rc = dn_fail(err, "%s: duplicate key: line %d sets it "
                                 "first", where, first->line);
            }
            if (kv->used)
                continue;
            char why[160];
            unused_why(s, net, kv, why, sizeof why);
            if (report)
                fprintf(report, "%s: %s: unused key (no %s reads it)%s\n",
                        where, (strict || kv->override) ? "error" : "warning",
                        reader, why);
            if ((strict || kv->override) && rc == 0)
                rc = dn_fail(err, "%s: %s key: no %s reads it%s%s", where,
                             dn_key_known(s->type, net, kv->key) ? "unused"
                                                                 : "unknown",
                             reader, kv->override ? " (from an override)" : "",
                             why);
        }
    }
    return rc;
}
