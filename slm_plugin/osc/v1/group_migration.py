"""``openstack server group migrate`` and ``openstack server group migration ...``.

The flags map one to one onto the body of ``POST /v1/group-migrations``:
``--to-az``/``--to-aggregate``/``--to-host`` give ``target``, ``--strategy``
gives ``strategy``, ``--max-downtime``, ``--max-bandwidth``, ``--post-copy``,
``--complete-by``, ``--not-before``, ``--on-failure`` and ``--dry-run`` give
``options``. The service checks the values and says what is wrong;
the client only refuses what it cannot send.
"""

from __future__ import annotations

import datetime
import re

from cliff import columns
from cliff.formatters import base as formatters
from osc_lib import exceptions
from osc_lib.cli import format_columns
from osc_lib.command import command

from slm_plugin.osc.v1 import progress

STRATEGIES = ('synchronized', 'synchronized-postcopy', 'parallel', 'sequential', 'bounded',
              'evict')
FAILURE_POLICIES = ('abort', 'continue')
PRIORITIES = ('critical', 'user', 'maintenance')
STATUSES = ('pending', 'planning', 'running', 'completed', 'failed', 'aborted')
POLL_INTERVAL_S = 1.0
MIB = 1024 * 1024
#: units --max-bandwidth takes, in MiB/s (a number alone is MiB/s)
BANDWIDTH_UNITS = {
    'mib/s': 1.0, 'mb/s': 1e6 / MIB, 'gib/s': 1024.0, 'gb/s': 1e9 / MIB,
    'mbit/s': 1e6 / 8 / MIB, 'gbit/s': 1e9 / 8 / MIB, 'mbps': 1e6 / 8 / MIB,
    'gbps': 1e9 / 8 / MIB,
}


def bandwidth_mibps(text: str) -> float:
    """``--max-bandwidth``: ``200`` (MiB/s), ``200MiB/s``, ``1.5 GiB/s``, ``800Mbit/s``..."""
    raw = text.strip().lower().replace(' ', '')
    number = raw.rstrip('abcdefghijklmnopqrstuvwxyz/')
    unit = raw[len(number):] or 'mib/s'
    try:
        value = float(number) * BANDWIDTH_UNITS[unit]
    except (ValueError, KeyError):
        raise exceptions.CommandError(
            f'--max-bandwidth {text!r}: give a number of MiB/s, or one with a unit '
            f'({", ".join(sorted(BANDWIDTH_UNITS))})') from None
    if not 1 <= value <= 1000000:
        raise exceptions.CommandError(f'--max-bandwidth {text!r} is {value:.3g} MiB/s; '
                                      'give 1 to 1000000 MiB/s')
    return value


_RELATIVE = re.compile(r'^\+(\d+(?:\.\d+)?)([smhd])$')
_UNIT_S = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}


def instant(text: str, option: str, now: datetime.datetime | None = None) -> str:
    """``--complete-by``/``--not-before``: an ISO 8601 instant (UTC unless it says), or
    ``+30m``, ``+2h``, ``+90s``, ``+1d`` from now; sent as ISO 8601 UTC."""
    raw = text.strip()
    relative = _RELATIVE.match(raw)
    if relative:
        now = now or datetime.datetime.now(datetime.UTC)
        moment = now + datetime.timedelta(
            seconds=float(relative.group(1)) * _UNIT_S[relative.group(2)])
    else:
        try:
            moment = datetime.datetime.fromisoformat(raw.replace('Z', '+00:00'))
        except ValueError:
            raise exceptions.CommandError(
                f'{option} {text!r}: give an ISO 8601 instant (2026-12-03T18:00:00Z; UTC '
                'unless it gives an offset) or a time from now (+90s, +30m, +2h, +1d)') from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
    utc = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec='seconds') + 'Z'


# -- how values look ------------------------------------------------------------------------


def target_text(target: dict) -> str:
    if not target:
        return ''
    if 'hosts' in target:
        return 'hosts ' + ', '.join(target['hosts'])
    key, value = next(iter(target.items()))
    return f"{key.replace('_', ' ')} {value}"


class TargetColumn(columns.FormattableColumn):
    """``availability zone dc-b`` in a table, the API's dict in JSON and YAML."""

    def human_readable(self):
        return target_text(self._value or {})

    def machine_readable(self):
        return self._value or {}


class MembersColumn(columns.FormattableColumn):
    """A line per member in a table, the API's member records in JSON and YAML."""

    def human_readable(self):
        lines = []
        for m in self._value or ():
            detail = progress.member_detail(m)
            lines.append(f"{m['name']}: {m['state']} {m.get('source_host') or '?'} -> "
                         f"{m.get('destination_host') or '?'}" + (f', {detail}' if detail else ''))
        return '\n'.join(lines)

    def machine_readable(self):
        return list(self._value or ())


class PlanColumn(columns.FormattableColumn):
    """The plan's strategy and predicted duration, or nothing before it is planned."""

    def human_readable(self):
        plan = self._value
        if not plan:
            return ''
        text = f"{plan.get('strategy')}"
        if plan.get('predicted_makespan_s') is not None:
            text += f", predicted to take {plan['predicted_makespan_s']:.1f} s"
        if plan.get('lower_bound_s') is not None:
            text += f" (lower bound {plan['lower_bound_s']:.1f} s)"
        notes = plan.get('notes') or []
        return '\n'.join([text] + [f'note: {n}' for n in notes])

    def machine_readable(self):
        return self._value


class BandwidthColumn(columns.FormattableColumn):
    """A member's planned bandwidth cap in MiB/s; ``uncapped`` when there is none."""

    def human_readable(self):
        return 'uncapped' if self._value is None else f'{self._value:.1f}'

    def machine_readable(self):
        return self._value


class SwitchoverColumn(columns.FormattableColumn):
    """How many members switched over, and how close together; the API's dict in JSON."""

    def human_readable(self):
        sw = self._value or {}
        if not sw:
            return ''
        text = f"{sw.get('switched_over', 0)}/{sw.get('members', 0)} switched over"
        if sw.get('first_at'):
            text += (f", between {sw['first_at']} and {sw['last_at']} "
                     f"(spread {sw['spread_s']:.3f} s)")
        if sw.get('predicted_last_at'):
            text += f"\npredicted at {sw['predicted_last_at']}"
            if sw.get('predicted_spread_s') is not None:
                text += f" (spread {sw['predicted_spread_s']:.3f} s)"
        if sw.get('progress') is not None and not sw.get('done'):
            text += f"\n{100 * sw['progress']:.0f} % done"
            if sw.get('eta_at'):
                text += f", expected at {sw['eta_at']}"
        return text

    def machine_readable(self):
        return self._value or {}


def job_columns(job: dict) -> tuple[tuple, tuple]:
    """The fields of one migration, as ShowOne shows them."""
    group = job.get('group') or {}
    data = {
        'id': job['id'],
        'group': group.get('name'),
        'group_id': group.get('id'),
        'status': job['status'],
        'strategy': job.get('strategy'),
        'target': TargetColumn(job.get('target')),
        'options': format_columns.DictColumn(job.get('options') or {}),
        'schedule': format_columns.DictColumn(job.get('schedule') or {}),
        'reason': job.get('reason'),
        'requested_by': job.get('requested_by'),
        'priority': job.get('priority'),
        'owner': job.get('owner'),
        'error': job.get('error'),
        'created_at': job.get('created_at'),
        'updated_at': job.get('updated_at'),
        'plan': PlanColumn(job.get('plan')),
        'switchover': SwitchoverColumn(job.get('switchover')),
        'members': MembersColumn(job.get('members')),
    }
    return tuple(data), tuple(data.values())


# every figure of a plan is a prediction
PLAN_COLUMNS = ('Member', 'Source', 'Destination', 'Wave', 'Start (s)', 'Bandwidth (MiB/s)',
                'Switchover (s)', 'Downtime (ms)', 'Bytes', 'Completion')


def _rounded(value, digits=1):
    return None if value is None else round(value, digits)


def plan_rows(plan: dict) -> list[tuple]:
    """A row per member of a dry run's plan, in the order they start.

    The figures are those the service predicted by simulating the plan where
    it did, else the planner's own.
    """
    predicted = plan.get('predicted') or {}
    rows = []
    for m in plan.get('members', ()):
        p = predicted.get(m['member'], {})
        downtime_s = p.get('downtime_s', m.get('predicted_downtime_s'))
        wire_mib = p.get('wire_mib', m.get('predicted_wire_mib'))
        rows.append((
            m['member'], m.get('source'), m.get('destination'), m.get('wave'),
            _rounded(p.get('start_s', m.get('predicted_start_s'))),
            BandwidthColumn(_rounded(m.get('cap_mibps'))),
            _rounded(p.get('switchover_s', m.get('predicted_switchover_s'))),
            None if downtime_s is None else round(downtime_s * 1000),
            None if wire_mib is None else round(wire_mib * MIB),
            p.get('completion', m.get('completion')),
        ))
    return sorted(rows, key=lambda r: (r[3] or 0, r[4] or 0, r[0]))


def plan_summary(answer: dict) -> list[str]:
    plan = answer.get('plan') or {}
    predicted = [p['switchover_s'] for p in (plan.get('predicted') or {}).values()
                 if p.get('switchover_s') is not None]
    group = (answer.get('group') or {}).get('name')
    line = f"Dry run: plan of group {group} with strategy {answer.get('strategy')}"
    if predicted:
        line += f', predicted to take {max(predicted):.1f} s'
    if plan.get('lower_bound_s') is not None:
        line += f" (lower bound {plan['lower_bound_s']:.1f} s)"
    lines = [line + '; nothing was started.']
    schedule = answer.get('schedule')
    if schedule:
        lines.append(schedule_text(schedule))
    return lines + [f'Note: {n}' for n in plan.get('notes', ())]


def schedule_text(schedule: dict) -> str:
    """When a job with a window starts, and how it stands against its deadline."""
    text = (f"It would start at {schedule['start_at']} and switch over at "
            f"{schedule['predicted_end_at']}")
    if schedule.get('complete_by'):
        text += (f", {schedule['margin_s']:.0f} s before its deadline "
                 f"{schedule['complete_by']}")
        if schedule.get('reduced_margin'):
            text += ' (less margin than the service wants: the window is short)'
    return text + '.'


# -- commands -------------------------------------------------------------------------------


def _wait(app, job_id: str) -> dict:
    """Follow the job on stderr until it ends; stopping the client leaves the job running."""
    client = app.client_manager.slm
    display = progress.display_for(app.stderr)
    try:
        return progress.follow(client.get, job_id, display, POLL_INTERVAL_S)
    except KeyboardInterrupt:
        raise exceptions.CommandError(
            f'Stopped waiting; migration {job_id} goes on. Follow it with '
            f'"openstack server group migration show {job_id}".') from None


def _draw(app, answer: dict, path: str | None) -> None:
    """``--timeline``: the job's (or dry run's) picture, written where the user said."""
    if not path:
        return
    from slm_plugin.report import job_picture  # matplotlib: only when a picture is asked for
    try:
        written = job_picture.write_job_picture(answer, path)
    except (OSError, ValueError) as exc:
        raise exceptions.CommandError(f'--timeline {path}: cannot write the picture: '
                                      f'{exc}') from None
    app.stderr.write(f'Timeline written to {written}\n')


class MigrateServerGroup(command.ShowOne):
    """Migrate every member of a server group together to another place.

    Prints the migration started (see "server group migration show"), or with
    --dry-run the plan the service would follow, and starts nothing.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('group', metavar='<group>',
                            help='Server group to migrate (name or ID)')
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument('--to-az', metavar='<availability-zone>', dest='availability_zone',
                            help='Move the group to this availability zone')
        target.add_argument('--to-aggregate', metavar='<aggregate>', dest='aggregate',
                            help='Move the group to the hosts of this aggregate')
        target.add_argument('--to-host', metavar='<host>', dest='hosts', action='append',
                            help='Move the group to this host (repeat option to give '
                                 'several hosts)')
        parser.add_argument('--strategy', metavar='<strategy>',
                            help='How to move the members: ' + ', '.join(STRATEGIES)
                                 + " (default: the service's, normally synchronized)")
        parser.add_argument('--max-downtime', metavar='<milliseconds>', type=int,
                            dest='allowed_downtime_ms',
                            help='Longest pause a member may have at its switchover, '
                                 'in milliseconds')
        parser.add_argument('--max-bandwidth', metavar='<bandwidth>', dest='max_bandwidth',
                            help='Bandwidth budget of the whole migration: the speeds of '
                                 'its members together never exceed it. MiB/s, or with a '
                                 'unit: 200MiB/s, 1.5GiB/s, 800Mbit/s (default: the '
                                 "service's, normally none)")
        postcopy = parser.add_mutually_exclusive_group()
        postcopy.add_argument('--post-copy', action='store_true', dest='allow_post_copy',
                              default=None,
                              help='Members may switch over by post-copy (the default '
                                   "is the service's, normally yes)")
        postcopy.add_argument('--no-post-copy', action='store_false', dest='allow_post_copy',
                              help='No member switches over by post-copy: one that cannot '
                                   'converge is paused within --max-downtime or left to '
                                   'converge by itself')
        parser.add_argument('--complete-by', metavar='<time>', dest='complete_by',
                            help='The group must have switched over by then: ISO 8601 '
                                 '(UTC unless it gives an offset) or +30m, +2h... from '
                                 'now. The migration starts as late as is safe, so that the '
                                 'group leaves in time but not too early; a deadline no '
                                 'plan meets is refused with the earliest one')
        parser.add_argument('--not-before', metavar='<time>', dest='not_before',
                            help='Start nothing before then (same forms as --complete-by)')
        converge = parser.add_mutually_exclusive_group()
        converge.add_argument('--auto-converge', action='store_true', default=None,
                              dest='allow_auto_converge',
                              help="QEMU may throttle a guest's vCPUs while its migration "
                                   'does not converge (on Nova, what the compute hosts do; '
                                   'asking otherwise is refused)')
        converge.add_argument('--no-auto-converge', action='store_false',
                              dest='allow_auto_converge',
                              help="No guest's vCPUs are throttled to make it converge")
        parser.add_argument('--priority', choices=PRIORITIES,
                            help='Against other migrations: a higher one is started first '
                                 'and plans on the links first; a lower one plans on what '
                                 'the higher ones leave of the links they share, and slows '
                                 "down without splitting (default: user; the maintenance "
                                 "hook's: maintenance)")
        parser.add_argument('--on-failure', choices=FAILURE_POLICIES, dest='failure_policy',
                            help='When a member fails: abort the others (not yet '
                                 'switched over), or continue with them')
        parser.add_argument('--reason', metavar='<text>',
                            help='Why the group moves (kept with the migration, shown by '
                                 '"migration show")')
        parser.add_argument('--dry-run', action='store_true',
                            help='Show the plan (a row per member) and start nothing')
        parser.add_argument('--wait', action='store_true',
                            help='Show the progress of the group and its members until '
                                 'the migration ends; fail unless it completes')
        parser.add_argument('--timeline', metavar='<file.png>',
                            help='With --dry-run, draw the plan (a row per member) into '
                                 'this PNG file; with --wait, the plan against what '
                                 'happened')
        return parser

    def _target(self, parsed_args) -> dict:
        if parsed_args.hosts:
            return {'hosts': parsed_args.hosts}
        if parsed_args.aggregate is not None:
            return {'aggregate': parsed_args.aggregate}
        return {'availability_zone': parsed_args.availability_zone}

    def take_action(self, parsed_args):
        if parsed_args.dry_run and parsed_args.wait:
            raise exceptions.CommandError('--wait has nothing to wait for with --dry-run, '
                                          'which starts nothing.')
        if parsed_args.timeline and not (parsed_args.dry_run or parsed_args.wait):
            raise exceptions.CommandError('--timeline draws a plan (--dry-run) or a job that '
                                          'has ended (--wait); for a migration started '
                                          'without them, use "server group migration show '
                                          '<migration> --timeline <file.png>".')
        if parsed_args.dry_run and not isinstance(self.formatter, formatters.ListFormatter):
            raise exceptions.CommandError(f'-f {parsed_args.formatter} shows one migration; '
                                          'a plan has a row per member: use -f table, json, '
                                          'yaml or value.')
        options = {k: v for k in ('allowed_downtime_ms', 'failure_policy', 'allow_post_copy',
                                  'allow_auto_converge', 'priority')
                   if (v := getattr(parsed_args, k)) is not None}
        if parsed_args.max_bandwidth is not None:
            options['max_bandwidth_mibps'] = round(bandwidth_mibps(parsed_args.max_bandwidth), 3)
        for key in ('complete_by', 'not_before'):
            if getattr(parsed_args, key) is not None:
                options[key] = instant(getattr(parsed_args, key),
                                       '--' + key.replace('_', '-'))
        if parsed_args.dry_run:
            options['dry_run'] = True
        client = self.app.client_manager.slm
        answer = client.create(parsed_args.group, self._target(parsed_args),
                               strategy=parsed_args.strategy, options=options,
                               reason=parsed_args.reason)
        if parsed_args.dry_run:
            self.app.stderr.write('\n'.join(plan_summary(answer)) + '\n')
            _draw(self.app, answer, parsed_args.timeline)
            return PLAN_COLUMNS, plan_rows(answer.get('plan') or {})
        job = answer
        if parsed_args.wait:
            job = _wait(self.app, job['id'])
            _draw(self.app, job, parsed_args.timeline)
            if job['status'] != 'completed':
                raise exceptions.CommandError(progress.job_summary(job))
        return job_columns(job)

    def produce_output(self, parsed_args, column_names, data):
        if not parsed_args.dry_run:
            return super().produce_output(parsed_args, column_names, data)
        # a plan is a list of members: a list formatter's output, -c still picks columns
        included, selector = self._generate_columns_and_selector(parsed_args, column_names)
        if selector:
            data = [list(self._compress_iterable(row, selector)) for row in data]
        self.formatter.emit_list(included, data, self.app.stdout, parsed_args)
        return 0


class ListServerGroupMigration(command.Lister):
    """List migrations of server groups, oldest first."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--status', metavar='<status>',
                            help='Only migrations in this status: ' + ', '.join(STATUSES))
        parser.add_argument('--group', metavar='<group>',
                            help='Only migrations of this server group (name or ID)')
        parser.add_argument('--limit', metavar='<num-migrations>', type=int,
                            help='Show at most this many migrations')
        parser.add_argument('--marker', metavar='<migration>',
                            help='Show the migrations after this one (ID), as the '
                                 'previous page ended')
        parser.add_argument('--long', action='store_true', default=False,
                            help='List additional fields in output')
        return parser

    def take_action(self, parsed_args):
        client = self.app.client_manager.slm
        jobs = client.list(status=parsed_args.status, group=parsed_args.group,
                           limit=parsed_args.limit, marker=parsed_args.marker)
        headers = ['ID', 'Group', 'Status', 'Strategy', 'Target', 'Created At']
        if parsed_args.long:
            headers += ['Requested By', 'Owner', 'Updated At', 'Error']
        rows = []
        for job in jobs:
            row = [job['id'], (job.get('group') or {}).get('name'), job['status'],
                   job.get('strategy'), TargetColumn(job.get('target')), job.get('created_at')]
            if parsed_args.long:
                row += [job.get('requested_by'), job.get('owner'), job.get('updated_at'),
                        job.get('error')]
            rows.append(row)
        return headers, rows


class ShowServerGroupMigration(command.ShowOne):
    """Show a migration of a server group: its plan, members, progress and switchover."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('migration', metavar='<migration>', help='Migration (ID)')
        parser.add_argument('--timeline', metavar='<file.png>',
                            help='Also draw the plan against what happened, a row per '
                                 'member, into this PNG file')
        return parser

    def take_action(self, parsed_args):
        job = self.app.client_manager.slm.get(parsed_args.migration)
        _draw(self.app, job, parsed_args.timeline)
        return job_columns(job)


class AbortServerGroupMigration(command.Command):
    """Abort a migration of a server group.

    Members that have not switched over stay at their source; those that have
    stay at their destination.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('migration', metavar='<migration>', help='Migration (ID)')
        parser.add_argument('--wait', action='store_true',
                            help='Show the progress until the migration has stopped; fail '
                                 'unless it ends aborted')
        return parser

    def take_action(self, parsed_args):
        job = self.app.client_manager.slm.abort(parsed_args.migration)
        if not parsed_args.wait:
            # the abort is carried out at the engine's next control tick: say so, and
            # what it will do, rather than nothing
            self.app.stderr.write(
                f"Abort of migration {job['id']} requested ({progress.job_summary(job)}): "
                'members that have not switched over stay at their source, those that '
                "have stay at their destination. Follow it with 'openstack server group "
                f"migration show {job['id']}'.\n")
            return
        job = _wait(self.app, job['id'])
        if job['status'] != 'aborted':
            raise exceptions.CommandError(
                f'{progress.job_summary(job)} (it ended before the abort took effect)')


class ListServerGroupMigrationEvent(command.Lister):
    """List what happened in a migration, in order: the job's story as the service recorded it."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('migration', metavar='<migration>', help='Migration (ID)')
        return parser

    def take_action(self, parsed_args):
        events = self.app.client_manager.slm.events(parsed_args.migration)
        return (('At', 'Kind', 'Member', 'Detail'),
                [(e['at'], e['kind'], e.get('member'),
                  format_columns.DictColumn(e.get('detail') or {})) for e in events])
