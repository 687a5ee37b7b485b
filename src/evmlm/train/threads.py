"""How many torch threads to train with on a CPU that may be shared.

Measured on the 2-core reference machine (small preset, batch 8 x 256, bf16;
docs/architecture.md, "Training on the CPU"): quiet, 2 threads are ~1.8x 1 thread; with the
1-minute load average at 19, 2 threads gave 54-96 tok/s and 1 thread 295 tok/s, because each
OpenMP parallel region waits for its slowest, descheduled thread. So when the machine is
already oversubscribed, one thread is used.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def effective_threads(requested: int) -> int:
    """``requested`` (``run.threads``), or 1 when the 1-minute load average exceeds the core count."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return requested
    if requested > 1 and load > cores:
        log.warning(
            "load average %.1f > %d cores: training with 1 thread instead of %d (oversubscribed threads stall)",
            load,
            cores,
            requested,
        )
        return 1
    return requested
