from __future__ import annotations

from evmlm.dataset.dedup import body_hash, dedup, exact_dedup, near_dup_clusters, normalise_solidity

from .conftest import TAC, record

F = """function add(uint256 a, uint256 b) public pure returns (uint256) {
    // add two numbers
    return a + b; /* no overflow: checked */
}"""


def test_normalisation_strips_comments_keeps_strings():
    assert (
        normalise_solidity(F)
        == "function add(uint256 a, uint256 b) public pure returns (uint256) { return a + b; }"
    )
    s = "function f() public { emit Log(\"// not a comment\", '/* nor this */'); }"
    assert normalise_solidity(s) == s
    assert body_hash(F) == body_hash(F.replace("    ", "\t"))


def test_exact_dedup_needs_same_solidity_and_tac():
    a = record(3, F)
    b = record(1, F.replace("// add two numbers", "// another comment"))
    c = record(2, F, tac=TAC + "\n    STOP()")
    kept, dropped = exact_dedup([a, b, c])
    assert dropped == 1
    assert [r["id"] for r in kept] == ["00000001", "00000002"]


def _variant(name: str, extra: str = "") -> str:
    return f"""function {name}(address to, uint256 value) public returns (bool) {{
        uint256 have = balanceOf[msg.sender];
        require(have >= value, "insufficient balance for the transfer");
        balanceOf[msg.sender] = have - value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);{extra}
        return true;
    }}"""


def test_near_duplicates_cluster_and_unrelated_do_not():
    a = normalise_solidity(_variant("transfer"))
    b = normalise_solidity(_variant("transfer", " counter += 1;"))
    c = normalise_solidity("function owner() public view returns (address) { return _owner; }")
    clusters = near_dup_clusters([a, b, c], 0.7)
    ha, hb, hc = (body_hash(x) for x in (a, b, c))
    assert clusters[ha] == clusters[hb] != clusters[hc]
    assert clusters[ha] == min(ha, hb)[:16]
    # threshold 1.0: only identical bodies cluster
    strict = near_dup_clusters([a, b, c], 1.0)
    assert len(set(strict.values())) == 3


def test_dedup_keeps_representative_body_with_all_its_settings():
    recs = [
        record(1, _variant("transfer"), setting="opt200"),
        record(2, _variant("transfer"), tac=TAC + "\n    STOP()", setting="noopt"),
        record(3, _variant("transfer", " counter += 1;")),
        record(4, "function owner() public view returns (address) { return _owner; }"),
        record(5, _variant("transfer")),  # exact duplicate of 1
    ]
    res = dedup(recs, 0.7)
    assert res.exact_dropped == 1 and res.near_dup_dropped == 1
    assert [r["id"] for r in res.records] == ["00000001", "00000002", "00000004"]
    assert (
        res.records[0]["cluster_id"] == res.records[1]["cluster_id"] != res.records[2]["cluster_id"]
    )
    assert res.n_bodies_before == 3 and res.n_bodies_after == 2
