"""Group-aware train/validation/test split and the leakage check.

Groups are connected components (union-find) over two kinds of keys per record: its *contract
family* — the package and the name of the contract that defines the function, the same across
package versions and compile settings — and its near-duplicate ``cluster_id`` (which contains
every copy of its normalised body). So every copy of a function body, every near-duplicate of
it and every function of the same contract family land in one split.

Assignment is deterministic given the seed: groups are ordered by SHA-256(seed, group key) and
each goes to the split whose share is furthest below its target (greedy deficit), which keeps
the split sizes (in records) close to the target shares when groups are small.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from evmlm.dataset.dedup import UnionFind, body_hash
from evmlm.errors import EvmlmError

log = logging.getLogger(__name__)

SPLITS: tuple[str, str, str] = ("train", "validation", "test")


class LeakageError(EvmlmError):
    """A normalised function body or near-duplicate cluster is in more than one split."""


def family_key(record: dict[str, Any]) -> str:
    """``package/ContractName`` of the contract that defines the function (version-free)."""
    defining = record.get("defining_contract") or record["contract"]
    return f"{record.get('source_package') or ''}/{defining.rsplit(':', 1)[-1]}"


def assign_splits(
    records: Sequence[dict[str, Any]], shares: Sequence[float], seed: int
) -> dict[str, int]:
    """Set ``record["split"]`` on every record (in place); return records per split.

    Each record needs ``cluster_id`` and the fields of :func:`family_key`.
    Raises ValueError when ``shares`` is not three numbers.
    """
    if len(shares) != 3:
        raise ValueError(f"split shares must be three numbers, got {list(shares)}")
    uf = UnionFind()
    for r in records:
        uf.union("family:" + family_key(r), "cluster:" + r["cluster_id"])
    weight: dict[Any, int] = defaultdict(int)
    for r in records:
        weight[uf.find("cluster:" + r["cluster_id"])] += 1
    roots = {root: min(members) for root, members in uf.groups().items() if root in weight}
    order = sorted(
        roots, key=lambda root: hashlib.sha256(f"{seed}\0{roots[root]}".encode()).hexdigest()
    )
    sizes = [0, 0, 0]
    where: dict[Any, int] = {}
    total = 0
    for root in order:
        w = weight[root]
        total += w
        i = max(range(3), key=lambda j: (shares[j] * total - sizes[j], -j))
        sizes[i] += w
        where[root] = i
    for r in records:
        r["split"] = SPLITS[where[uf.find("cluster:" + r["cluster_id"])]]
    return dict(zip(SPLITS, sizes))


def check_leakage(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Verify that no normalised body and no near-dup cluster is in two splits.

    Returns counts checked (``bodies``, ``clusters``). Raises :class:`LeakageError` naming the
    number of leaking keys and one example.
    """
    by_body: dict[str, set[str]] = defaultdict(set)
    by_cluster: dict[str, set[str]] = defaultdict(set)
    for r in records:
        by_body[body_hash(r["solidity"])].add(r["split"])
        by_cluster[r["cluster_id"]].add(r["split"])
    bad_bodies = [k for k, v in by_body.items() if len(v) > 1]
    bad_clusters = [k for k, v in by_cluster.items() if len(v) > 1]
    if bad_bodies or bad_clusters:
        example = next(
            r
            for r in records
            if (bad_bodies and body_hash(r["solidity"]) == bad_bodies[0])
            or (not bad_bodies and r["cluster_id"] == bad_clusters[0])
        )
        raise LeakageError(
            f"split leakage: {len(bad_bodies)} normalised function bodies and {len(bad_clusters)} near-dup clusters are in more than one split "
            f"(e.g. {example['contract']} {example['signature']}); the dataset was not written — report this as a bug"
        )
    return {"bodies": len(by_body), "clusters": len(by_cluster)}
