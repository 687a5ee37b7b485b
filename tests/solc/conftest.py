from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_compile_cache(tmp_path, monkeypatch):
    """Each test gets its own compile cache, so cache hits and misses are the test's own."""
    monkeypatch.setenv("EVMLM_CACHE_DIR", str(tmp_path / "cache"))
