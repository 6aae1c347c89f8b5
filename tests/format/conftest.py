"""`--bless` for the formatter's golden cases: rewrite `*.expected.mdl` from the output.

tests/conftest.py may register the same option; then this one stands aside.
Run `pytest tests/format --bless` and review the diff of `cases/`.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        parser.addoption(
            "--bless",
            action="store_true",
            default=False,
            help="rewrite golden expected files from the current output",
        )
    except ValueError:  # already registered by a conftest higher up
        pass


@pytest.fixture
def bless(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--bless"))
