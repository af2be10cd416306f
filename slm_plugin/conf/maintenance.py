"""[maintenance] options: move server groups off hosts an operator takes down."""

import re

from oslo_config import cfg, types

from slm_plugin.conf import groups


class Regex(types.String):
    """A string that must compile as a Python regular expression.

    Rejecting a broken pattern when the option is read beats failing the first
    time a host is disabled.
    """

    def __init__(self):
        super().__init__(type_name='regular expression')

    def __call__(self, value):
        value = super().__call__(value)
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f'invalid regular expression {value!r}: {exc}') from exc
        return value


maintenance_group = cfg.OptGroup(
    'maintenance',
    title='SLM maintenance options',
    help='Options for maintenance mode: when an operator disables a compute service '
    'for maintenance, SLM migrates the server groups with members on that host to '
    'another data centre together.',
)

maintenance_opts = [
    cfg.BoolOpt(
        'enabled',
        default=False,
        help='Watch the compute services and migrate the server groups off a host when '
        'it is disabled with a matching reason. Off by default because it moves '
        'workloads without a request.',
    ),
    cfg.Opt(
        'disabled_reason_pattern',
        type=Regex(),
        default=r'(?i)^maintenance\b',
        help='Regular expression searched in the ``disabled_reason`` of a compute service. '
        'Only the server groups on hosts disabled with a matching reason are moved, '
        'so that a host disabled for another reason (a failed health check, a '
        'scheduler drain) is left alone.',
    ),
    cfg.StrOpt(
        'priority',
        default='maintenance',
        choices=[('critical', 'Before every other job, and first on the links'),
                 ('user', "As an operator's request (the default of a request)"),
                 ('maintenance', "After the operators' requests, on what they leave of "
                  'the links')],
        help="Priority of the maintenance hook's evacuations against other jobs: pending "
        'jobs are started highest priority first, and a job plans on what jobs of a '
        'higher priority leave of the links they share.',
    ),
    cfg.BoolOpt(
        'evacuate_lone_servers',
        default=False,
        help='Also live-migrate the servers of a host under maintenance that belong to '
        'no server group, one by one. Leave it off when another tool already drains '
        'hosts.',
    ),
    cfg.StrOpt(
        'notification_topic',
        default='versioned_notifications',
        help="Topic Nova sends its versioned notifications to (Nova's "
        '``[notifications] versioned_notifications_topics``). The engines listen to '
        'its ``service.update`` notifications.',
    ),
    cfg.StrOpt(
        'notification_exchange',
        default='nova',
        help="Exchange Nova sends its notifications on (Nova's ``control_exchange``).",
    ),
    cfg.StrOpt(
        'target_availability_zone',
        help='Availability zone the server groups of a host under maintenance go to. '
        'Unset, the cloud driver chooses: for the simulated clouds, the site the '
        "scenario's request names, or another site than the host's.",
    ),
]


def register_opts(conf):
    groups.register(conf, maintenance_group, maintenance_opts)


def list_opts():
    return [(maintenance_group, maintenance_opts)]
