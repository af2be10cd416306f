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
    cfg.IntOpt(
        'rpc_retry_attempts',
        default=2,
        min=1,
        help='Attempts of an RPC call that is safe to repeat (reading progress or '
        'statistics, setting a speed cap or a hold) when no answer comes: the broker '
        'restarting, a reply lost. Calls that act once (start, force-complete, abort) '
        "are never repeated. Each attempt waits up to the call's own timeout.",
    ),
]


def register_opts(conf):
    conf.register_opts(service_opts)


def list_opts():
    return [('DEFAULT', service_opts)]
