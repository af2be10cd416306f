"""[DEFAULT] options shared by every SLM service."""

import socket

from oslo_config import cfg

service_opts = [
    cfg.HostAddressOpt(
        'host',
        default=socket.gethostname(),
        sample_default='<current_hostname>',
        help='Name of this node. The engine records it as the owner of the jobs it runs, '
        'so that another engine can take a job over when the owner stops renewing its '
        'lease; an agent uses it as its RPC server name. It must be unique in a '
        'deployment and stable across restarts: set it when the operating system host '
        'name is neither, for example in containers.',
    ),
]


def register_opts(conf):
    conf.register_opts(service_opts)


def list_opts():
    return [('DEFAULT', service_opts)]
