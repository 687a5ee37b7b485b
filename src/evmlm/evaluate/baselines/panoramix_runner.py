"""Runs inside .venv-panoramix (not importable from evmlm's venv): decompile one contract.

Reads a JSON job ``{"bytecode": hex, "signatures": {"0x12345678": "name(type,...)"}}`` on
stdin and writes ``{"functions": {"0x12345678": text}, "problems": [...]}`` on stdout.

Run-time patches (docs/architecture.md, "Bytecode tools"): PUSH0 (0x5f, EIP-3855) is added to the
opcode table (Panoramix 0.6.1 predates Shanghai and would decompile 0.8.20+ code to a bare
revert), and the bundled signature database (846 MB unpacked, breaks on ``dbm.dumb``) is
replaced by the job's own signatures, the same ones the model's prompt gets.
"""

import contextlib
import io
import json
import logging
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def main() -> None:
    job = json.load(sys.stdin)
    logging.disable(logging.CRITICAL)

    import panoramix.loader
    import panoramix.utils.opcode_dict as od
    import panoramix.utils.signatures
    import panoramix.utils.supplement

    od.opcode_dict.setdefault(0x5F, "push0")  # EIP-3855: PUSH0 pushes one zero word
    od.stack_diffs.setdefault("push0", 1)
    sigs = {}
    for sel, text in (job.get("signatures") or {}).items():
        m = re.match(r"^([A-Za-z_$][A-Za-z0-9_$]*)\((.*)\)$", text)
        if not m:
            continue
        types = [t for t in m.group(2).split(",") if t] if "(" not in m.group(2) else []
        sigs["{:#010x}".format(int(sel, 16))] = {
            "name": m.group(1),
            "inputs": [{"type": t, "name": f"arg{i + 1}"} for i, t in enumerate(types)],
        }

    def fetch_sig(h):
        if isinstance(h, str):
            h = int(h, 16)
        return sigs.get("{:#010x}".format(h))

    panoramix.utils.supplement.fetch_sig = fetch_sig
    panoramix.loader.fetch_sig = fetch_sig
    panoramix.utils.signatures.fetch_sig = fetch_sig

    from panoramix.decompiler import decompile_bytecode

    with contextlib.redirect_stdout(io.StringIO()):
        dec = decompile_bytecode(job["bytecode"])
    funcs = {}
    for f in (dec.json or {}).get("functions", []):
        h = f.get("hash")
        if isinstance(h, int):
            h = "{:#010x}".format(h)
        funcs[str(h)] = ANSI.sub("", f.get("print", ""))
    problems = [str(p) for p in (dec.json or {}).get("problems", {})]
    json.dump({"functions": funcs, "problems": problems}, sys.stdout)


if __name__ == "__main__":
    main()
