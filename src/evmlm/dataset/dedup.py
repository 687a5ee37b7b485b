"""Normalisation and deduplication of pair records.

* **Normalised Solidity**: comments removed (``//``, ``/* */``, NatSpec; string literals kept
  intact), runs of whitespace collapsed to one space. Its SHA-256 is the *body hash* used by
  dedup and by the split's leakage check.
* **Exact dedup**: records with the same normalised Solidity *and* the same TAC (whitespace
  collapsed) are one; the record with the smallest ``id`` is kept.
* **Near-duplicate clusters**: MinHash (Broder 1997) over token 3-shingles of each distinct
  normalised body, LSH (datasketch ``MinHashLSH``) at ``threshold`` with candidate pairs
  verified by the estimated Jaccard similarity, clusters = connected components (union-find).
  In each cluster one body is the representative (most records, then smallest hash); the
  records of every other body in the cluster are dropped. All records of the representative
  body are kept: they are the same function compiled under different settings, i.e. different
  TAC for one target. ``cluster_id`` is recorded on every kept record.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# A string literal, a comment, or anything else; comments are replaced, strings kept.
_LEX = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.S)
_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+|[^\w\s]")

NUM_PERM = 128  # MinHash permutations (datasketch default)
SHINGLE = 3  # tokens per shingle


def normalise_solidity(text: str) -> str:
    """Solidity with comments removed and whitespace collapsed (strings untouched)."""
    no_comments = _LEX.sub(lambda m: m.group(0) if m.group(0)[0] in "\"'" else " ", text)
    return _WS.sub(" ", no_comments).strip()


def body_hash(text: str) -> str:
    """Hex SHA-256 of the normalised Solidity (the leakage-check key)."""
    return hashlib.sha256(normalise_solidity(text).encode("utf-8")).hexdigest()


def exact_key(solidity: str, tac: str) -> str:
    """Hex SHA-256 of normalised Solidity + whitespace-collapsed TAC."""
    return hashlib.sha256(
        (normalise_solidity(solidity) + "\0" + _WS.sub(" ", tac).strip()).encode("utf-8")
    ).hexdigest()


def exact_dedup(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep one record (smallest ``id``) per exact key; return (kept sorted by id, n dropped)."""
    best: dict[str, dict[str, Any]] = {}
    n = 0
    for r in records:
        n += 1
        k = exact_key(r["solidity"], r["tac"])
        if k not in best or r["id"] < best[k]["id"]:
            best[k] = r
    kept = sorted(best.values(), key=lambda r: r["id"])
    return kept, n - len(kept)


class UnionFind:
    """Disjoint sets over hashable keys (path halving, union by size)."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}
        self.size: dict[Any, int] = {}

    def find(self, x: Any) -> Any:
        if x not in self.parent:
            self.parent[x] = x
            self.size[x] = 1
            return x
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb] or (self.size[ra] == self.size[rb] and str(rb) < str(ra)):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def groups(self) -> dict[Any, list[Any]]:
        out: dict[Any, list[Any]] = defaultdict(list)
        for x in self.parent:
            out[self.find(x)].append(x)
        return out


def _shingles(norm: str) -> set[bytes]:
    toks = _TOKEN.findall(norm)
    if len(toks) < SHINGLE:
        return {" ".join(toks).encode()}
    return {" ".join(toks[i : i + SHINGLE]).encode() for i in range(len(toks) - SHINGLE + 1)}


def near_dup_clusters(bodies: Sequence[str], threshold: float, *, seed: int = 1) -> dict[str, str]:
    """Cluster distinct normalised bodies; return body hash → cluster id.

    ``bodies`` are normalised Solidity strings (deduplicated by the caller or not). The cluster
    id is the smallest body hash in the cluster, truncated to 16 hex chars. With
    ``threshold >= 1`` only identical bodies cluster.
    """
    from datasketch import MinHash, MinHashLSH

    by_hash = {hashlib.sha256(b.encode("utf-8")).hexdigest(): b for b in bodies}
    keys = sorted(by_hash)
    uf = UnionFind()
    for k in keys:
        uf.find(k)
    if threshold < 1.0 and len(keys) > 1:
        shingle_sets = [_shingles(by_hash[k]) for k in keys]
        hashes = MinHash.bulk(shingle_sets, num_perm=NUM_PERM, seed=seed)
        lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        for k, m in zip(keys, hashes):
            lsh.insert(k, m)
        position = {k: i for i, k in enumerate(keys)}
        for k, m in zip(keys, hashes):
            for other in lsh.query(m):
                if other != k and m.jaccard(hashes[position[other]]) >= threshold:
                    uf.union(k, other)
    out = {}
    for members in uf.groups().values():
        cid = min(members)[:16]
        for m in members:
            out[m] = cid
    return out


@dataclass(frozen=True)
class DedupResult:
    """Outcome of :func:`dedup`: kept records (with ``cluster_id``) and counts."""

    records: list[dict[str, Any]]
    exact_dropped: int
    near_dup_dropped: int
    n_clusters: int
    n_bodies_before: int
    n_bodies_after: int


def dedup(records: Iterable[dict[str, Any]], threshold: float, *, seed: int = 1) -> DedupResult:
    """Exact dedup, then near-duplicate clustering and removal (see module doc).

    Each input record needs ``id``, ``solidity``, ``tac``; kept records get ``cluster_id`` and
    are returned sorted by ``id``.
    """
    kept, exact_dropped = exact_dedup(records)
    norms = {}
    per_body: Counter[str] = Counter()
    for r in kept:
        n = normalise_solidity(r["solidity"])
        h = hashlib.sha256(n.encode("utf-8")).hexdigest()
        norms[h] = n
        r["_body"] = h
        per_body[h] += 1
    clusters = near_dup_clusters(list(norms.values()), threshold, seed=seed)
    members: dict[str, list[str]] = defaultdict(list)
    for h, cid in clusters.items():
        members[cid].append(h)
    rep = {cid: min(hs, key=lambda h: (-per_body[h], h)) for cid, hs in members.items()}
    out = []
    for r in kept:
        cid = clusters[r["_body"]]
        body = r.pop("_body")
        if body == rep[cid]:
            r["cluster_id"] = cid
            out.append(r)
    return DedupResult(
        out, exact_dropped, len(kept) - len(out), len(members), len(norms), len(members)
    )
