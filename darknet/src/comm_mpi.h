/*
 * comm_mpi.h - the communicator of comm.h over MPI: one replica per
 * process (an MPI rank), host buffers. Built with `make MPI=1`.
 */
#ifndef DN_COMM_MPI_H
#define DN_COMM_MPI_H

#include "comm.h"

/*
 * When an MPI launcher (mpirun, mpiexec, srun) started this process:
 * initialises MPI (MPI_Init_thread, funnelled: only the main thread calls
 * MPI) unless the program did, and returns a communicator over all its
 * processes in *out, freed with out->ops->free (which finalises MPI when
 * this call initialised it). Started without a launcher: *out = NULL, 0
 * (one process; MPI is never initialised). A build without MPI returns
 * *out = NULL too, but fails when a launcher started more than one
 * process: each would train alone and overwrite the others' checkpoints.
 */
int dn_comm_mpi_open(int *argc, char ***argv, dn_comm **out, dn_error *err);

/* The world size an MPI launcher announces in the environment (Open MPI,
 * MPICH/Hydra, Slurm), or 0 when there is none. */
int dn_comm_mpi_launched_size(void);

#endif
