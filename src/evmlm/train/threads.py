"""How many torch threads to train with on a CPU that may be shared.

Measured on the 2-core reference machine (small preset, batch 8 x 256, bf16;
docs/architecture.md, "Training on the CPU"): quiet, 2 threads are ~1.8x 1 thread; with the
1-minute load average at 19, 2 threads gave 54-96 tok/s and 1 thread 295 tok/s, because each
OpenMP parallel region waits for its slowest, descheduled thread. So when the machine is
already oversubscribed *by work of the same or higher priority*, one thread is used.

Competitors are counted from ``/proc/<pid>/task/<tid>/stat`` (state ``R``, proc(5)): runnable
threads of other processes whose nice value is at most ours, sampled a few times. A nice-19
background job does not count: the kernel's scheduler gives it ~1.5% of a core against a
nice-0 thread (CFS weights 15 vs 1024, sched(7)), so it cannot stall our threads — the
1-minute load average counts it like any other and made a timed ``make run`` train with one
thread beside nice-19 jobs (2026-11-30). Without ``/proc`` the load average is used.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

SAMPLES = 5  # samples of the run queue, SAMPLE_GAP_S apart: one sample is noisy
SAMPLE_GAP_S = 0.02


def runnable_pids(proc: Path, own_pid: int, own_nice: int) -> list[int] | None:
    """The pid of each runnable thread (state R) of other processes with nice <= ``own_nice``
    now (a pid once per runnable thread), or None when ``proc`` is not a Linux procfs."""
    if not (proc / "self" / "stat").is_file():
        return None
    pids = []
    for stat in proc.glob("[0-9]*/task/[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the task ended while we looked
            continue
        # pid (comm) state ppid ... : comm may hold spaces and parentheses; fields after the
        # last ')' are state (3), ..., nice (19) -> index 16 after the state
        rest = text[text.rfind(")") + 2 :].split()
        if len(rest) < 17 or rest[0] != "R" or stat.parts[-4] == str(own_pid):
            continue
        if int(rest[16]) <= own_nice:
            pids.append(int(stat.parts[-4]))
    return pids


def runnable_competitors(proc: Path = Path("/proc")) -> float | None:
    """Mean runnable threads of other processes at our priority or higher (nice <= ours), over
    ``SAMPLES`` samples; None where ``proc`` is not a Linux procfs."""
    pid, nice = os.getpid(), os.nice(0)
    counts = []
    for i in range(SAMPLES):
        c = runnable_pids(proc, pid, nice)
        if c is None:
            return None
        counts.append(len(c))
        if i + 1 < SAMPLES:
            time.sleep(SAMPLE_GAP_S)
    return sum(counts) / len(counts)


def effective_threads(requested: int) -> int:
    """``requested`` (``run.threads``), or 1 when other processes at our priority or higher
    already keep every core busy (:func:`runnable_competitors` >= cores; without /proc: the
    1-minute load average > cores)."""
    cores = os.cpu_count() or 1
    if requested <= 1:
        return requested
    busy = runnable_competitors()
    what = "runnable threads at our priority or higher"
    if busy is None:
        try:
            busy, what = os.getloadavg()[0], "load average"
        except OSError:  # pragma: no cover - not on every platform
            return requested
        oversubscribed = busy > cores
    else:
        oversubscribed = busy >= cores
    if oversubscribed:
        log.warning(
            "%s %.1f >= %d cores: training with 1 thread instead of %d "
            "(oversubscribed threads stall)",
            what,
            busy,
            cores,
            requested,
        )
        return 1
    return requested
