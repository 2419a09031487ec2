#include <stdio.h>
#include "cli.h"
int dn_cmd_classifier(int argc, char **argv)
{
    fprintf(stderr, "darknet classifier: not built yet\n");
    return 2;
}
