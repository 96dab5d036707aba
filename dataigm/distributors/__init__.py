"""Distributors: how a stage's work units (shards, usually) reach the processes that do them.

A stage cuts its work into units and says how one unit is done; a distributor only maps units to workers and
retries (img2dataset's split: reader -> worker -> writer -> distributor). Two are built in:

* ``local``: this process is one rank of a launch (one process, ``torchrun``, an ``srun`` step); each rank takes its
  share of the units (:func:`dataigm.core.stage.run_units`). This is every stage's own code path.
* ``ray``: the driver (this process) hands every unit to Ray Data actors on a Ray cluster
  (:func:`dataigm.distributors.ray.map_units`); each actor loads its pipeline once, a unit whose worker died is
  re-run, and the driver writes the manifest once every unit is done.

Only :mod:`dataigm.distributors.ray` imports ray, and only when a stage runs with ``distributor="ray"``.

    >>> check_distributor("local")
    'local'
"""

from __future__ import annotations

import importlib.util
from typing import Any

from dataigm.core.errors import InputError, MissingExtraError, UnknownNameError
from dataigm.core.partition import RankInfo

DISTRIBUTORS = ("local", "ray")
EXTRA_OF = {"ray": "ray"}  # distributor -> the pip extra that installs it


def check_distributor(name: str) -> str:
    """``name`` if it is a distributor; else an :class:`UnknownNameError` listing the valid ones."""
    if name not in DISTRIBUTORS:
        raise UnknownNameError(f"distributor {name!r} unknown; valid: {', '.join(DISTRIBUTORS)}")
    return name


def is_installed(name: str) -> bool:
    """Whether distributor ``name`` can run here (its extra is installed), without importing it."""
    check_distributor(name)
    extra = EXTRA_OF.get(name)
    return extra is None or importlib.util.find_spec(extra) is not None


def require(name: str) -> str:
    """``name`` once it is known and installed; a missing extra raises :class:`MissingExtraError` naming it."""
    if not is_installed(name):
        extra = EXTRA_OF[name]
        raise MissingExtraError(extra, f"distributor {name!r} needs the {extra} extra: pip install 'dataigm[{extra}]'")
    return name


def require_single_driver(rank: RankInfo, stage: str) -> None:
    """Refuse a Ray run started as one rank of several: the one driver hands every unit to the cluster."""
    if rank.world_size > 1:
        raise InputError(f"{stage} with distributor 'ray' runs as one driver process that hands every shard to the Ray cluster, "
                         f"but this is rank {rank.rank} of {rank.world_size}: start it once, without a multi-process launcher")


def ray_distributor() -> Any:
    """The :mod:`dataigm.distributors.ray` module (imports ray); a missing extra raises :class:`MissingExtraError`."""
    require("ray")
    from dataigm.distributors import ray as ray_distributor_module

    return ray_distributor_module
