"""Planners decide order, bandwidth and switchover; loaded by name through stevedore."""

from __future__ import annotations

from slm_plugin import exception
from slm_plugin.loader import Loader

NAMESPACE = 'slm_plugin.planners'

_PLANNERS = Loader(NAMESPACE, lambda name, known: exception.UnknownStrategy(
    strategy=name, known=known))


def names() -> list[str]:
    """Every installed planner's name."""
    return _PLANNERS.names()


def check(name: str) -> None:
    """Raise UnknownStrategy, naming the choices, unless planner ``name`` is installed."""
    _PLANNERS.check(name)


def get(name: str, **options):
    """A planner instance by its entry-point name; UnknownStrategy names the choices."""
    return _PLANNERS.load(name, **options)
