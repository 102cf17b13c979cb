"""Which process of a multi-process launch this is, from whichever launcher set it: torchrun, accelerate and
DeepSpeed (`RANK`, `LOCAL_RANK`), SLURM's `srun` (`SLURM_PROCID`, `SLURM_LOCALID`), Open MPI's `mpirun`
(`OMPI_COMM_WORLD_RANK`, `OMPI_COMM_WORLD_LOCAL_RANK`), MPICH or Intel MPI through PMI (`PMI_RANK`,
`MPI_LOCALRANKID`). The first variable of each list that holds a whole number wins, and the lists run from the
innermost launcher out: torchrun's ranks inside an `srun` task count, and so do `mpirun`'s inside an `sbatch`
allocation, where every rank inherits the batch step's `SLURM_PROCID=0`. Imports nothing but `os`: every
launched process reads it at start-up.
"""

import os

RANK_VARIABLES = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")
LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID")


def rank(variables: tuple[str, ...] = RANK_VARIABLES) -> int:
    """The process's rank: the first of `variables` set to a whole number, else 0."""
    for name in variables:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def is_main_process() -> bool:
    """Whether this is the main process of a launch: global and local rank 0 (or no launcher's ranks at all)."""
    return rank(RANK_VARIABLES) == 0 and rank(LOCAL_RANK_VARIABLES) == 0
