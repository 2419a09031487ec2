/*
 * schedule.c - the host side of learning-rate schedulers.
 *
 *  - The registry: one table of built-in schedulers (plugins/NAME.c) plus the
 *    external plugins loaded so far. Nothing else in the framework knows a
 *    policy by name.
 *  - Plugin loading in stages, as Lua's loadlib and Redis's module loader do:
 *    open, entry, abi, check, register. Each failure names its stage and the
 *    path, closes the handle and returns an error; nothing exits.
 *  - dn_sched_ctx: the plugin's only view of the cfg, on top of the dn_sec_*
 *    getters, so its errors name file, line, section and key.
 *  - dn_schedule: a parsed policy plus Darknet's burn_in warm-up, which
 *    applies on top of every policy:
 *        b < burn_in:  lr = learning_rate * (b / burn_in)^power
 */
#define _GNU_SOURCE /* dladdr1, process_vm_readv */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "builtin.h"
#include "darknet.h"

/* The built-in schedulers with their key tables, in the order `darknet lr`,
 * errors and docs/keys.md list them. */
static const struct builtin {
    const dn_scheduler *sched;
    const dn_key *keys;
} builtins[] = {
    {&dn_sched_constant, dn_sched_constant_keys},
    {&dn_sched_step, dn_sched_step_keys},
    {&dn_sched_steps, dn_sched_steps_keys},
    {&dn_sched_exp, dn_sched_exp_keys},
    {&dn_sched_poly, dn_sched_poly_keys},
    {&dn_sched_sig, dn_sched_sig_keys},
    {&dn_sched_random, dn_sched_random_keys},
    {&dn_sched_sgdr, dn_sched_sgdr_keys},
    {&dn_sched_cosine_restart, dn_sched_cosine_restart_keys},
    {&dn_sched_log_restart, dn_sched_log_restart_keys},
};
#define N_BUILTINS (sizeof builtins / sizeof *builtins)

/* Other names of built-ins: {alias, name}. "sig" was this framework's name
 * for Darknet's sigmoid policy (Darknet's parser spells it "sigmoid"). */
static const char *const aliases[][2] = {
    {"sig", "sigmoid"},
};

/* policy=plugin selects an external scheduler named by plugin=. */
#define PLUGIN_POLICY "plugin"
/* Searched after $DN_PLUGIN_PATH for a bare plugin= name. */
#define DEFAULT_PLUGIN_DIR "build/plugins"

/* External plugins stay loaded for the life of the process: a schedule may
 * point into one at any time, so handles are never closed once registered. */
typedef struct loaded_plugin {
    const dn_scheduler *sched;
    void *handle;
    char *path;
} loaded_plugin;

static loaded_plugin *loaded;
static int n_loaded;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

struct dn_schedule {
    const dn_scheduler *impl;
    void *state;
    double learning_rate;
    long burn_in;
    double power;
};

/* -------------------------------------------------------------- registry */

static const dn_scheduler *find_locked(const char *name, const char **from)
{
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcmp(aliases[i][0], name) == 0)
            name = aliases[i][1];
    for (size_t i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtins[i].sched->name, name) == 0) {
            if (from)
                *from = "built in";
            return builtins[i].sched;
        }
    for (int i = 0; i < n_loaded; i++)
        if (strcmp(loaded[i].sched->name, name) == 0) {
            if (from)
                *from = loaded[i].path;
            return loaded[i].sched;
        }
    return NULL;
}

const dn_scheduler *dn_scheduler_find(const char *name)
{
    pthread_mutex_lock(&registry_lock);
    const dn_scheduler *s = find_locked(name, NULL);
    pthread_mutex_unlock(&registry_lock);
    return s;
}

int dn_schedule_builtin_keys(int i, const char **name, const dn_key **keys)
{
    if (i < 0 || (size_t)i >= N_BUILTINS)
        return 0;
    *name = builtins[i].sched->name;
    *keys = builtins[i].keys;
    return 1;
}

const char *dn_scheduler_names(void)
{
    static char buf[1024];
    pthread_mutex_lock(&registry_lock);
    buf[0] = '\0';
    for (size_t i = 0; i < N_BUILTINS + (size_t)n_loaded; i++) {
        const char *name = i < N_BUILTINS ? builtins[i].sched->name
                                          : loaded[i - N_BUILTINS].sched->name;
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "", name);
    }
    pthread_mutex_unlock(&registry_lock);
    return buf;
}

/* --------------------------------------------------------- plugin loading */

/* A policy name: letters, digits, '_' and '-', not "plugin". */
static int valid_name(const char *name)
{
    if (!name || !*name || strcmp(name, PLUGIN_POLICY) == 0)
        return 0;
    for (const char *p = name; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') ||
              ('0' <= *p && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

/*
 * What a plugin hands over is checked before it is used, so that a mistake
 * is a message naming the file, not a crash: the entry symbol must be a
 * function, the struct it returns and its name readable memory, and every
 * callback an address in executable code. (A plugin runs in the process:
 * this catches mistakes, it is not a sandbox.)
 */

/* 1 if [p, p + n) can be read: the kernel copies it, or says EFAULT. */
static int readable(const void *p, size_t n)
{
    char buf[256];
    while (n > 0) {
        size_t chunk = n < sizeof buf ? n : sizeof buf;
        struct iovec local = {buf, chunk}, remote = {(void *)p, chunk};
        if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) !=
            (ssize_t)chunk)
            return 0;
        p = (const char *)p + chunk;
        n -= chunk;
    }
    return 1;
}

/* Copies a NUL-terminated string of at most n - 1 characters at s into
 * buf through the kernel, never touching s itself (under ASan even a
 * readable wild address can fault in its shadow check); NULL when it is
 * not readable or too long. */
static const char *readable_string(const char *s, char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct iovec local = {buf + i, 1}, remote = {(void *)(s + i), 1};
        if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 1)
            return NULL;
        if (buf[i] == '\0')
            return buf;
    }
    return NULL;
}

/* 1 if address lies in an executable mapping of this process. */
static int executable(const void *address)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return 1; /* cannot tell: assume it is */
    const uintptr_t a = (uintptr_t)address;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo <= a &&
            a < hi)
            found = perms[2] == 'x';
    }
    fclose(maps);
    return found;
}

/* 1 if sym is a function symbol of its object (not data). */
static int function_symbol(void *sym)
{
    Dl_info info;
    const ElfW(Sym) *elf = NULL;
    if (!dladdr1(sym, &info, (void **)&elf, RTLD_DL_SYMENT) || !elf)
        return executable(sym);
    const int type = ELF64_ST_TYPE(elf->st_info);
    return type == STT_FUNC || type == STT_GNU_IFUNC;
}

/* Stage check on a returned struct: NULL when sound, else the problem. */
static const char *check_struct(const dn_scheduler *s, char *why, size_t n)
{
    if (!readable(s, sizeof *s)) {
        snprintf(why, n, "%s() returned %p, which is not readable memory",
                 DN_SCHED_ENTRY, (const void *)s);
        return why;
    }
    return NULL;
}

/* Stages entry, abi and check. Returns the scheduler or NULL with err set. */
static const dn_scheduler *plugin_entry(void *handle, const char *path,
                                        dn_error *err)
{
    dlerror();
    void *sym = dlsym(handle, DN_SCHED_ENTRY);
    const char *why = dlerror();
    if (!sym || why) {
        dn_fail(err, "plugin %s: entry: no symbol %s: %s", path,
                DN_SCHED_ENTRY, why ? why : "symbol is NULL");
        return NULL;
    }
    if (!function_symbol(sym)) {
        dn_fail(err, "plugin %s: entry: %s is not a function (a variable?); "
                "it must be const dn_scheduler *%s(void)", path,
                DN_SCHED_ENTRY, DN_SCHED_ENTRY);
        return NULL;
    }
    dn_sched_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object to function pointer */
    const dn_scheduler *s = entry();
    if (!s) {
        dn_fail(err, "plugin %s: entry: %s() returned NULL", path,
                DN_SCHED_ENTRY);
        return NULL;
    }
    return dn_scheduler_check(s, path, err) ? NULL : s;
}

int dn_scheduler_check(const dn_scheduler *s, const char *path, dn_error *err)
{
    char problem[256];
    if (check_struct(s, problem, sizeof problem))
        return dn_fail(err, "plugin %s: entry: %s", path, problem);
    if (s->abi_version != DN_SCHED_ABI_VERSION)
        return dn_fail(err, "plugin %s: abi: version %d, this host speaks "
                       "version %d", path, s->abi_version, DN_SCHED_ABI_VERSION);
    if (s->struct_size < sizeof(dn_scheduler))
        return dn_fail(err, "plugin %s: abi: struct_size %zu is smaller than "
                       "dn_scheduler (%zu bytes)", path, s->struct_size,
                       sizeof(dn_scheduler));
    const void *callbacks[3] = {(const void *)(uintptr_t)s->parse,
                                (const void *)(uintptr_t)s->rate,
                                (const void *)(uintptr_t)s->free};
    const char *const callback_names[3] = {"parse", "rate", "free"};
    int bad_callback = -1;
    for (int i = 0; i < 3 && bad_callback < 0; i++)
        if (!callbacks[i] || !executable(callbacks[i]))
            bad_callback = i;
    char name[65];
    if (!s->name || !readable_string(s->name, name, sizeof name)) {
        return dn_fail(err, "plugin %s: check: the scheduler's name is %s",
                       path, s->name ? "not a readable string of at most 64 "
                       "characters" : "NULL");
    } else if (!valid_name(name)) {
        return dn_fail(err, "plugin %s: check: invalid scheduler name \"%s\" "
                       "(letters, digits, '_', '-'; not \"plugin\")", path,
                       name);
    } else if (bad_callback >= 0 && !callbacks[bad_callback]) {
        return dn_fail(err, "plugin %s: check: scheduler \"%s\" lacks %s()",
                       path, name, callback_names[bad_callback]);
    } else if (bad_callback >= 0) {
        return dn_fail(err, "plugin %s: check: scheduler \"%s\": %s is %p, "
                       "not an address in code", path, name,
                       callback_names[bad_callback], callbacks[bad_callback]);
    }
    return 0;
}

/* Stage register: under the lock. The same library loaded again (dlopen
 * gives the same handle) returns its first registration. */
static int plugin_register(void *handle, const char *path,
                           const dn_scheduler *s, const dn_scheduler **out,
                           dn_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&registry_lock);
    const char *from = NULL;
    const dn_scheduler *old = find_locked(s->name, &from);
    int same = 0;
    for (int i = 0; i < n_loaded; i++)
        if (loaded[i].handle == handle && loaded[i].sched == s)
            same = 1;
    if (same) {
        *out = s;
        rc = 1; /* already registered: the caller drops its extra handle */
    } else if (old) {
        rc = dn_fail(err, "plugin %s: register: a scheduler named \"%s\" is "
                     "already registered (%s)", path, s->name, from);
    } else {
        loaded = dn_xrealloc(loaded, (n_loaded + 1) * sizeof *loaded);
        loaded[n_loaded++] = (loaded_plugin){s, handle, dn_xstrdup(path)};
        *out = s;
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

int dn_scheduler_load(const char *path, const dn_scheduler **out,
                      dn_error *err)
{
    *out = NULL;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return dn_fail(err, "plugin %s: open: %s", path, dlerror());
    const dn_scheduler *s = plugin_entry(handle, path, err);
    int rc = s ? plugin_register(handle, path, s, out, err) : -1;
    if (rc != 0)
        dlclose(handle); /* failed, or a second reference to a loaded one */
    return rc < 0 ? -1 : 0;
}

/*
 * plugin= value to a path. A value with a '/' is a path, used as given
 * (relative to the working directory). A bare name is looked up in each
 * directory of $DN_PLUGIN_PATH (colon-separated), then in build/plugins, as
 * NAME and, without a ".so" suffix, as libdn_sched_NAME.so.
 */
static int plugin_path(const char *value, char *out, size_t n, char *tried,
                       size_t n_tried)
{
    if (strchr(value, '/')) {
        snprintf(out, n, "%s", value);
        return 0;
    }
    const char *env = getenv("DN_PLUGIN_PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s%s%s", env ? env : "", env ? ":" : "",
             DEFAULT_PLUGIN_DIR);
    size_t len = strlen(value);
    int has_so = len > 3 && strcmp(value + len - 3, ".so") == 0;
    tried[0] = '\0';
    char *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        for (int form = 0; form < 2 - has_so; form++) {
            snprintf(out, n, form ? "%s/libdn_sched_%s.so" : "%s/%s", dir, value);
            if (access(out, R_OK) == 0)
                return 0;
            size_t used = strlen(tried);
            snprintf(tried + used, n_tried - used, "%s%s", used ? ", " : "", out);
        }
    }
    return -1;
}

/* -------------------------------------------------- dn_sched_ctx (host) */

typedef struct ctx_impl {
    dn_section *net;
    dn_error *err;
} ctx_impl;

static ctx_impl *impl_of(dn_sched_ctx *c) { return c->impl; }

static int ctx_get_double(dn_sched_ctx *c, const char *key, double def,
                          double lo, double hi, double *out)
{
    return dn_sec_double(impl_of(c)->net, key, def, lo, hi, out, impl_of(c)->err);
}

static int ctx_get_long(dn_sched_ctx *c, const char *key, long def, long lo,
                        long hi, long *out)
{
    return dn_sec_int(impl_of(c)->net, key, def, lo, hi, out, impl_of(c)->err);
}

static int ctx_get_string(dn_sched_ctx *c, const char *key, const char *def,
                          const char **out)
{
    return dn_sec_string(impl_of(c)->net, key, def, out, impl_of(c)->err);
}

static int ctx_get_doubles(dn_sched_ctx *c, const char *key, double *out,
                           int max, int *n)
{
    return dn_sec_doubles(impl_of(c)->net, key, out, max, n, impl_of(c)->err);
}

static int ctx_has(dn_sched_ctx *c, const char *key)
{
    return dn_sec_has(impl_of(c)->net, key);
}

static int ctx_fail(dn_sched_ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ctx_fail(dn_sched_ctx *c, const char *key, const char *fmt, ...)
{
    char what[DN_ERROR_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return dn_sec_fail(impl_of(c)->net, key, impl_of(c)->err, "%s", what);
}

/* -------------------------------------------------------------- schedule */

/* The host's [net] keys of a schedule; each policy's own are in its table
 * (plugins/, builtin.h). */
const dn_key dn_schedule_keys[] = {
    BI_LEARNING_RATE,
    DN_STRING("policy", "constant",
              "the scheduler: a built-in's name (see the tables below), or "
              "plugin"),
    DN_STRING("plugin", "",
              "policy=plugin: the .so (a path, or a name searched in "
              "$DN_PLUGIN_PATH and build/plugins)"),
    DN_INT("burn_in", "0", 0, DN_NO_LIMIT,
           "batches of Darknet's warm-up, learning_rate * (b / burn_in)^power"),
    DN_FLOAT("power", "4", 0, DN_NO_LIMIT, "the exponent of burn_in"),
    DN_KEYS_END,
};

/* The scheduler policy= names, loading plugin= for policy=plugin. */
static int resolve(dn_section *net, const char *policy,
                   const dn_scheduler **out, dn_error *err)
{
    if (strcmp(policy, PLUGIN_POLICY) != 0) {
        *out = dn_scheduler_find(policy);
        if (*out)
            return 0;
        return dn_sec_fail(net, "policy", err, "unknown policy \"%s\"; valid: "
                           "%s, %s (with plugin=PATH)", policy,
                           dn_scheduler_names(), PLUGIN_POLICY);
    }
    const char *value;
    char path[2048], tried[4096];
    dn_error why;
    if (dn_key_string(net, dn_schedule_keys, "plugin", &value, err))
        return -1;
    if (!value || !*value)
        return dn_sec_fail(net, "policy", err, "policy=plugin needs "
                           "plugin=PATH (a .so exporting %s)", DN_SCHED_ENTRY);
    if (plugin_path(value, path, sizeof path, tried, sizeof tried))
        return dn_sec_fail(net, "plugin", err, "no plugin \"%s\" found; tried "
                           "%s", value, tried);
    if (dn_scheduler_load(path, out, &why))
        return dn_sec_fail(net, "plugin", err, "%s", why.msg);
    return 0;
}

/* A legal rate far above any that trains: a warning, once, not an error. */
static int warn_implausible(dn_section *net, const char *key, double rate)
{
    if (rate > DN_IMPLAUSIBLE_RATE)
        dn_sec_warn(net, key, "%g is implausibly large for a learning rate "
                    "(above %g)", rate, DN_IMPLAUSIBLE_RATE);
    return 0;
}

int dn_schedule_parse(dn_section *net, dn_schedule **out, dn_error *err)
{
    dn_error ignored;
    if (!err)
        err = &ignored; /* the plugin's parse is judged by err->msg below */
    *out = NULL;
    dn_schedule *s = dn_xcalloc(1, sizeof *s);
    const dn_key *t = dn_schedule_keys;
    const char *policy;
    if (dn_key_double(net, t, "learning_rate", &s->learning_rate, err) ||
        warn_implausible(net, "learning_rate", s->learning_rate) ||
        dn_key_string(net, t, "policy", &policy, err) ||
        dn_key_int(net, t, "burn_in", &s->burn_in, err) ||
        dn_key_double(net, t, "power", &s->power, err) ||
        resolve(net, policy, &s->impl, err))
        goto fail;
    ctx_impl impl = {net, err};
    dn_sched_ctx ctx = {ctx_get_double, ctx_get_long,  ctx_get_string,
                        ctx_get_doubles, ctx_has, ctx_fail, &impl};
    err->msg[0] = '\0';
    s->state = s->impl->parse(&ctx);
    if (!s->state) {
        if (!err->msg[0])
            dn_sec_fail(net, "policy", err, "scheduler \"%s\" rejected its "
                        "parameters", s->impl->name);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    free(s);
    return -1;
}

/* Darknet's burn_in on top of the policy's rate. */
double dn_schedule_rate(const dn_schedule *s, const dn_clock *clock)
{
    if (clock->batch < s->burn_in)
        return s->learning_rate *
               pow((double)clock->batch / (double)s->burn_in, s->power);
    return s->impl->rate(s->state, clock);
}

const char *dn_schedule_policy(const dn_schedule *s) { return s->impl->name; }

/* "policy linear (plugin build/plugins/libdn_sched_linear.so)" */
static void describe_policy(const dn_schedule *s, char *buf, size_t n)
{
    const char *from = NULL;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < n_loaded; i++)
        if (loaded[i].sched == s->impl)
            from = loaded[i].path;
    snprintf(buf, n, "policy %s%s%s%s", s->impl->name, from ? " (plugin " : "",
             from ? from : "", from ? ")" : "");
    pthread_mutex_unlock(&registry_lock);
}

int dn_schedule_rate_checked(const dn_schedule *s, const dn_clock *clock,
                             double *rate, dn_error *err)
{
    const double r = dn_schedule_rate(s, clock);
    *rate = r;
    if (isfinite(r) && r >= 0 && r <= DN_IMPLAUSIBLE_RATE)
        return 0;
    char policy[600];
    describe_policy(s, policy, sizeof policy);
    if (isfinite(r) && r >= 0) {
        dn_fail(err, "%s gives the rate %g at batch %ld (epoch %.3f): "
                "implausibly large (above %g)", policy, r, clock->batch,
                clock->epoch, DN_IMPLAUSIBLE_RATE);
        return 1;
    }
    return dn_fail(err, "%s gives the rate %g at batch %ld (epoch %.3f): a "
                   "learning rate must be a finite number >= 0", policy, r,
                   clock->batch, clock->epoch);
}

void dn_schedule_free(dn_schedule *s)
{
    if (!s)
        return;
    if (s->impl->free)
        s->impl->free(s->state);
    free(s);
}
