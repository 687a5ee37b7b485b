"""Evaluation of decompilers: text, structure, fact and behaviour metrics, baselines, reports.

Modules: :mod:`~evmlm.evaluate.metrics` (similarity, edit distance, BLEU, ROUGE-L),
:mod:`~evmlm.evaluate.structure` (tree-sitter structure F1, facts, strict signature match),
:mod:`~evmlm.evaluate.behaviour` (splice + recompile; differential execution: :mod:`evmlm.decompile.verify`),
:mod:`~evmlm.evaluate.baselines` (Panoramix, nearest-neighbour retrieval, signature stub),
:mod:`~evmlm.evaluate.report` (aggregation, report.json / report.md, plots) and
:mod:`~evmlm.evaluate.stage` (the ``evaluate`` stage and ``evmlm evaluate``).
"""

from evmlm.evaluate.errors import BaselineError, EvaluationError, MetricsError, SpliceError

__all__ = ["BaselineError", "EvaluationError", "MetricsError", "SpliceError"]
