from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evmlm.dataset.dedup import body_hash
from evmlm.dataset.split import SPLITS, LeakageError, assign_splits, check_leakage, family_key

from .conftest import record

# (package index, contract index, body index) triples: bodies repeat across contracts/packages.
triples = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 12), st.integers(0, 40)), min_size=1, max_size=150
)


def _records(spec):
    out = []
    for i, (p, c, b) in enumerate(spec):
        body = f"function f{b}() public {{ x = {b}; }}"
        out.append(
            record(
                i,
                body,
                contract=f"src/C{c}.sol:C{c}",
                package=f"pkg{p}",
                cluster=body_hash(body)[:16],
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(triples, st.integers(0, 2**16))
def test_no_body_cluster_or_family_in_two_splits(spec, seed):
    recs = _records(spec)
    sizes = assign_splits(recs, (0.85, 0.10, 0.05), seed)
    assert sum(sizes.values()) == len(recs)
    assert all(r["split"] in SPLITS for r in recs)
    check_leakage(recs)  # raises on leakage
    fam: dict[str, set[str]] = {}
    for r in recs:
        fam.setdefault(family_key(r), set()).add(r["split"])
    assert all(len(v) == 1 for v in fam.values())


@settings(max_examples=30, deadline=None)
@given(triples, st.integers(0, 2**16))
def test_split_is_deterministic_given_seed_and_independent_of_order(spec, seed):
    a, b = _records(spec), _records(spec)
    assign_splits(a, (0.85, 0.10, 0.05), seed)
    assign_splits(list(reversed(b)), (0.85, 0.10, 0.05), seed)
    assert [r["split"] for r in a] == [r["split"] for r in b]


def test_shares_are_close_to_target_with_many_small_groups():
    recs = [
        record(
            i,
            f"function f{i}() public {{ x = {i}; }}",
            contract=f"C{i}.sol:C{i}",
            cluster=f"{i:016x}",
        )
        for i in range(2000)
    ]
    sizes = assign_splits(recs, (0.85, 0.10, 0.05), 7)
    assert abs(sizes["train"] / 2000 - 0.85) < 0.01
    assert abs(sizes["validation"] / 2000 - 0.10) < 0.01
    assert abs(sizes["test"] / 2000 - 0.05) < 0.01
    other = [dict(r) for r in recs]
    assign_splits(other, (0.85, 0.10, 0.05), 8)
    assert [r["split"] for r in recs] != [r["split"] for r in other]  # the seed matters


def test_leakage_check_fails_on_a_body_in_two_splits():
    body = "function f() public { x = 1; }"
    a = record(1, body, cluster="a" * 16, split="train")
    b = record(2, body + " ", cluster="b" * 16, split="test")  # same normalised body
    with pytest.raises(LeakageError, match="1 normalised function bodies"):
        check_leakage([a, b])
    c = record(3, "function g() public { y = 2; }", cluster="a" * 16, split="validation")
    with pytest.raises(LeakageError, match="near-dup clusters"):
        check_leakage([a, c])
