/*
 * cli.h - the command line's helpers, shared by its commands (cmd_*.c
 * beside this file). The command line is a client of libdarknet like any
 * other program: it parses argv, loads the cfg with its overrides and hands
 * the library options structs. None of this is part of the library.
 */
#ifndef DN_CLI_H
#define DN_CLI_H

#include "comm.h"
#include "darknet.h"

/* Each command: returns the process exit status. argv[0] is the command. */
int dn_cmd_lr(int argc, char **argv);
int dn_cmd_classifier(int argc, char **argv);
int dn_cmd_summary(int argc, char **argv);

/* Value of "-name value", or def. Marks both argv slots consumed. */
const char *dn_arg_str(int argc, char **argv, const char *name, const char *def);
/* 1 if the flag "-name" is present (consumes it). */
int dn_arg_flag(int argc, char **argv, const char *name);
/* -name N as an integer; a malformed value is an error. */
int dn_arg_long(int argc, char **argv, const char *name, long def, long *out,
                dn_error *err);

/*
 * Load a cfg and apply the command line's overrides in order: every
 * "-overlay FILE" then every "-set key=value" (both repeatable, [net] only).
 * *strict is set (ORed) when "-strict" is given; callers may consume the
 * flag first (dn_arg_flag) so that it is not taken for a positional.
 */
int dn_cli_load_cfg(const char *path, int argc, char **argv, dn_cfg **out,
                    int *strict, dn_error *err);

/* -gpus LIST: "0" or "0,1,3" -> devices (each listed once, each below
 * DN_MAX_GPUS). */
int dn_devices_parse(const char *list, dn_devices *out, dn_error *err);

/*
 * The device options: "-gpus 0,1" (CUDA devices), "-nogpu" (the CPU).
 * Without either, a GPU build uses GPU 0 when there is one (Darknet's
 * default) and the CPU otherwise, and says so on stderr; a CPU build uses
 * the CPU. -gpus in a CPU build is an error that says how to rebuild.
 */
int dn_arg_devices(int argc, char **argv, dn_devices *out, dn_error *err);

/*
 * The device options of one rank of a training across processes (comm,
 * e.g. comm_mpi.h's under mpirun; NULL or a group of one: dn_arg_devices):
 * one GPU per rank. "-gpus ID" is this rank's device (a launcher gives
 * every rank the same line: a wrapper script can give each its own);
 * "-gpus" with several ids is an error (several GPUs in one process are
 * the one-process path, without mpirun); "-nogpu" is the CPU. Without
 * either, a GPU build takes GPU (local rank modulo the GPUs of the
 * machine), the local rank being comm->node_rank, and says so on stderr.
 */
int dn_arg_rank_devices(int argc, char **argv, const dn_comm *comm,
                        dn_devices *out, dn_error *err);

/* After a command consumed its own options: any other "-x" left is an
 * error (-set, -overlay and -strict are the cfg loader's). */
int dn_check_options(int argc, char **argv, dn_error *err);

/* Positional arguments left after removing "-x value" pairs and flags that
 * were consumed; returns count, fills pos (up to max). */
int dn_positional(int argc, char **argv, char **pos, int max);

#endif
