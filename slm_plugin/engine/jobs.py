"""Turning a request (from the API or the maintenance hook) into a job, or into a dry-run plan."""

from __future__ import annotations

import dataclasses
import time

from oslo_log import log as logging

from slm_plugin import exception, planning
from slm_plugin.control import shares
from slm_plugin.db import coordination
from slm_plugin.engine import backends
from slm_plugin.engine.runner import plan_to_dict
from slm_plugin.planning import window
from slm_plugin.simulation.runner import forecast

LOG = logging.getLogger(__name__)


def _strategy(conf, request) -> str:
    strategy = request.get('strategy') or conf.engine.default_strategy
    planning.check(strategy)
    return strategy


def submit(context, conf, backend, request: dict, requested_by: str, reason: str | None = None):
    """Create the pending job of a request: {group, target?, strategy?, options?}.

    Raises exception.GroupNotFound, exception.InvalidTarget, exception.UnknownStrategy and
    exception.JobConflict; nothing is created then.
    """
    group = backend.find_group(request['group'])
    target = request.get('target') or {}
    options = request.get('options') or {}
    strategy = _strategy(conf, request)
    if planning.get(strategy).needs_postcopy and not backends.allows_postcopy(options, conf):
        raise exception.Invalid(
            f'Strategy {strategy} switches members over by post-copy, which this migration '
            'does not allow (options.allow_post_copy is false, or [planning] allow_post_copy '
            'is off); choose synchronized or parallel.')
    running = coordination.list_active_jobs(context, server_group_id=group.id)
    if running:  # before the cloud's checks: its members may be half moved
        raise exception.JobConflict(lock=f'group:{group.id}', job_id=running[0].id)
    backend.check(group, target, options)  # the target exists and can take the group
    stored = {'group': request['group'], 'target': target, 'options': options,
              'requested_by': requested_by}
    if options.get('complete_by') or options.get('not_before'):
        _, predicted = _predict(conf, backend, group, target, options, strategy)
        stored['schedule'] = _schedule(conf, backend, options, predicted).as_dict()
    if reason:
        stored['reason'] = reason
    values = {'server_group_id': group.id, 'server_group_name': group.name,
              'strategy': strategy, 'request': stored, 'project_id': context.project_id,
              'user_id': context.user_id, 'priority': _priority(options)}
    members = [{'server_id': s.server_id, 'name': s.name, 'source_host': s.host}
               for s in group.servers]
    job = coordination.create_job(context, values, members, event={
        'by': requested_by, 'reason': reason, 'project_id': context.project_id,
        'user_id': context.user_id, **({'schedule': stored['schedule']}
                                       if 'schedule' in stored else {})})
    LOG.info('Job %s created for server group %s (%s) by %s', job.id, group.name, group.id,
             requested_by)
    return job


def dry_run(conf, backend, request: dict) -> dict:
    """The plan a request would run, with figures predicted by simulating it; nothing is stored.

    With a window (``complete_by``, ``not_before``), also when the job would start: a
    window no plan fits is refused as the real request would be.
    """
    group = backend.find_group(request['group'])
    target = request.get('target') or {}
    options = request.get('options') or {}
    strategy = _strategy(conf, request)
    plan, predicted = _predict(conf, backend, group, target, options, strategy)
    out = {'group': group, 'strategy': strategy, 'target': target, 'options': options,
           'plan': plan_to_dict(plan, predicted)}
    if options.get('complete_by') or options.get('not_before'):
        out['schedule'] = _schedule(conf, backend, options, predicted).as_dict()
    return out


def _priority(options) -> int:
    try:
        return shares.level(options.get('priority'))
    except ValueError as exc:  # the API's schema names the choices first
        raise exception.Invalid(f'Invalid input for field options.priority: {exc}') from None


def _predict(conf, backend, group, target, options, strategy):
    """The plan of a request and the same plan with the figures its simulation predicts."""
    scenario = backend.scenario(group, target, options)
    tick_s = conf.engine.control_tick * (backend.time_scale or 1.0)
    planner = planning.get(strategy)
    plan = planner.plan(scenario)  # PlanError says why it cannot be planned
    plan = dataclasses.replace(plan, notes=plan.notes + scenario.notes)
    return plan, forecast(scenario, plan, planner, tick_s=tick_s)


def _schedule(conf, backend, options, predicted) -> window.Schedule:
    """When the job starts inside the request's window (planning.window); Invalid if never."""
    cloud_s = max((m.predicted_switchover_s for m in predicted.members), default=0.0)
    complete_by, not_before = (
        window.parse(options[k], f'options.{k}') if options.get(k) else None
        for k in ('complete_by', 'not_before'))
    return window.schedule(
        time.time(), cloud_s / (backend.time_scale or 1.0), complete_by=complete_by,
        not_before=not_before, margin=conf.planning.deadline_margin,
        min_margin_s=conf.planning.deadline_min_margin)
