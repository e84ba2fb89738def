"""pytest-benchmark settings for the hot-path suite (issue 10).

`python -m pytest` runs these benchmarks with the rest of the tests, so each one runs a fixed,
small number of rounds (`measure`) instead of pytest-benchmark's default of up to a second of
calibrated rounds per test. For steadier figures ask for more: `--benchmark-min-rounds 50`
raises every benchmark's rounds to at least 50. `--benchmark-disable` runs each hot path once,
as a plain test, and still checks its result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def measure(benchmark: Any, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``measure(fn, *args, rounds=R, iterations=I)``: time `fn(*args)` and return its result.

    One warm-up round, then `rounds` rounds of `iterations` calls each (pytest-benchmark's
    figures are per call). `rounds` is raised to ``--benchmark-min-rounds`` when that is more.
    """
    min_rounds = int(request.config.getoption("benchmark_min_rounds"))

    def run(fn: Callable[..., Any], *args: Any, rounds: int, iterations: int = 1) -> Any:
        return benchmark.pedantic(
            fn,
            args=args,
            rounds=max(rounds, min_rounds),
            iterations=iterations,
            warmup_rounds=1,
        )

    return run
