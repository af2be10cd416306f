"""Cloud drivers: what the API and the engines need from a cloud, loaded by name.

A driver (entry point namespace ``slm_plugin.clouds``, chosen by ``[engine]
cloud``) answers three questions the control loop does not ask:

* which server group a request names, and which servers are in it
  (``find_group``, ``groups_on_host``);
* what the planner should know to move it to a target (``scenario``: sites,
  hosts, links, the group's guests and the request), raising InvalidTarget
  for a target that does not exist;
* which :class:`slm_plugin.execution.cloud.Cloud` drives the migrations
  (``cloud``, shared by every job of the engine, or ``cloud_for`` a job).
  A Cloud whose ``progress`` shows only the migrations it started itself
  (NovaCloud) offers ``handle(member)``, recorded after each start, and
  ``adopt(member, requested_at, handle)``, which an engine taking the job
  over calls for every member whose start was asked for.

The scenario's member names are the keys the Cloud reports progress under;
``ServerInfo.name`` must be that key. ``Cloud.now()`` must be a clock every
engine reads alike (seconds since a fixed instant), because an engine that
takes a job over measures the job's time from the instant its first owner
started it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from stevedore import driver, extension

NAMESPACE = 'slm_plugin.clouds'


class GroupNotFound(LookupError):
    """No server group of that id or name."""


class InvalidTarget(ValueError):
    """The requested destination does not exist or cannot take the group."""


class MembersBusy(InvalidTarget):
    """A member of the group is migrating already or busy with another task (a conflict)."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    server_id: str
    name: str  # the member's key in the scenario and in Cloud.progress()
    host: str


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: str
    name: str
    policy: str
    servers: tuple[ServerInfo, ...]


class CloudDriver:
    """Base of the cloud drivers; a driver is built with the service's ConfigOpts."""

    #: Whether the migrations outlive this process: another engine driving the
    #: same cloud sees them. Without it, a job whose members started cannot be
    #: taken over by another engine (it would start them again).
    shared = True
    #: Cloud seconds per wall-clock second; None for a cloud whose clock moves
    #: only when the loop waits on it (a bare simulation).
    time_scale: float | None = 1.0

    def __init__(self, conf):
        self.conf = conf

    def find_group(self, ref: str) -> GroupInfo:
        raise NotImplementedError

    def groups_on_host(self, host: str) -> list[GroupInfo]:
        raise NotImplementedError

    def scenario(self, group: GroupInfo, target: dict, options: dict, resuming: bool = False):
        """The planner's view of moving group to target.

        ``resuming``: the job has begun (an engine takes it over), so members
        may be moving or have arrived; the request is not checked again.
        """
        raise NotImplementedError

    def check(self, group: GroupInfo, target: dict, options: dict) -> None:
        """Raise InvalidTarget if the request cannot be carried out; cheap, measures nothing."""
        self.scenario(group, target, options)

    def evacuation_target(self, host: str, zone: str | None = None) -> dict:
        """Where the groups of a host under maintenance go (a request ``target``)."""
        return {'availability_zone': zone} if zone else {}

    def evacuate_lone_servers(self, host: str) -> list[str]:
        """Live-migrate the servers of host that belong to no group; the ids started.

        The cloud's scheduler chooses where each goes. A cloud whose servers all
        belong to groups (a simulated scenario) has none to move.
        """
        return []

    def cloud(self):
        raise NotImplementedError

    def cloud_for(self, group: GroupInfo, scenario):
        """The Cloud one job of group drives; by default the driver's shared cloud().

        A driver whose Cloud is built per job (e.g. from the servers of the
        group, as a Nova one may be) overrides this instead of cloud().
        """
        return self.cloud()

    def close(self) -> None:
        """Release what the driver holds (connections, threads)."""


def with_options(scenario, options: dict):
    """The scenario with a request's options applied (``allowed_downtime_ms``)."""
    downtime = options.get('allowed_downtime_ms')
    if downtime is None:
        return scenario
    limits = scenario.limits
    policy = dataclasses.replace(limits.policy, max_downtime_s=downtime / 1000.0)
    return dataclasses.replace(scenario, limits=dataclasses.replace(limits, policy=policy))


def names() -> list[str]:
    return sorted(extension.ExtensionManager(NAMESPACE).names())


def load(conf, name: str | None = None) -> CloudDriver:
    """The driver ``name`` (``[engine] cloud`` by default), built with conf."""
    name = name or conf.engine.cloud
    known = names()
    if name not in known:
        raise ValueError(f'unknown cloud driver {name!r} ([engine] cloud); installed: '
                         f'{", ".join(known) or "none"}')
    return driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                invoke_args=(conf,)).driver
