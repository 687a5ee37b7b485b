"""Long-lived compiler processes speaking standard JSON.

One ``node worker.js MODULE`` process per solc-js version (loading the wasm costs 0.35–0.9 s,
so it is paid once per process, not per compile); jobs are newline-delimited JSON on stdin and
results come back one line each on stdout. A native ``solc`` on PATH whose version matches is run
as ``solc --standard-json`` per job instead. :class:`CompilerPool` keeps at most ``max_procs``
processes alive (least recently used idle ones are closed) and is safe to use from threads.

Every live worker is registered; :func:`stop_all_workers` (called by the CLI on Ctrl-C) kills
them all and refuses new ones, so an interrupted run leaves no ``node`` process behind. A
worker also exits by itself when its stdin closes or its parent process dies (``worker.js``),
so a run killed with SIGKILL leaves none for longer than the compile in progress.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from importlib import resources
from pathlib import Path

from evmlm.errors import EvmlmError
from evmlm.solc.versions import Compiler, installed_compilers

log = logging.getLogger(__name__)


class CompilerUnavailableError(EvmlmError):
    """No compiler process could be started or it died (node missing, module missing, crash)."""


_LIVE: "weakref.WeakSet[NodeWorker]" = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()
_STOPPED = threading.Event()


def stop_all_workers() -> None:
    """Kill every live solc worker of this process and refuse to start new ones (for Ctrl-C:
    the compile threads then fail fast instead of restarting workers)."""
    _STOPPED.set()
    with _LIVE_LOCK:
        workers = list(_LIVE)
    for w in workers:
        w.close()


def worker_script() -> Path:
    return Path(str(resources.files("evmlm.solc").joinpath("worker.js")))


class NodeWorker:
    """One ``node`` process hosting one solc-js version. Not thread-safe: the pool serialises use."""

    def __init__(self, compiler: Compiler):
        self.compiler = compiler
        self._next = 0
        if _STOPPED.is_set():
            raise CompilerUnavailableError("solc workers were stopped (interrupted)")
        try:
            self.proc = subprocess.Popen(
                ["node", "--max-old-space-size=4096", str(worker_script()), compiler.location],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                bufsize=1,
            )
        except OSError as e:
            raise CompilerUnavailableError(
                f"cannot start node for solc {compiler.version} ({e}); install Node.js and run scripts/setup.sh"
            ) from e
        with _LIVE_LOCK:
            _LIVE.add(self)
            stopped = _STOPPED.is_set()  # stop_all_workers ran while this one was starting
        if stopped:
            self.close()
            raise CompilerUnavailableError("solc workers were stopped (interrupted)")
        hello = self.proc.stdout.readline() if self.proc.stdout else ""
        if not hello.strip():
            self.close()
            raise CompilerUnavailableError(
                f"solc-js {compiler.version} at {compiler.location} did not start; reinstall with scripts/setup.sh"
            )
        self.last_used = time.monotonic()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def compile(self, standard_input: str, timeout_s: float) -> str:
        """Send one standard-JSON input string; return solc's output string.

        Raises CompilerUnavailableError when the process dies or exceeds ``timeout_s`` seconds
        (the process is killed; the pool starts a fresh one next time).
        """
        assert self.proc.stdin and self.proc.stdout
        self._next += 1
        job_id = self._next
        timer = threading.Timer(timeout_s, self.close)
        timer.start()
        try:
            self.proc.stdin.write(json.dumps({"id": job_id, "input": standard_input}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError, ValueError) as e:
            raise CompilerUnavailableError(f"solc {self.compiler.version} worker died ({e})") from e
        finally:
            timer.cancel()
        self.last_used = time.monotonic()
        if not line:
            raise CompilerUnavailableError(
                f"solc {self.compiler.version} worker died or timed out after {timeout_s:.0f} s"
            )
        msg = json.loads(line)
        if msg.get("id") != job_id:
            self.close()
            raise CompilerUnavailableError(
                f"solc {self.compiler.version} worker answered out of order"
            )
        return msg["output"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


def run_native(compiler: Compiler, standard_input: str, timeout_s: float) -> str:
    """One ``solc --standard-json`` run of a native binary, in an empty temporary folder: every
    source comes in ``standard_input``, and solc's own import reader (allowed only under its
    working directory, the base path) then finds nothing on disk to read."""
    try:
        with tempfile.TemporaryDirectory(prefix="evmlm-solc-") as empty:
            proc = subprocess.run(
                [compiler.location, "--standard-json"],
                input=standard_input,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                cwd=empty,
            )
    except subprocess.TimeoutExpired as e:
        raise CompilerUnavailableError(
            f"native solc {compiler.version} timed out after {timeout_s:.0f} s"
        ) from e
    return proc.stdout


class CompilerPool:
    """Warm compiler processes keyed by version; at most ``max_procs`` alive in all."""

    def __init__(self, max_procs: int = 4):
        self.max_procs = max(1, max_procs)
        self._starting = 0
        self._lock = threading.Condition()
        self._idle: "OrderedDict[int, NodeWorker]" = OrderedDict()
        self._busy: set[int] = set()
        self.started = 0

    def _compiler(self, version: str) -> Compiler:
        for c in installed_compilers():
            if c.version == version:
                return c
        raise CompilerUnavailableError(
            f"solc {version} is not installed; add it to package.json dependencies and run scripts/setup.sh"
        )

    def _acquire(self, compiler: Compiler) -> NodeWorker:
        with self._lock:
            while True:
                for wid, w in list(self._idle.items()):
                    if w.compiler.version != compiler.version:
                        continue
                    del self._idle[wid]
                    if w.alive():
                        self._busy.add(wid)
                        return w
                    w.close()
                if len(self._idle) + len(self._busy) + self._starting < self.max_procs:
                    break
                if self._idle:
                    _, victim = self._idle.popitem(last=False)  # least recently used idle process
                    victim.close()
                    break
                self._lock.wait(timeout=1.0)
            self._starting += 1
        try:
            w = NodeWorker(compiler)
        finally:
            with self._lock:
                self._starting -= 1
        with self._lock:
            self.started += 1
            self._busy.add(id(w))
        return w

    def _release(self, w: NodeWorker) -> None:
        with self._lock:
            self._busy.discard(id(w))
            if w.alive():
                self._idle[id(w)] = w
            self._lock.notify_all()

    def compile(self, version: str, standard_input: str, timeout_s: float = 300.0) -> str:
        """Compile one standard-JSON input with solc ``version``; returns the output string."""
        compiler = self._compiler(version)
        if compiler.kind == "native":
            return run_native(compiler, standard_input, timeout_s)
        w = self._acquire(compiler)
        try:
            return w.compile(standard_input, timeout_s)
        finally:
            self._release(w)

    def close(self) -> None:
        with self._lock:
            for w in self._idle.values():
                w.close()
            self._idle.clear()


_POOL: CompilerPool | None = None
_POOL_LOCK = threading.Lock()


def default_pool() -> CompilerPool:
    """The process-wide pool (size from ``EVMLM_SOLC_PROCS``, default 4); closed at exit."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = CompilerPool(max_procs=int(os.environ.get("EVMLM_SOLC_PROCS", "4")))
            atexit.register(_POOL.close)
        return _POOL
