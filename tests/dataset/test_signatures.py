from __future__ import annotations

import json

import pytest

from evmlm.dataset.signatures import SignatureDB, SignatureFileError, abi_signatures, selector_of


def test_selector_of_known_signatures():
    assert selector_of("transfer(address,uint256)") == "0xa9059cbb"
    assert selector_of("balanceOf(address)") == "0x70a08231"


def test_db_from_compile_output_agrees_with_solc(token_opt):
    db = SignatureDB()
    for a in token_opt.contracts:
        db.add_method_identifiers(a.method_identifiers)
    abi_db = SignatureDB()
    for a in token_opt.contracts:
        abi_db.add_abi(a.abi)
    assert list(db.items()) == list(abi_db.items())  # keccak of ABI signatures == solc's selectors
    assert db.lookup("0xA9059CBB") == ["transfer(address,uint256)"]
    assert db.resolve("a9059cbb") == "transfer(address,uint256)"
    assert db.lookup("0xdeadbeef") == [] and db.resolve("nonsense") is None


def test_abi_tuples_are_expanded(token_opt):
    abi = [
        {
            "type": "function",
            "name": "setInfo",
            "inputs": [
                {"type": "tuple[]", "components": [{"type": "uint64"}, {"type": "address"}]},
                {"type": "bytes32"},
            ],
        },
        {"type": "event", "name": "E", "inputs": []},
    ]
    assert list(abi_signatures(abi)) == ["setInfo((uint64,address)[],bytes32)"]


def test_collisions_are_listed():
    db = SignatureDB()
    db.add("transfer(address,uint256)")
    db.add("many_msg_babbage(bytes1)")  # a real collision: keccak gives 0xa9059cbb too
    assert db.collisions() == {
        "0xa9059cbb": ["many_msg_babbage(bytes1)", "transfer(address,uint256)"]
    }
    assert db.resolve("0xa9059cbb") is None


def test_save_load_round_trip(tmp_path, token_opt):
    db = SignatureDB()
    for a in token_opt.contracts:
        db.add_method_identifiers(a.method_identifiers)
    db.save(tmp_path / "sigs.tsv")
    back = SignatureDB.load(tmp_path / "sigs.tsv")
    assert list(back.items()) == list(db.items())
    assert (tmp_path / "sigs.tsv").read_text().splitlines()[0].startswith("0x06fdde03\tname()")


def test_import_4byte_formats(tmp_path):
    j = tmp_path / "4byte.json"
    j.write_text(
        json.dumps(
            {
                "results": [
                    {"hex_signature": "0x095ea7b3", "text_signature": "approve(address,uint256)"}
                ]
            }
        )
    )
    m = tmp_path / "map.json"
    m.write_text(json.dumps({"0x18160ddd": ["totalSupply()"]}))
    t = tmp_path / "sigs.csv"
    t.write_text("selector,signature\n0x23b872dd,transferFrom(address,address,uint256)\n")
    bare = tmp_path / "bare.txt"
    bare.write_text("# signatures\nallowance(address,address)\n")
    db = SignatureDB()
    assert [db.import_file(p) for p in (j, m, t, bare)] == [1, 1, 1, 1]
    assert db.resolve("0x095ea7b3") == "approve(address,uint256)"
    assert db.resolve("0x18160ddd") == "totalSupply()"
    assert db.resolve("0x23b872dd") == "transferFrom(address,address,uint256)"
    assert db.resolve("0xdd62ed3e") == "allowance(address,address)"


def test_bad_files_raise_one_line_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("0xa9059cbb\ttransfer(address,uint256)\nthis is not a signature\n")
    with pytest.raises(SignatureFileError, match="bad.tsv:2"):
        SignatureDB().import_file(bad)
    with pytest.raises(SignatureFileError, match="cannot read"):
        SignatureDB().import_file(tmp_path / "missing.tsv")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SignatureFileError, match="not valid JSON"):
        SignatureDB().import_file(broken)
