"""NLG benchmarks: each loader parses its real-schema sample (tests/fixtures/nlg), the metrics
match hand-checked values, hub names fail in one line offline, and a tiny model runs a
benchmark end to end (batched, left-padded generation)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evmlm.nlg import metrics, run_benchmark, score
from evmlm.nlg.data import NLGDataError, load_benchmark, wikisql_query

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "nlg"


def test_e2e_groups_references_by_meaning_representation() -> None:
    ex = load_benchmark("e2e", FIX / "e2e_testset_w_refs.csv")
    assert [len(e.references) for e in ex] == [2, 3, 1]
    assert ex[0].prompt == (
        "Meaning representation: name[The Vaults], eatType[pub], priceRange[more than £30], "
        "customerRating[5 out of 5], near[Café Adriatic]\nDescription:"
    )
    assert (
        ex[1].references[2]
        == "Near Café Brazil there is a cheap English pub called The Cambridge Blue."
    )


def test_samsum_reads_the_json_list() -> None:
    ex = load_benchmark("samsum", FIX / "samsum_test.json")
    assert [e.id for e in ex] == ["13818513", "13728867", "13681000"]
    assert ex[0].references == ("Amanda baked cookies and will bring Jerry some tomorrow.",)
    assert ex[0].prompt.startswith("Dialogue:\nAmanda: I baked  cookies.") and ex[
        0
    ].prompt.endswith("\nSummary:")


def test_wikisql_joins_tables_and_formats_queries_as_the_release() -> None:
    ex = load_benchmark("wikisql", FIX / "dev.jsonl")
    assert [e.references[0] for e in ex] == [
        # the release's first dev query
        "SELECT Notes FROM table WHERE Current slogan = SOUTH AUSTRALIA",
        "SELECT Position FROM table WHERE School/Club Team = Butler CC (KS)",
        "SELECT COUNT School/Club Team FROM table WHERE No. = 3",
        "SELECT MAX No. FROM table",
    ]
    assert "Table columns: State/territory | Text/background colour | Format |" in ex[0].prompt
    # the hub's column-wise conds layout gives the same string; no header -> col<i>
    hub = {
        "sel": 5,
        "agg": 0,
        "conds": {"column_index": [3], "operator_index": [0], "condition": ["SOUTH AUSTRALIA"]},
    }
    assert (
        wikisql_query(hub, ["a", "b", "c", "Current slogan", "e", "Notes"]) == ex[0].references[0]
    )
    assert wikisql_query(hub, None) == "SELECT col5 FROM table WHERE col3 = SOUTH AUSTRALIA"
    refs = [list(e.references) for e in ex]
    # exact match is case- and whitespace-normalised; a wrong value is a miss
    assert (
        metrics.exact_match(
            ["select notes  from TABLE where current slogan = south australia"], refs[:1]
        )
        == 100.0
    )
    assert (
        metrics.exact_match(["SELECT Notes FROM table WHERE Current slogan = VICTORIA"], refs[:1])
        == 0.0
    )


def test_mnli_skips_no_majority_examples_and_scores_accuracy() -> None:
    ex = load_benchmark("mnli", FIX / "multinli_1.0_dev_matched.jsonl")
    assert [(e.id, e.references[0]) for e in ex] == [
        ("63735n", "neutral"),
        ("91383c", "contradiction"),
        ("755e", "entailment"),
    ]
    assert score("mnli", ["Neutral.", "entailment", "entailment because"], ex) == {
        "accuracy": pytest.approx(200 / 3)
    }


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    for name, src, msg in (
        ("e2e", "e2e_nlg", "hub dataset not available offline"),
        ("samsum", tmp_path / "missing.json", "no such file and not a hub name"),
        ("nope", "x", "unknown benchmark"),
        ("wikisql", FIX / "multinli_1.0_dev_matched.jsonl", "tables file"),
    ):
        with pytest.raises(NLGDataError, match=msg) as e:
            load_benchmark(name, src)
        assert "\n" not in str(e.value)
    (tmp_path / "x.csv").write_text("meaning,text\na,b\n")
    with pytest.raises(NLGDataError, match="missing field"):
        load_benchmark("e2e", tmp_path / "x.csv")


def test_bleu_and_rouge_hand_checked() -> None:
    refs = [["The Vaults pub near Café Adriatic has a 5 star rating."]]
    for n in (1, 2, 3, 4):
        assert metrics.bleu([refs[0][0]], refs, n) == pytest.approx(100.0)
    # "the cat sat on the mat" vs "the cat is on the mat": 5/6 unigrams, 3/5 bigrams, no BP
    b1 = metrics.bleu(["the cat sat on the mat"], [["the cat is on the mat"]], 1)
    b2 = metrics.bleu(["the cat sat on the mat"], [["the cat is on the mat"]], 2)
    assert b1 == pytest.approx(100 * 5 / 6) and b2 == pytest.approx(100 * (5 / 6 * 3 / 5) ** 0.5)
    # a second reference is used when it matches better; uneven reference counts are allowed
    assert metrics.bleu(
        ["a b c d", "w x y z"], [["a b c d", "q"], ["w x y z"]], 4
    ) == pytest.approx(100.0)
    r = metrics.rouge(["the cat sat"], [["the cat ran", "a dog"]])
    assert r["rouge1"] == pytest.approx(100 * 2 / 3) and r["rougeL"] == pytest.approx(100 * 2 / 3)
    assert r["rouge2"] == pytest.approx(50.0)
    assert metrics.rouge(["One. Two."], [["One. Two."]])["rougeLsum"] == pytest.approx(100.0)


def test_meteor_as_nltk_computes_it_with_debian_wordnet() -> None:
    if metrics._wordnet_root() is None:
        pytest.skip("WordNet (Debian wordnet-base) not installed: METEOR is reported unavailable")
    hyp = (
        "It is a guide to action which ensures that the military always obeys the commands "
        "of the party"
    )
    ref = "It is a guide to action that ensures that the military will forever heed Party commands"
    assert (
        round(metrics.meteor([hyp], [[ref]]), 3) == 0.694
    )  # NLTK 3.10's documented value (0.6944)
    # WordNet synonyms count as matches: "auto" ~ "car" (car.n.01) scores like the identical
    # sentence (NLTK looks synonyms up after Porter-stemming, so "automobil" would not match)
    same = metrics.meteor(["the car stopped"], [["the car stopped"]])
    assert metrics.meteor(["the auto stopped"], [["the car stopped"]]) == pytest.approx(same)
    assert metrics.meteor(["the car stopped"], [["the banana stopped"]]) < same


def test_meteor_unavailable_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(metrics, "WORDNET_DIR", tmp_path)
    monkeypatch.delenv("EVMLM_WORDNET", raising=False)
    metrics.load_wordnet.cache_clear()
    try:
        with pytest.raises(metrics.MetricUnavailable, match="wordnet-base"):
            metrics.meteor(["a"], [["a"]])
        out = metrics.generation_metrics(["a b c d"], [["a b c d"]])
        assert out["meteor"] is None and out["bleu4"] == pytest.approx(100.0)
    finally:
        metrics.load_wordnet.cache_clear()


def test_tiny_model_runs_a_benchmark(make_tiny_model) -> None:
    from evmlm.train import load_for_inference

    folder = make_tiny_model((FIX / "samsum_test.json").read_text())
    model, tok = load_for_inference(folder)
    out = run_benchmark(
        "e2e", FIX / "e2e_testset_w_refs.csv", model, tok, max_new_tokens=8, batch_size=2
    )
    assert out["n"] == 3 and len(out["predictions"]) == 3
    assert set(out["metrics"]) == {
        "bleu1",
        "bleu2",
        "bleu3",
        "bleu4",
        "rouge1",
        "rouge2",
        "rougeL",
        "rougeLsum",
        "meteor",
    }
    assert all(v is None or 0 <= v <= 100 for v in out["metrics"].values())
