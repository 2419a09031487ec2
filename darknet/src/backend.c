/*
 * backend.c - placing a network: the one place that chooses its backend
 * (backend.h). A network is built on the CPU (dn_backend_cpu);
 * dn_net_use_devices moves it to one device (dn_backend_gpu,
 * network_gpu.c) or splits it over several (dn_backend_replicas,
 * replicas.c), once. From then on every pass goes through the table.
 */
#include "backend.h"
#include "darknet.h"

#ifdef DN_GPU
/* Every layer runs on a device only through a complete twin. */
static int check_twins(const dn_net *net, dn_error *err)
{
    for (int i = 0; i < net->n; i++) {
        const dn_layer_type *t = net->layers[i].type;
        const dn_layer_gpu_ops *g = t->gpu;
        if (!g)
            return dn_fail(err, "layer %d [%s] has no GPU implementation; "
                           "run it with -nogpu", i, t->name);
        if (!g->make || !g->forward || !g->backward || !g->free)
            return dn_fail(err, "layer %d [%s]: internal: its GPU twin "
                           "lacks a function (dn_layer_gpu_ops: all four "
                           "or none)", i, t->name);
    }
    return 0;
}
#endif

int dn_net_use_devices(dn_net *net, const dn_devices *dev, dn_error *err)
{
    if (!dev || dev->n == 0)
        return 0;
    if (dn_net_backend(net) != &dn_backend_cpu)
        return dn_fail(err, "the network is already on %s",
                       dn_net_device_name(net));
#ifdef DN_GPU
    if (check_twins(net, err))
        return -1;
    if (dev->n == 1)
        return dn_gpu_place(net, dev->ids[0], err);
    return dn_replicas_place(net, dev, err);
#else
    return dn_fail(err, "-gpus: this darknet was built without GPU support; "
                   "rebuild with make GPU=1 (and CUDNN=1), or leave -gpus out");
#endif
}
