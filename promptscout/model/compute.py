"""CPU threads and FLOP accounting of the Hugging Face backends.

:func:`configure_threads` gives torch one thread per physical core (once per process, unless the
user chose); :func:`flop_rates` turns a model's shape into the rates behind
:attr:`~promptscout.model.base.LanguageModel.flops`. Importing this module is cheap: torch loads
when a function runs.
"""

from __future__ import annotations

from typing import Any

_THREADS_SET = False
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def physical_cores() -> int:
    """Physical CPU cores this process may use (affinity, hyper-threads and a cgroup quota
    taken into account)."""
    import math
    import os

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cpus:
        cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            path = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
            with open(path) as f:
                cores.add(f.read().strip())
        except OSError:
            cores.add(str(cpu))
    count = len(cores)
    try:  # a container's CPU quota ("max 100000" means none)
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def configure_threads(threads: int | None = None) -> None:
    """Use one torch thread per physical core, once per process, unless the user chose.

    Hyper-threads only slow the matrix products down, and torch may count the machine's cores
    rather than the container's. ``OMP_NUM_THREADS`` (or MKL's, OpenBLAS's) set in the
    environment means the user decided: torch's setting is left alone.

    Args:
        threads: Exactly this many threads, whatever the environment says (a Ray worker's share
            of the CPUs); later calls without it keep the setting.
    """
    import os

    import torch

    global _THREADS_SET
    if threads is not None:
        _THREADS_SET = True
        torch.set_num_threads(max(1, threads))
        return
    if _THREADS_SET:
        return
    _THREADS_SET = True
    if any(os.environ.get(v) for v in _THREAD_VARIABLES):
        return
    cores = physical_cores()
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)


def flop_rates(hf_model: Any) -> tuple[int, int, int]:
    """FLOP rates of a model: (per token, per attended (query, key) pair, per output-head row).

    A token costs two FLOPs per parameter of the network body (embedding tables and the output
    head excluded: lookups, and the head runs only where a label token is read); attention adds
    ``2 * heads * head_dim`` FLOPs for the scores and as many for the weighted values, per layer
    and per attended position; each output-head row costs ``2 * hidden * vocab``.
    """
    config = hf_model.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    seen: set[int] = set()
    excluded = 0
    for module in (hf_model.get_input_embeddings(), hf_model.get_output_embeddings()):
        weight = getattr(module, "weight", None)
        if weight is not None and id(weight) not in seen:
            seen.add(id(weight))
            excluded += weight.numel()
    total = sum(p.numel() for p in hf_model.parameters())  # tied weights counted once
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    head_dim = int(getattr(config, "head_dim", 0) or (hidden // heads if heads else 0))
    head = getattr(hf_model.get_output_embeddings(), "weight", None)
    per_row = 2 * head.numel() if head is not None else 0
    return 2 * (total - excluded), 4 * layers * heads * head_dim, per_row
