/*
 * comm_mpi.c - comm.h over MPI (make MPI=1): every process is one replica
 * and holds its buffers in host memory.
 *
 *   all_reduce_sum  MPI_Allreduce(MPI_IN_PLACE, MPI_FLOAT, MPI_SUM), in
 *                   chunks of at most INT_MAX floats (MPI counts are int)
 *   broadcast       MPI_Bcast, chunked the same way
 *   agree_failure   MPI_Allreduce of an int with MPI_MAX
 *
 * node_rank (comm.h) comes from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED),
 * which every launcher supports, rather than a launcher's variables.
 *
 * The communicator is a duplicate of MPI_COMM_WORLD whose error handler
 * returns errors, so that a failed call becomes a dn_error naming the call
 * and MPI's message instead of an abort inside the library.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm_mpi.h"

int dn_comm_mpi_launched_size(void)
{
    /* Open MPI's mpirun; MPICH's Hydra and Slurm's srun (PMI) */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}

#ifdef DN_MPI
#include <mpi.h>

typedef struct mpi_impl {
    MPI_Comm comm;
    int finalize; /* this communicator initialised MPI */
} mpi_impl;

static int mpi_fail(dn_error *err, const char *call, int code)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", code);
    return dn_fail(err, "%s: %s", call, msg);
}

static int mpi_all_reduce_sum(dn_comm *c, float *const *bufs, size_t n,
                              dn_error *err)
{
    mpi_impl *m = c->impl;
    for (size_t off = 0; off < n; off += INT_MAX) {
        int count = n - off > INT_MAX ? INT_MAX : (int)(n - off);
        int rc = MPI_Allreduce(MPI_IN_PLACE, bufs[0] + off, count, MPI_FLOAT,
                               MPI_SUM, m->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(err, "MPI_Allreduce", rc);
    }
    return 0;
}

static int mpi_broadcast(dn_comm *c, float *const *bufs, size_t n, int root,
                         dn_error *err)
{
    mpi_impl *m = c->impl;
    for (size_t off = 0; off < n; off += INT_MAX) {
        int count = n - off > INT_MAX ? INT_MAX : (int)(n - off);
        int rc = MPI_Bcast(bufs[0] + off, count, MPI_FLOAT, root, m->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(err, "MPI_Bcast", rc);
    }
    return 0;
}

static int mpi_agree_failure(dn_comm *c, int failed, int *any, dn_error *err)
{
    mpi_impl *m = c->impl;
    int mine = failed != 0;
    int rc = MPI_Allreduce(&mine, any, 1, MPI_INT, MPI_MAX, m->comm);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "MPI_Allreduce", rc);
}

static void mpi_free(dn_comm *c)
{
    if (!c)
        return;
    mpi_impl *m = c->impl;
    MPI_Comm_free(&m->comm);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (m->finalize && !finalized)
        MPI_Finalize();
    free(m);
    free(c);
}

static const dn_comm_ops mpi_ops = {
    .name = "mpi",
    .all_reduce_sum = mpi_all_reduce_sum,
    .broadcast = mpi_broadcast,
    .agree_failure = mpi_agree_failure,
    .free = mpi_free,
};

int dn_comm_mpi_open(int *argc, char ***argv, dn_comm **out, dn_error *err)
{
    *out = NULL;
    int initialized = 0, provided;
    MPI_Initialized(&initialized);
    if (!initialized && dn_comm_mpi_launched_size() == 0)
        return 0;
    if (!initialized) {
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return dn_fail(err, "MPI_Init_thread failed (error %d)", rc);
    }
    dn_comm *c = calloc(1, sizeof *c);
    mpi_impl *m = calloc(1, sizeof *m);
    if (!c || !m) {
        free(c);
        free(m);
        return dn_fail(err, "out of memory");
    }
    m->finalize = !initialized;
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
    if (rc != MPI_SUCCESS) {
        free(c);
        free(m);
        return mpi_fail(err, "MPI_Comm_dup", rc);
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &c->rank);
    MPI_Comm_size(m->comm, &c->size);
    c->local = 1;
    MPI_Comm node;
    if (MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, c->rank,
                            MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &c->node_rank);
        MPI_Comm_free(&node);
    }
    c->ops = &mpi_ops;
    c->impl = m;
    *out = c;
    return 0;
}

#else /* a build without MPI */

int dn_comm_mpi_open(int *argc, char ***argv, dn_comm **out, dn_error *err)
{
    *out = NULL;
    int n = dn_comm_mpi_launched_size();
    if (n > 1)
        return dn_fail(err, "an MPI launcher started %d processes, but this "
                       "darknet was built without MPI (make MPI=1): each "
                       "would train alone on the whole batch", n);
    return 0;
}

#endif
