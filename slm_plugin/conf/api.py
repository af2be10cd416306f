"""[api] options: where the REST API listens and how it authenticates callers."""

from oslo_config import cfg

api_group = cfg.OptGroup(
    'api',
    title='SLM API options',
    help='Options for the slm-api service, which accepts migration requests for server '
    'groups and reports the progress of the jobs.',
)

api_opts = [
    cfg.HostAddressOpt(
        'bind_host',
        default='0.0.0.0',
        help='IP address or host name the API server listens on. Set it to a management '
        'network address to keep the API off tenant-facing interfaces.',
    ),
    cfg.PortOpt(
        'bind_port',
        default=9740,
        help='TCP port the API server listens on. Change it when another service '
        'already uses the port on the controller.',
    ),
    cfg.StrOpt(
        'auth_strategy',
        default='keystone',
        choices=[
            ('keystone', 'Validate the token of every request with Keystone.'),
            ('noauth', 'Accept every request without authentication; only for '
             'development and tests, never on a reachable network.'),
        ],
        help='How the API authenticates callers. Keep ``keystone`` in every deployment; '
        '``noauth`` exists so that the API can be exercised without Keystone.',
    ),
]


def register_opts(conf):
    conf.register_group(api_group)
    conf.register_opts(api_opts, group=api_group)


def list_opts():
    return [(api_group, api_opts)]
