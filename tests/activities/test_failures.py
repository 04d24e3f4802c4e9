"""Failure names are declared once (activities.contract.Failure): what the activities raise and
what the workflow branches on cannot drift apart."""

from __future__ import annotations

import ast
from pathlib import Path

import exchange.errors
import trading.errors
from activities.contract import Failure
from workflows.policies import REFUSING

ROOT = Path(__file__).resolve().parents[2]


def _subclasses(base: type) -> set[str]:
    found, todo = set(), [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub.__name__)
            todo.append(sub)
    return found


ERROR_CLASSES = _subclasses(trading.errors.TradingError) | _subclasses(exchange.errors.ExchangeError)


def _raised_by_activities() -> set[str]:
    """Failure members the activities name in their code (Failure.X)."""
    names = set()
    for path in (ROOT / "activities").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "Failure"):
                names.add(node.attr)
    return names


def test_every_failure_is_raised_by_an_activity_or_names_an_error_class() -> None:
    raised = _raised_by_activities()
    unexplained = [f.name for f in Failure if f.name not in raised and f.value not in ERROR_CLASSES]
    assert unexplained == []


def test_the_refusing_failures_are_failures() -> None:
    assert all(isinstance(kind, Failure) for kind in REFUSING)


def test_no_activity_names_a_failure_type_with_a_string_of_its_own() -> None:
    literal = []
    for path in sorted((ROOT / "activities").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "type" and isinstance(kw.value, ast.Constant):
                        literal.append(f"{path.name}:{node.lineno} type={kw.value.value!r}")
                if (isinstance(node.func, ast.Name) and node.func.id in ("refuse", "try_again")
                        and node.args and isinstance(node.args[0], ast.Constant)):
                    literal.append(f"{path.name}:{node.lineno} {node.func.id}({node.args[0].value!r})")
    assert literal == []
