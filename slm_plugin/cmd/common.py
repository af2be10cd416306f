"""What the simulation commands share: finding scenarios and reporting bad input."""

from __future__ import annotations

import dataclasses
import sys

from slm_plugin import exception
from slm_plugin.scenario.loader import load_scenario  # noqa: F401  (the commands' way in)
from slm_plugin.scenario.model import Request, Scenario


def override(scenario: Scenario, groups=(), to_site: str | None = None) -> Scenario:
    """The scenario with the request narrowed to some groups or sent to another site."""
    request = scenario.request
    if groups:
        known = {g.name for g in scenario.groups}
        for name in groups:
            if name not in known:
                raise exception.UsageError(
                    f"unknown server group {name!r} in scenario {scenario.name} "
                    f"(groups: {', '.join(sorted(known))})")
        request = dataclasses.replace(request, groups=tuple(groups))
    if to_site:
        if to_site not in scenario.sites:
            raise exception.UsageError(f"site {to_site!r} does not exist "
                                       f"(sites: {', '.join(scenario.sites)})")
        request = Request(to_site=to_site, groups=request.groups)
    return dataclasses.replace(scenario, request=request)


def fail(message: str) -> int:
    print(f'error: {message}', file=sys.stderr)
    return 2
