/*
 * fuzz_plugin.c - the checks a scheduler plugin's struct passes before the
 * host uses it (dn_scheduler_check, what dn_scheduler_load runs on what
 * the entry returns), on structs built from the input: any ABI version and
 * struct size, and a name and callbacks that are NULL, valid, data, an
 * unmapped page or an address taken from the input. They must never
 * crash the host (they did: a SEGV reading a bad pointer). An address from
 * the input that happens to be code passes, as it should: the checks catch
 * mistakes, they are not a sandbox.
 *
 * Input: int32 abi_version, u16 struct_size, then a kind byte each for
 * the name, parse, rate and free (0 NULL, 1 valid, 2 data, 3 unmapped,
 * 4 the next 8 input bytes as an address), then the name's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static void *ok_parse(dn_sched_ctx *c)
{
    double lr;
    if (c->get_double(c, "learning_rate", 0.1, 0, 10, &lr))
        return NULL;
    return malloc(1);
}

static double ok_rate(const void *state, const dn_clock *clock)
{
    (void)state;
    return 0.1 / (1.0 + (double)clock->batch);
}

static void ok_free(void *state) { free(state); }

static const unsigned char not_code[64] = {0xff};

static const void *pick(fz_reader *r, const void *valid)
{
    switch (fz_u8(r) % 5) {
    case 0:
        return NULL;
    case 1:
        return valid;
    case 2:
        return not_code;
    case 3:
        return (const void *)(uintptr_t)4096;
    default: {
        uintptr_t a = 0;
        for (int i = 0; i < 8; i++)
            a |= (uintptr_t)fz_u8(r) << (8 * i);
        return (const void *)a;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    fz_reader r = {data, size};
    dn_scheduler s;
    memset(&s, 0, sizeof s);
    s.abi_version = (int)(fz_u16(&r) | (uint32_t)fz_u16(&r) << 16);
    s.struct_size = fz_u16(&r);
    char name[80];
    const void *name_ptr = pick(&r, name);
    const void *parse = pick(&r, (const void *)(uintptr_t)ok_parse);
    const void *rate = pick(&r, (const void *)(uintptr_t)ok_rate);
    const void *release = pick(&r, (const void *)(uintptr_t)ok_free);
    size_t n;
    const uint8_t *text = fz_bytes(&r, sizeof name - 1, &n);
    memcpy(name, text, n);
    name[n] = '\0';
    s.name = name_ptr;
    memcpy(&s.parse, &parse, sizeof parse);
    memcpy(&s.rate, &rate, sizeof rate);
    memcpy(&s.free, &release, sizeof release);
    dn_error err;
    if (dn_scheduler_check(&s, "fuzz.so", &err) == 0 && s.parse == ok_parse &&
        s.rate == ok_rate && s.free == ok_free) {
        /* sound: used as the host uses it */
        dn_clock c = dn_clock_at(256, 128, 10, 100);
        void *state = malloc(1);
        if (!(s.rate(state, &c) >= 0))
            abort();
        s.free(state);
    }
    return 0;
}
