"""The check the overhead benchmarks make before timing anything: the config written out by
hand holds exactly what the app's own config builder produces (benchmarks/training_overhead.py,
benchmarks/rl_overhead.py)."""

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def config_differences(mine: Mapping[str, Any], apps: Mapping[str, Any]) -> list[str]:
    """The fields whose values differ, or that only one of the two configs has, sorted."""
    return sorted(
        k for k in set(mine) | set(apps) if mine.get(k, _MISSING) != apps.get(k, _MISSING)
    )
