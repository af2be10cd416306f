"""slm-sim-cloud: a simulated cloud that outlives the engines, served over RPC.

    slm-sim-cloud --config-file /etc/slm/slm.conf

It simulates ``[engine] scenario`` at ``[simulation] speed`` times real time
and answers the engines configured with ``[engine] cloud = simulated-rpc``
on ``[simulation] topic`` (see slm_plugin.engine.clouds.remote).
"""

import sys

from oslo_log import log as logging

from slm_plugin.cmd import daemon
from slm_plugin.engine.clouds.remote import SimCloudService

LOG = logging.getLogger(__name__)


def main(argv=None) -> int:
    conf = daemon.prepare(argv, 'slm-sim-cloud')
    try:
        service = SimCloudService(conf)
    except ValueError as exc:
        LOG.error('Cannot start: %s', exc)
        return 2
    service.start()
    signum = daemon.wait_for_signal()
    LOG.info('Signal %d: stopping', signum)
    service.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
