"""Expectations a page can check: a small comparison language over metric names, numbers and other runs,
stored beside a run's hypothesis (`lab new-run ... --expect "val/eer_16 <= 1.2 * val/eer_64"`) and evaluated
at the run's kept checkpoint step.

    val/eer_16 <= 1.2 * val/eer_64     two of the run's own metrics
    val/per < nsd_001                  a run id alone: that run's value of the expression's one metric
    val/per < nsd_001:val/per - 0.01   RUN:METRIC names another run's metric
    0.2 < val/loss < 0.5               comparisons chain

Metric names may hold `/` and `.`; division is written with spaces (`val/loss / 2`). Only numbers, names,
`+ - * /`, unary minus and `< <= > >=` are allowed: the text is parsed with `ast` and walked, never evaluated
by Python. Standard errors (`<metric>_se`) carry through the arithmetic to first order, independence assumed.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from typing import Callable

from lab.errors import LabError
from lab.records.metrics import format_number
from lab.records.store.names import RUN_ID

MAX_LENGTH = 300
NOISE_Z = 2.0  # within 2 combined standard errors (about a 95% interval) is inside the noise, on every verdict
NAME = r"[A-Za-z_]\w*(?:[/.]\w+)*"
REFERENCE = re.compile(rf"(?<![\w.])({NAME})(?::({NAME}))?")
COMPARISONS = {ast.Lt: ("<", operator.lt), ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt),
               ast.GtE: (">=", operator.ge)}
NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}  # what the figures show where a comparison fails
ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


@dataclass(frozen=True)
class Reference:
    """A name in an expectation: a metric of this run (run None) or of another run."""

    run: str | None
    metric: str

    def __str__(self) -> str:
        return f"{self.run}:{self.metric}" if self.run else self.metric


@dataclass(frozen=True)
class Figure:
    """A value with its standard error (0 when none was logged), as read or as computed."""

    value: float
    se: float = 0.0


@dataclass(frozen=True)
class Expectation:
    text: str
    tree: ast.Compare
    references: dict[str, Reference]  # placeholder name in the tree -> what it stands for

    def source(self, node: ast.AST) -> str:
        """The expectation's own words for a part of the tree."""
        text = ast.unparse(node)
        for name, reference in self.references.items():
            text = text.replace(name, str(reference))
        return text


def parse(text: str, run_exists: Callable[[str], bool] = lambda run_id: True) -> Expectation:
    """The expectation in `text`; LabError naming what is wrong (syntax, a name that is no run, an operator
    outside the language)."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_LENGTH:
        raise LabError(f"--expect takes a comparison of at most {MAX_LENGTH} characters, "
                       "like \"val/eer_16 <= 1.2 * val/eer_64\"")
    found: list[tuple[str, str | None]] = []

    def placeholder(match: re.Match) -> str:
        found.append((match.group(1), match.group(2)))
        return f"__ref{len(found) - 1}__"

    try:
        tree = ast.parse(REFERENCE.sub(placeholder, text.strip()), mode="eval").body
    except SyntaxError:
        raise LabError(f"--expect {text!r} is not a comparison: write metrics, numbers, run ids, + - * / and "
                       "< <= > >=, with spaces around a division") from None
    metrics = {name for name, metric in found if metric is None and not RUN_ID.fullmatch(name)}
    references = {}
    for index, (name, metric) in enumerate(found):
        if metric is not None or RUN_ID.fullmatch(name):
            if not run_exists(name):
                raise LabError(f"--expect names {name}, which is no run")
            if metric is None and len(metrics) != 1:
                raise LabError(f"--expect: {name} alone stands for its value of the expression's one metric; "
                               f"name the metric, like {name}:val/loss")
            references[f"__ref{index}__"] = Reference(name, metric or next(iter(metrics)))
        else:
            references[f"__ref{index}__"] = Reference(None, name)
    if not isinstance(tree, ast.Compare):
        raise LabError(f"--expect {text!r} compares nothing: use < <= > or >=")
    for node in ast.walk(tree):
        allowed = (ast.Compare, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.USub, ast.UAdd,
                   *COMPARISONS, *ARITHMETIC)
        number = isinstance(node, ast.Constant) and type(node.value) in (int, float)
        if not (isinstance(node, allowed) or number) or (isinstance(node, ast.Name) and node.id not in references):
            raise LabError(f"--expect {text!r}: only metrics, numbers, run ids, + - * / and < <= > >= are allowed")
    return Expectation(text.strip(), tree, references)


class Undecidable(Exception):
    """A figure the expectation needs is missing, or it divides by zero."""


def evaluate(expectation: Expectation, lookup: Callable[[Reference], dict | None]) -> dict:
    """Check an expectation: {"status": supported | not supported | inconclusive, "text": the figures}.

    `lookup(reference)` gives {"value", "se" (or None), "where"} of a name at its run's kept step, or None.
    A comparison within NOISE_Z combined standard errors is inconclusive.
    """
    read: dict[str, dict] = {}

    def value(node: ast.AST) -> Figure:
        if isinstance(node, ast.Constant):
            return Figure(float(node.value))
        if isinstance(node, ast.Name):
            figure = lookup(expectation.references[node.id])
            if figure is None:
                raise Undecidable(f"no {expectation.references[node.id]} at the kept step")
            read[node.id] = figure
            return Figure(figure["value"], figure.get("se") or 0.0)
        if isinstance(node, ast.UnaryOp):
            inner = value(node.operand)
            return Figure(-inner.value if isinstance(node.op, ast.USub) else inner.value, inner.se)
        left, right = value(node.left), value(node.right)
        if isinstance(node.op, ast.Div) and right.value == 0:
            raise Undecidable(f"{expectation.source(node.right)} is 0")
        result = ARITHMETIC[type(node.op)](left.value, right.value)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            se = (left.se ** 2 + right.se ** 2) ** 0.5
        else:  # first-order propagation of relative errors for * and /
            se = abs(result) * sum((side.se / side.value) ** 2 for side in (left, right) if side.value) ** 0.5
        return Figure(result, se)

    tree = expectation.tree
    try:
        sides = [value(node) for node in [tree.left, *tree.comparators]]
    except Undecidable as missing:
        return {"status": "inconclusive", "text": f"{expectation.text}: {missing}"}
    checks, failed, within = [], False, False
    for index, op in enumerate(tree.ops):
        symbol, holds = COMPARISONS[type(op)]
        left, right = sides[index], sides[index + 1]
        spread = NOISE_Z * (left.se ** 2 + right.se ** 2) ** 0.5
        inside = spread > 0 and abs(left.value - right.value) <= spread
        within |= inside
        broken = not holds(left.value, right.value) and not inside
        failed |= broken
        nodes = [tree.left, *tree.comparators][index:index + 2]
        words = [side_text(expectation, node, figure) for node, figure in zip(nodes, (left, right))]
        shown = NEGATED[symbol] if broken else symbol
        checks.append(f"{words[0]} {shown} {words[1]}" + (f" (within ±{format_number(spread)})" if inside else ""))
    sources = "; ".join(f"{expectation.references[name]} {format_number(figure['value'])}"
                        + (f" ± {format_number(figure['se'])}" if figure.get("se") else "") + f" ({figure['where']})"
                        for name, figure in sorted(read.items()))
    text = f"{expectation.text}: {', '.join(checks)}; {sources}"
    if failed:
        return {"status": "not supported", "text": text}
    if within:
        return {"status": "inconclusive", "text": f"{text}; inside the noise ({NOISE_Z:g} standard errors)"}
    return {"status": "supported", "text": text}


def side_text(expectation: Expectation, node: ast.AST, figure: Figure) -> str:
    """'1.2 * val/eer_64 = 0.252' for a computed side, the bare figure for a name or a number."""
    shown = format_number(figure.value)
    if isinstance(node, (ast.Name, ast.Constant)):
        return shown
    return f"{expectation.source(node)} = {shown}"
