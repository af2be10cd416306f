"""Backends: what the API and the engines need from a cloud, loaded by name.

A backend (entry point namespace ``slm_plugin.clouds``, chosen by ``[engine]
cloud``) answers the questions the control loop does not ask:

* which server group a request names, and which servers are in it
  (``find_group``, ``groups_on_host``);
* what the planner should know to move it to a target (``scenario``: sites,
  hosts, links, the group's guests and the request), raising InvalidTarget
  for a target that does not exist;
* which :class:`slm_plugin.control.cloud.Cloud` drives one job's migrations
  (``job_cloud``). The Cloud protocol declares what a takeover needs (``handle``,
  ``adopt``) with defaults, so nothing here probes for it.

The scenario's member names are the keys the Cloud reports progress under;
``ServerInfo.name`` must be that key. ``Cloud.now()`` must be a clock every
engine reads alike (seconds since a fixed instant), because an engine that
takes a job over measures the job's time from the instant its first owner
started it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from slm_plugin import exception
from slm_plugin.loader import Loader

NAMESPACE = 'slm_plugin.clouds'


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


class Backend:
    """Base of the backends; a backend is built with the service's ConfigOpts."""

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

    def job_cloud(self, group: GroupInfo, scenario):
        """The Cloud one job of group drives; by default the backend's shared cloud().

        A backend whose Cloud is built per job (e.g. from the servers of the
        group, as a Nova one may be) overrides this instead of cloud().
        """
        return self.cloud()

    def verify(self, group: GroupInfo, target: dict, plan, progress: dict) -> list[str]:
        """What is wrong with the group after its job, as the cloud shows it; [] if nothing.

        The engine asks once the job's migrations have settled: where each member
        runs, whether it is still in the group, and whether the group's policy
        still holds. A problem fails a job whose migrations all completed. The
        default finds nothing: a simulated cloud does what its progress says.
        """
        return []

    def close(self) -> None:
        """Release what the backend holds (connections, threads)."""


def allows_postcopy(options: dict, conf=None) -> bool:
    """The request's ``allow_post_copy``, or else ``[planning] allow_post_copy``."""
    allowed = options.get('allow_post_copy')
    if allowed is None:
        allowed = True if conf is None else conf.planning.allow_post_copy
    return bool(allowed)


def allows_auto_converge(options: dict, conf=None) -> bool:
    """The request's ``allow_auto_converge``, or else ``[planning] allow_auto_converge``."""
    allowed = options.get('allow_auto_converge')
    if allowed is None:
        allowed = False if conf is None else conf.planning.allow_auto_converge
    return bool(allowed)


def with_options(scenario, options: dict, conf=None):
    """The scenario with a request's options applied (``allowed_downtime_ms``,
    ``max_bandwidth_mibps``, ``allow_auto_converge``, ``allow_post_copy``, each or else
    its ``[planning]`` default)."""
    limits = scenario.limits
    downtime = options.get('allowed_downtime_ms')
    if downtime is not None:
        policy = dataclasses.replace(limits.policy, max_downtime_s=downtime / 1000.0)
        limits = dataclasses.replace(limits, policy=policy)
    budget = options.get('max_bandwidth_mibps')
    if budget is None and conf is not None and limits.max_bandwidth_mibps is None:
        budget = conf.planning.max_bandwidth_mibps  # the request's, if any, stays
    if budget is not None:
        limits = dataclasses.replace(limits, max_bandwidth_mibps=float(budget))
    converge = allows_auto_converge(options, conf)
    if converge != limits.policy.auto_converge:
        # QEMU's auto-converge, asked for at each migration's start (the simulated cloud
        # and libvirt); a Nova backend replaces this with what its computes do
        limits = dataclasses.replace(limits, policy=dataclasses.replace(
            limits.policy, auto_converge=converge))
    if not allows_postcopy(options, conf) and limits.allow_postcopy:
        # a member that does not converge is then left to converge by itself or paused
        # within the allowed downtime, never switched over by post-copy
        policy = dataclasses.replace(limits.policy, on_stall='pause')
        limits = dataclasses.replace(limits, allow_postcopy=False, policy=policy)
    return scenario if limits is scenario.limits else dataclasses.replace(scenario, limits=limits)


_BACKENDS = Loader(NAMESPACE, lambda name, known: exception.Invalid(
    f'Unknown cloud backend {name!r} ([engine] cloud); installed: '
    f'{", ".join(known) or "none"}.'))


def names() -> list[str]:
    return _BACKENDS.names()


def load(conf, name: str | None = None) -> Backend:
    """The backend ``name`` (``[engine] cloud`` by default), built with conf."""
    return _BACKENDS.load(name or conf.engine.cloud, conf)
