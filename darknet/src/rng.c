/*
 * rng.c - deterministic random numbers: xoshiro256** seeded through
 * splitmix64 (Blackman and Vigna). Every consumer owns its generator, so a
 * run is reproducible from its seed and no global state is shared.
 */
#include <math.h>

#include "darknet.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void dn_rng_seed(dn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dn_rng_u64(dn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double dn_rng_uniform(dn_rng *r)
{
    return (double)(dn_rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Box-Muller; the second value is discarded to keep the state simple. */
double dn_rng_normal(dn_rng *r)
{
    double u1 = dn_rng_uniform(r), u2 = dn_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t dn_hash3(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ a;
    h = splitmix64(&x);
    x = h ^ b;
    return splitmix64(&x);
}
