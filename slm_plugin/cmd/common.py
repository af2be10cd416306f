"""What the simulation commands share: finding scenarios and reporting bad input."""

from __future__ import annotations

import dataclasses
import os
import sys

from slm_plugin.scenario import loader
from slm_plugin.scenario.model import Request, Scenario


class UsageError(Exception):
    """Bad input from the command line; printed as one line, exit status 2."""


def load_scenario(arg: str) -> Scenario:
    """A scenario by file path, or by the name of a shipped one."""
    if os.path.exists(arg) or arg.endswith((".yaml", ".yml")):
        return loader.load(arg)
    shipped = loader.shipped()
    if arg not in shipped:
        raise UsageError(f"no scenario file {arg!r} and no shipped scenario of that name "
                         f"(shipped: {', '.join(sorted(shipped))})")
    return loader.load_shipped(arg)


def override(scenario: Scenario, groups=(), to_site: str | None = None) -> Scenario:
    """The scenario with the request narrowed to some groups or sent to another site."""
    request = scenario.request
    if groups:
        known = {g.name for g in scenario.groups}
        for name in groups:
            if name not in known:
                raise UsageError(f"unknown server group {name!r} in scenario {scenario.name} "
                                 f"(groups: {', '.join(sorted(known))})")
        request = dataclasses.replace(request, groups=tuple(groups))
    if to_site:
        if to_site not in scenario.sites:
            raise UsageError(f"site {to_site!r} does not exist "
                             f"(sites: {', '.join(scenario.sites)})")
        request = Request(to_site=to_site, groups=request.groups)
    return dataclasses.replace(scenario, request=request)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
