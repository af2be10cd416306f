"""Planners decide order, bandwidth and switchover; loaded by name through stevedore."""

from __future__ import annotations

from stevedore import driver, extension

from slm_plugin.planning.plan import PlanError

NAMESPACE = "slm_plugin.planners"


def names() -> list[str]:
    """Every installed planner's name."""
    return sorted(extension.ExtensionManager(NAMESPACE).names())


def get(name: str, **options):
    """A planner instance by its entry-point name; PlanError names the choices."""
    known = names()
    if name not in known:
        raise PlanError(f"unknown strategy {name!r}; choose one of: {', '.join(known)}")
    return driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                invoke_kwds=options).driver
