"""The simulated cloud as a service sees it: a scenario's groups, paced by the wall clock.

In the simulation the scenario's sites are both the availability zones and the
host aggregates, its server groups are the groups, and its members the servers
(ids are derived from the names, so every process agrees on them). The
simulator runs ``[simulation] speed`` times faster than the wall clock, so
that a job takes minutes, or seconds in the tests, while the engine ticks as
it would on a real cloud.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import Counter

from slm_plugin import exception
from slm_plugin.control import cloud as api
from slm_plugin.engine.backends import Backend, GroupInfo, ServerInfo, with_options
from slm_plugin.scenario.loader import load_scenario
from slm_plugin.scenario.model import Request, Scenario
from slm_plugin.simulation.cloud import SimulatedCloud

_IDS = uuid.UUID('5e1f3c1a-6d1b-4f0e-9a57-3b7c2d9e8f10')


def server_id(scenario: Scenario, name: str) -> str:
    return str(uuid.uuid5(_IDS, f'{scenario.name}/server/{name}'))


def group_id(scenario: Scenario, name: str) -> str:
    return str(uuid.uuid5(_IDS, f'{scenario.name}/group/{name}'))


class PacedCloud(api.Cloud):
    """A SimulatedCloud whose clock follows the wall clock, ``speed`` times faster.

    Thread-safe: every job of an engine (or of every engine, behind
    slm-sim-cloud) drives the same simulation, so migrations share the hosts'
    NICs and the links as they would in a real cloud. It counts the starts it
    accepts and refuses per member, which tests read to check that no
    migration started twice.
    """

    #: Wall seconds a look at every migration's progress is reused for: jobs
    #: ticking at about the same moment share one look instead of each making
    #: the simulator report on every migration of the cloud.
    progress_reuse_s = 0.02

    def __init__(self, sim: SimulatedCloud, speed: float = 1.0, clock=time.monotonic):
        if speed <= 0:
            raise ValueError(f'speed must be positive, got {speed}')
        self.speed = speed
        self._sim = sim
        self._clock = clock
        self._origin = clock()
        self._lock = threading.Lock()
        self._look = None  # (wall instant, progress of every migration)
        self.starts: Counter = Counter()
        self.refused_starts: Counter = Counter()

    def _advance(self) -> None:
        self._sim.run_until((self._clock() - self._origin) * self.speed)

    def _call(self, action, *args):
        with self._lock:
            self._advance()
            self._look = None  # an action may change what progress shows
            return action(*args)

    # -- Cloud ---------------------------------------------------------------------------

    def now(self) -> float:
        with self._lock:
            self._advance()
            return self._sim.now()

    def start(self, member: str, destination: str, cap_mibps: float | None) -> None:
        with self._lock:
            self._advance()
            self._look = None
            try:
                self._sim.start(member, destination, cap_mibps)
            except exception.CloudError:
                self.refused_starts[member] += 1
                raise
            self.starts[member] += 1

    def set_cap(self, member: str, cap_mibps: float | None) -> None:
        self._call(self._sim.set_cap, member, cap_mibps)

    def hold(self, member: str, held: bool) -> None:
        self._call(self._sim.hold, member, held)

    def force_complete(self, member: str, mode: str) -> None:
        self._call(self._sim.force_complete, member, mode)

    def abort(self, member: str) -> None:
        self._call(self._sim.abort, member)

    def progress(self, members=None) -> dict[str, api.Progress]:
        with self._lock:
            now = self._clock()
            if self._look is None or now - self._look[0] > self.progress_reuse_s:
                self._advance()
                self._look = (now, self._sim.progress())
            everything = self._look[1]
        if members is None:
            return dict(everything)
        return {name: everything[name] for name in members if name in everything}

    def wait(self, seconds: float) -> None:
        time.sleep(seconds / self.speed)

    def moved(self) -> dict[str, str]:
        """Member -> host of the members that have been migrated."""
        with self._lock:
            self._advance()
            return self._sim.moved()

    # -- for tests and the operator ------------------------------------------------------

    def stats(self) -> dict:
        with self._lock:
            self._advance()
            return {'now': self._sim.now(), 'starts': dict(self.starts),
                    'refused_starts': dict(self.refused_starts)}


def build_paced_cloud(conf, scenario: Scenario) -> PacedCloud:
    sim = SimulatedCloud(scenario, seed=conf.simulation.seed,
                         dirty_noise=conf.simulation.dirty_noise)
    return PacedCloud(sim, speed=conf.simulation.speed)


def load_configured_scenario(conf) -> Scenario:
    try:
        return load_scenario(conf.engine.scenario)
    except exception.UsageError as exc:
        raise ValueError(f'[engine] scenario: {exc}') from None


class ScenarioGroups:
    """Groups, servers and targets of a scenario, as the API and the engine see them."""

    def __init__(self, scenario: Scenario):
        self.base = scenario
        self._groups = {}
        for g in scenario.groups:
            info = GroupInfo(
                id=group_id(scenario, g.name), name=g.name, policy=g.policy,
                servers=tuple(ServerInfo(server_id(scenario, m.name), m.name, m.host)
                              for m in g.members))
            self._groups[g.name] = self._groups[info.id] = info
        self._site = {h.name: h.site for h in scenario.hosts}

    def find_group(self, ref: str) -> GroupInfo:
        try:
            return self._groups[ref]
        except KeyError:
            raise exception.GroupNotFound(f'Server group {ref} could not be found.') from None

    def groups_on_host(self, host: str) -> list[GroupInfo]:
        seen, out = set(), []
        for info in self._groups.values():
            if info.id not in seen and any(s.host == host for s in info.servers):
                seen.add(info.id)
                out.append(info)
        return out

    def evacuation_target(self, host: str, zone: str | None = None) -> dict:
        if zone:
            return {'availability_zone': zone}
        here = self._site.get(host)
        wanted = self.base.request.to_site
        if wanted and wanted != here:
            return {'availability_zone': wanted}
        others = [s for s in self.base.sites if s != here]
        return {'availability_zone': others[0]} if others else {}

    def scenario(self, group: GroupInfo, target: dict, options: dict) -> Scenario:
        """The scenario with its request narrowed to the group and sent to the target."""
        base = self.base
        sites = base.sites
        hosts = target.get('hosts')
        if hosts:
            unknown = [h for h in hosts if h not in self._site]
            if unknown:
                raise exception.InvalidTarget(f'Host {unknown[0]} does not exist.')
            request = Request(to_hosts=tuple(hosts), groups=(group.name,))
            target_sites = {self._site[h] for h in hosts}
        else:
            site = target.get('availability_zone') or target.get('aggregate')
            if site is None:
                if base.request.to_hosts:
                    request = Request(to_hosts=base.request.to_hosts, groups=(group.name,))
                    target_sites = {self._site[h] for h in base.request.to_hosts}
                    return self._finish(group, request, target_sites, options)
                site = base.request.to_site
            if site not in sites:
                kind = 'Aggregate' if 'aggregate' in target else 'Availability zone'
                raise exception.InvalidTarget(f'{kind} {site} does not exist; there are: '
                                              f'{", ".join(sites)}.')
            request = Request(to_site=site, groups=(group.name,))
            target_sites = {site}
        return self._finish(group, request, target_sites, options)

    def _finish(self, group, request, target_sites, options) -> Scenario:
        base = self.base
        for s in group.servers:
            here = self._site[s.host]
            if request.to_site and here == request.to_site:
                raise exception.InvalidTarget(
                    f'Server {s.name} of group {group.name} is already in '
                    f'{here}.')
            for there in target_sites:
                if there != here and base.link_between(here, there) is None:
                    raise exception.InvalidTarget(f'No link between {here} and {there} for server '
                                                  f'{s.name}.')
        return with_options(dataclasses.replace(base, request=request), options)


class ScenarioCloudDriver(Backend):
    """A driver whose groups come from ``[engine] scenario``; one cloud, made on first use."""

    def __init__(self, conf):
        super().__init__(conf)
        self.time_scale = conf.simulation.speed
        self._groups = ScenarioGroups(load_configured_scenario(conf))
        self._cloud = None
        self._lock = threading.Lock()

    def find_group(self, ref):
        return self._groups.find_group(ref)

    def groups_on_host(self, host):
        return self._groups.groups_on_host(host)

    def scenario(self, group, target, options, resuming=False):
        return with_options(self._groups.scenario(group, target, options), {}, self.conf)

    def evacuation_target(self, host, zone=None):
        return self._groups.evacuation_target(host, zone)

    def check(self, group, target, options):
        """Also refuse a group the simulation has moved already: it moves each server once."""
        moved = self.cloud().moved()
        done = sorted(f'{s.name} (to {moved[s.name]})' for s in group.servers if s.name in moved)
        if done:
            raise exception.InvalidTarget(
                f'The simulated cloud has migrated {", ".join(done)} already, and it moves '
                'each server once: restart it (slm-sim-cloud, or the engine for [engine] '
                'cloud = simulated) to begin again.')
        self.scenario(group, target, options)

    def cloud(self):
        with self._lock:
            if self._cloud is None:
                self._cloud = self._make_cloud()
            return self._cloud

    def _make_cloud(self):
        raise NotImplementedError


class SimulatedBackend(ScenarioCloudDriver):
    """``[engine] cloud = simulated``: the simulation runs inside this process.

    Every job of the engine drives one simulation of ``[engine] scenario``.
    It ends with the process, so the jobs whose migrations had started cannot
    be resumed by another engine; use ``simulated-rpc`` for that.
    """

    shared = False

    def _make_cloud(self):
        return build_paced_cloud(self.conf, self._groups.base)
