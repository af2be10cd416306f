"""Migrate one Nova server group: discover, plan, run the control loop, check, report.

``migrate_group`` is the whole job against a real cloud:

1. negotiate the Compute API microversion (``compute_api``);
2. discover the group and the target and build the Scenario
   (``collectors.nova``); a bad request stops here, nothing started;
3. plan with the chosen strategy; the discovery's notes join the plan's;
4. run :class:`~slm_plugin.execution.loop.ControlLoop` on a
   :class:`~slm_plugin.execution.nova.NovaCloud`. A member whose migration
   fails in Nova (its record ends in ``error``) is handled by ``on_failure``
   as a refused action is: ``abort`` cancels the members still migrating,
   ``continue`` lets them finish;
5. wait until no migration is in flight any more, then check every member
   through the API: on which host and zone it runs, ACTIVE, still in the
   group, and whether the group's policy holds on the hosts it ended on.

The report says where every member is, read from Nova, whatever happened.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from openstack import exceptions as sdk_exc
from oslo_log import log as logging

from slm_plugin import planning
from slm_plugin.collectors.nova import Capacities, Discovery, NovaCollector, Target
from slm_plugin.common import compute_api
from slm_plugin.execution import cloud as api
from slm_plugin.execution import retry as retries
from slm_plugin.execution.loop import ControlLoop, Outcome
from slm_plugin.execution.nova import BandwidthActuator, NovaCloud
from slm_plugin.model import CompletionPolicy
from slm_plugin.planning.plan import Plan
from slm_plugin.scenario.model import Limits

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MemberReport:
    member: str
    server_id: str
    source: str
    planned_destination: str
    status: str  # the migration's end: completed, aborted, failed, not_started, ...
    host: str | None  # where Nova says the server runs now
    zone: str | None
    server_status: str | None
    in_group: bool
    migration_id: int | None
    error: str | None = None
    problems: tuple[str, ...] = ()
    adopted: bool = False  # its start was accepted although the answer was lost


@dataclass(frozen=True, slots=True)
class Report:
    status: str  # completed (every member moved and checks pass), failed, aborted
    group: str
    target: str
    strategy: str
    members: tuple[MemberReport, ...]
    policy: str
    policy_kept: bool
    split_time_s: float | None  # first to last switchover seen through the API
    plan: Plan
    outcome: Outcome
    microversion: str
    notes: tuple[str, ...] = ()

    def member(self, name: str) -> MemberReport:
        return next(m for m in self.members if m.member == name)

    def format(self) -> str:
        lines = [f'group {self.group} to {self.target}: {self.status} '
                 f'(strategy {self.strategy}, compute API {self.microversion})']
        for m in self.members:
            where = f'{m.host} ({m.zone})' if m.host else 'unknown'
            extra = f'; {m.error}' if m.error else ''
            extra += ''.join(f'; {p}' for p in m.problems)
            lines.append(f'  {m.member}: {m.status}, on {where}, {m.server_status}{extra}')
        lines.append(f'  policy {self.policy}: {"kept" if self.policy_kept else "BROKEN"}')
        if self.split_time_s is not None:
            lines.append(f'  group split across zones for {self.split_time_s:.2f} s (observed)')
        lines.extend(f'  note: {n}' for n in self.notes)
        return '\n'.join(lines)


def limits_from_conf(conf) -> Limits:
    """Concurrency per host from ``[engine]``, the completion policy from ``[planning]``."""
    policy = CompletionPolicy(max_downtime_s=conf.planning.allowed_downtime_ms / 1000.0,
                              max_rounds=conf.planning.max_rounds,
                              on_stall=conf.planning.non_convergence_policy)
    return Limits(max_concurrent_per_host=conf.engine.max_concurrent_migrations_per_host,
                  policy=policy)


def options_from_conf(conf) -> dict:
    """``migrate_group``'s keyword arguments from the service configuration.

    ``[engine]`` gives the strategy, the tick, the failure policy and the limit per
    host; ``[planning]`` the completion policy; ``[nova]`` the capacities Nova does
    not know, the convergence threshold and the retry policy.
    """
    return {
        'strategy': conf.engine.default_strategy,
        'tick_s': conf.engine.control_tick,
        'on_failure': conf.engine.on_failure,
        'limits': limits_from_conf(conf),
        'capacities': Capacities.from_conf(conf),
        'converged_mib': conf.nova.converged_remaining_mib,
        'retry': retries.RetryPolicy.from_conf(conf),
    }


def migrate_group(conn, group_ref: str, target: Target, *, strategy: str = 'synchronized',
                  on_failure: str = 'abort', tick_s: float = 1.0,
                  deadline_s: float = math.inf, capacities: Capacities | None = None,
                  limits: Limits | None = None, actuator: BandwidthActuator | None = None,
                  retry: retries.RetryPolicy | None = None, converged_mib: float = 32.0,
                  observer: Callable[[float, dict], None] | None = None,
                  settle_s: float = 60.0) -> Report:
    """Move server group ``group_ref`` to ``target``; see the module's description.

    Raises DiscoveryError or PlanError for a request that cannot be carried
    out (nothing is started then); otherwise returns the report.
    """
    version = compute_api.negotiate(conn)
    collector = NovaCollector(conn, capacities, limits, version)
    found = collector.discover(group_ref, target)
    planner = planning.get(strategy)
    plan = planner.plan(found.scenario)
    plan = dataclasses.replace(plan, notes=plan.notes + found.notes)
    cloud = NovaCloud(conn, found.server_ids, microversion=version, actuator=actuator,
                      retry=retry, converged_mib=converged_mib)
    loop = ControlLoop(cloud, found.scenario, planner, plan, tick_s=tick_s,
                       deadline_s=cloud.now() + deadline_s, on_failure=on_failure,
                       observer=observer)
    outcome = loop.run()
    _stop_leftovers(cloud, outcome)
    progress = cloud.settle(settle_s)
    return _report(conn, found, plan, outcome, cloud, progress, strategy)


def _stop_leftovers(cloud: NovaCloud, outcome: Outcome) -> None:
    """Nothing may be left migrating once the loop is done: a held member would wait
    for a release that never comes. The loop cancels what it sees; a member it could not
    (an abort Nova refused that early) is aborted again here."""
    for name, p in cloud.progress().items():
        if p.status in (api.MIGRATING, api.HELD):
            LOG.warning('%s is still %s after the job ended (%s); aborting it', name,
                        p.status, outcome.status)
            try:
                cloud.abort(name)
            except api.CloudError as exc:
                LOG.error('%s: cannot abort the leftover migration: %s', name, exc)


def _report(conn, found: Discovery, plan: Plan, outcome: Outcome, cloud: NovaCloud,
            progress: dict, strategy: str) -> Report:
    compute = conn.compute
    try:
        group_members = set(compute.get_server_group(found.group_id).member_ids or ())
    except sdk_exc.HttpException:
        group_members = set()
    planned = {m.member: m for m in plan.members}
    errors = {m.member: m.error for m in outcome.members if m.error}
    rows = []
    for name, server in sorted(found.servers.items()):
        p = progress.get(name)
        status = p.status if p else 'not_started'
        host = zone = state = None
        problems: list[str] = []
        try:
            s = compute.get_server(server.id)
            host, zone, state = s.compute_host, s.availability_zone, s.status
        except sdk_exc.HttpException as exc:
            problems.append(f'cannot read the server: {compute_api.message(exc)}')
        mp = planned.get(name)
        dest = mp.destination if mp else ''
        if status == api.COMPLETED:
            if host != dest:
                problems.append(f'runs on {host}, not on the planned {dest}')
            if found.target.zone and zone != found.target.zone:
                problems.append(f'is in zone {zone}, not {found.target.zone}')
        elif host is not None and host != server.host and status != api.COMPLETED:
            problems.append(f'moved to {host} although its migration is {status}')
        if state is not None and state != server.status:
            problems.append(f'is {state} (was {server.status})')
        if server.id not in group_members:
            problems.append('is no longer in the server group')
        info = cloud.migration_of(name) if p else {}
        rows.append(MemberReport(
            member=name, server_id=server.id, source=server.host, planned_destination=dest,
            status=status, host=host, zone=zone, server_status=state,
            in_group=server.id in group_members, migration_id=info.get('migration_id'),
            error=errors.get(name), problems=tuple(problems),
            adopted=bool(info.get('adopted'))))
    kept = _policy_kept(found.policy, [r.host for r in rows])
    switches = [p.switchover_at for p in progress.values() if p.switchover_at is not None]
    split = (max(switches) - min(switches)) if len(switches) == len(rows) and rows else None
    if all(r.status == api.COMPLETED and not r.problems for r in rows) and kept:
        status = 'completed'
    elif outcome.status == 'aborted' and not errors:
        status = 'aborted'
    else:
        status = 'failed'
    notes = tuple(dict.fromkeys(plan.notes + outcome.notes + cloud.notes))
    return Report(status, found.group_name, found.target.describe(), strategy, tuple(rows),
                  found.policy, kept, split, plan, outcome, found.microversion, notes)


def _policy_kept(policy: str, hosts: list[str | None]) -> bool:
    known = [h for h in hosts if h]
    if policy == 'anti-affinity':
        return len(set(known)) == len(known)
    if policy == 'affinity':
        return len(set(known)) <= 1
    return True
