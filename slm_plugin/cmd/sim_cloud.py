"""slm-sim-cloud: a simulated cloud that outlives the engines, served over RPC.

    slm-sim-cloud --config-file /etc/slm/slm.conf

It simulates ``[engine] scenario`` at ``[simulation] speed`` times real time
and answers the engines configured with ``[engine] cloud = simulated-rpc``
on ``[simulation] topic`` (see slm_plugin.simulated.remote).
"""

import sys

from slm_plugin.cmd import daemon
from slm_plugin.simulated.remote import SimCloudService


def main(argv=None) -> int:
    return daemon.serve(argv, 'slm-sim-cloud', SimCloudService)


if __name__ == '__main__':
    sys.exit(main())
