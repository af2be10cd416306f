"""slm-agent: the per compute host service that measures guests and drives migrations.

    slm-agent --config-file /etc/slm/slm.conf

It serves RPC on ``<[agent] topic_prefix>.<[DEFAULT] host>`` over
``[DEFAULT] transport_url`` and talks to ``[agent] libvirt_uri``. A libvirtd
that is down is not fatal: calls fail with a clear error until it is back, and
the agent reconnects by itself. SIGTERM or SIGINT stops it.
"""

import signal
import sys
import threading

from oslo_log import log as logging

import slm_plugin.conf
from slm_plugin import exception
from slm_plugin.agent.service import AgentService
from slm_plugin.common import messaging

CONF = slm_plugin.conf.CONF
LOG = logging.getLogger(__name__)


def main(argv=None, stop_event: threading.Event | None = None):
    logging.register_options(CONF)
    CONF(sys.argv[1:] if argv is None else argv, project='slm', prog='slm-agent')
    logging.setup(CONF, 'slm-agent')
    stop = stop_event or threading.Event()
    if stop_event is None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    service = AgentService(CONF)
    try:
        service.driver.host_info()
    except exception.HypervisorUnavailable as exc:
        LOG.warning('%s; serving anyway, calls fail until libvirtd answers', exc)
    service.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        service.stop()
        messaging.cleanup(CONF)
    return 0


if __name__ == '__main__':
    sys.exit(main())
