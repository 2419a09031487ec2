/*
 * route_layer.h - [route]'s private state, shared by route_layer.c and its
 * GPU twin route_layer.cu.
 */
#ifndef DN_ROUTE_LAYER_H
#define DN_ROUTE_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ROUTE_INPUT (-1)

typedef struct route {
    int n;
    int *src;    /* [n]: absolute layer index, or ROUTE_INPUT */
    long *size;  /* [n]: floats per image of each source */
} route;

#ifdef __cplusplus
}
#endif

#endif
