/* schedule.c - placeholder until the scheduler plugins land */
#include <stdlib.h>
#include "darknet.h"
struct dn_schedule { double lr; };
int dn_schedule_parse(dn_section *net, dn_schedule **out, dn_error *err)
{
    *out = calloc(1, sizeof **out);
    return dn_sec_double(net, "learning_rate", 0.001, 0, 1e9, &(*out)->lr, err);
}
double dn_schedule_rate(const dn_schedule *s, const dn_clock *c) { return s->lr; }
const char *dn_schedule_policy(const dn_schedule *s) { return "constant"; }
void dn_schedule_free(dn_schedule *s) { free(s); }
