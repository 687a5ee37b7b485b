"""Metric values on hand-checked pairs (not self-consistency)."""

from __future__ import annotations

import math

import pytest

from evmlm.evaluate import metrics as m
from evmlm.evaluate import structure as s

REF = """function transfer(address to, uint256 amount) public returns (bool) {
    require(to != address(0), "zero");
    balances[msg.sender] -= amount;
    balances[to] += amount;
    emit Transfer(msg.sender, to, amount);
    return true;
}"""


def test_code_tokens_split_operators_and_drop_comments() -> None:
    assert m.code_tokens("x+=1; // c\n/* d */ y>>=0x1f;") == [
        "x",
        "+=",
        "1",
        ";",
        "y",
        ">>=",
        "0x1f",
        ";",
    ]


def test_identical_code_has_distance_zero_and_full_scores() -> None:
    assert m.edit_distance(REF, REF) == 0.0
    assert m.bleu(REF, REF) == pytest.approx(100.0)
    assert m.rouge_l(REF, REF) == pytest.approx(1.0)


def test_whitespace_only_difference_is_distance_zero() -> None:
    assert m.edit_distance("uint x = 1;", "uint   x =\n\t1;  ") == 0.0


def test_known_edit_gives_exact_distance() -> None:
    # one substituted character in an 11-character string
    assert m.edit_distance("uint x = 1;", "uint x = 2;") == pytest.approx(1 / 11)
    # "kitten" -> "sitting": 3 edits, max length 7
    assert m.edit_distance("kitten", "sitting") == pytest.approx(3 / 7)
    # completely different strings of equal length: every character substituted
    assert m.edit_distance("abc", "xyz") == 1.0


def test_rouge_l_known_lcs() -> None:
    # reference tokens a b c d, hypothesis a c d: LCS 3, P = 1, R = 3/4, F = 6/7
    assert m.rouge_l("a b c d", "a c d") == pytest.approx(6 / 7)


def test_bleu_disjoint_is_zero_and_partial_between() -> None:
    assert m.bleu("a b c d e", "v w x y z") == pytest.approx(0.0, abs=1e-9)
    partial = m.bleu(REF, REF.replace("amount", "value"))
    assert 0.0 < partial < 100.0
    # corpus BLEU over identical corpora
    assert m.corpus_bleu([REF, "x = 1;"], [REF, "x = 1;"]) == pytest.approx(100.0)


def test_semantic_similarity_identical_is_one_and_unrelated_lower() -> None:
    sims = m.semantic_similarities(
        [REF, REF, REF],
        [REF, REF.replace("amount", "value"), "The weather in Paris is mild in spring."],
    )
    assert sims[0] == 1.0
    assert 0.8 < sims[1] < 1.0
    assert sims[2] < 0.3


def test_summary_figures_thresholds_are_strict() -> None:
    fig = m.summary_figures([0.9, 0.8, 0.5, 1.0], [0.1, 0.4, 0.39, 0.9])
    assert fig == {"share_sim_gt_0.8": 0.5, "share_edit_lt_0.4": 0.5}


def test_structure_and_facts_of_known_function() -> None:
    f = s.analyse_function(REF)
    assert f.parsed and not f.has_error
    assert f.signature == "transfer(address,uint256)"
    assert f.structure["require"] == 1 and f.structure["emit"] == 1 and f.structure["return"] == 1
    assert f.structure["assign"] == 2
    assert f.facts == {"guard:require": 1, "write:balances": 2, "event:Transfer": 1, "return:1": 1}


def test_structural_f1_known_values() -> None:
    ref = s.analyse_function(REF)
    assert s.structural_f1(ref, ref) == 1.0
    # hypothesis drops the emit: ref has 5+ items, hyp one fewer
    hyp = s.analyse_function(REF.replace("    emit Transfer(msg.sender, to, amount);\n", ""))
    n_ref = sum(ref.structure.values())
    assert s.structural_f1(ref, hyp) == pytest.approx(2 * (n_ref - 1) / (2 * n_ref - 1))
    assert s.structural_f1(ref, s.analyse_function("not solidity at all")) == 0.0


def test_hallucinated_call_and_write_lower_precision_not_recall() -> None:
    ref = s.analyse_function(REF)
    hyp = s.analyse_function(
        REF.replace("return true;", "owner = to; IERC20(token).transfer(to, amount); return true;")
    )
    counts = s.fact_counts(ref, hyp)
    assert counts["call"] == (0, 1, 0)
    assert s.precision_recall(*counts["call"]) == (0.0, 1.0)
    assert counts["write"] == (2, 3, 2)
    p, r = s.precision_recall(*counts["all"])
    assert p == pytest.approx(5 / 7) and r == 1.0


def test_local_variable_writes_are_not_storage_writes() -> None:
    f = s.analyse_function("function f(uint a) external { uint b = a; b += 1; a = 2; total = b; }")
    assert [k for k in f.facts if k.startswith("write:")] == ["write:total"]


def test_strict_signature_match() -> None:
    hyp = s.analyse_function(
        "function transfer(address payable dst, uint wad) external returns (bool) { return true; }"
    )
    assert s.signature_match("transfer(address,uint256)", hyp)
    assert not s.signature_match("transfer(address,uint128)", hyp)
    # a keyword-only resemblance is not a match
    assert not s.signature_match("transferFrom(address,address,uint256)", hyp)
    assert not s.signature_match(
        "transfer(address,uint256)", s.analyse_function("// transfer(address,uint256)")
    )
    assert s.normalise_signature("f(uint[] memory xs, bytes calldata b)") == "f(uint256[],bytes)"


def test_precision_recall_conventions() -> None:
    assert s.precision_recall(0, 0, 0) == (1.0, 1.0)
    assert s.precision_recall(1, 2, 4) == (0.5, 0.25)
    assert math.isclose(s.f1_from_counts(1, 2, 4), 2 / 6)


def test_public_state_variables_give_getter_signatures() -> None:
    # the dataset stores a getter's source as solc's src of the declaration: without its ';'
    assert (
        s.analyse_function("bytes32 public constant ADMIN = keccak256('A')").signature == "ADMIN()"
    )
    assert (
        s.analyse_function(
            "mapping(address => mapping(uint256 id => bool)) public allowed;"
        ).signature
        == "allowed(address,uint256)"
    )
    assert s.analyse_function("uint[] public xs").signature == "xs(uint256)"
    assert s.analyse_function("uint private y").signature is None
    assert s.signature_match("name()", s.analyse_function('string public name = "Wrapped Ether"'))


def test_member_syntax_check_accepts_getters_and_names_errors() -> None:
    from evmlm.decompile import check_function_syntax, complete_member

    assert check_function_syntax('string public name = "W"') is None
    assert complete_member('string public name = "W"') == 'string public name = "W";'
    assert check_function_syntax("function f() external {}") is None
    assert (check_function_syntax("function f( {") or "").startswith(
        "not valid Solidity (syntax error at line 1"
    )
    assert check_function_syntax("") == "the model produced no text"
