"""[api] options: where the REST API listens and how it authenticates callers."""

from oslo_config import cfg

from slm_plugin.conf import groups

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
    cfg.URIOpt(
        'public_endpoint',
        schemes=['http', 'https'],
        help='Public URL of the API, e.g. ``https://cloud.example.com/slm``, used in the '
        '``Location`` header and in the links of response bodies instead of the URL the '
        'request came in on (built from its ``Host`` header, which any client sets as it '
        "likes). Set it when the API runs behind a proxy or a load balancer, as Nova's "
        '``[api] compute_link_prefix``; unset, links follow the request.',
    ),
    cfg.IntOpt(
        'max_request_body_size',
        default=65536,
        min=1024,
        help='Largest request body the API reads, in bytes; a larger one is refused with '
        '413 before it is read. A migration request is a few hundred bytes.',
    ),
    cfg.IntOpt(
        'client_socket_timeout',
        default=30,
        min=1,
        help='Seconds the ``slm-api`` server waits for a client on an open connection: for '
        'the request line, the headers and each part of the body. A client that stops '
        'sending gets 408 (or its connection closed) after it, so half-open connections do '
        'not pile up. Under uWSGI set its ``socket-timeout`` and ``http-timeout`` '
        'instead (see the installation guide).',
    ),
]


def register_opts(conf):
    groups.register(conf, api_group, api_opts)


def list_opts():
    return [(api_group, api_opts)]
