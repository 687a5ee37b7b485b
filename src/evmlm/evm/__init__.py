"""EVM static analysis: bytecode -> disassembly -> context-sensitive CFG -> functions -> SSA TAC.

Entry point: :func:`lift_contract`. Stages: :mod:`.disasm` (input, CBOR metadata, basic
blocks), :mod:`.cfg` (abstract interpretation of the stack, context cloning), :mod:`.internal`
(call/return pattern), :mod:`.ssa` (PHI placement), :mod:`.tac` (printer and parser),
:mod:`.recognisers` (named forms), :mod:`.stage` (the ``lift`` stage of ``evmlm run``).
"""

from __future__ import annotations

from evmlm.evm.cfg import AnalysisLimitError
from evmlm.evm.disasm import BytecodeError
from evmlm.evm.lifter import LiftedContract, LiftedFunction, lift_contract
from evmlm.evm.tac import TacSyntaxError, parse_function, print_function

LiftError = (BytecodeError, AnalysisLimitError)

__all__ = [
    "AnalysisLimitError",
    "BytecodeError",
    "LiftError",
    "LiftedContract",
    "LiftedFunction",
    "TacSyntaxError",
    "lift_contract",
    "parse_function",
    "print_function",
]
