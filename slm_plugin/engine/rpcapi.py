"""Client side of the engine's RPC API, for slm-api and the maintenance hook.

The database is where jobs live; a message only tells the engines to look.
One engine of the topic gets ``job_created`` and claims the job at once; if
the message is lost (the broker was away), the engines' periodic scan finds
the job anyway.

Version history: 1.0 - job_created, ping.
"""

from __future__ import annotations

import oslo_messaging as messaging
from oslo_log import log as logging

from slm_plugin.common import messaging as rpc

LOG = logging.getLogger(__name__)

RPC_VERSION = '1.0'


class EngineAPI:
    def __init__(self, conf):
        self.conf = conf
        self._client = rpc.get_rpc_client(conf, conf.engine.topic, version=RPC_VERSION)

    def job_created(self, ctxt, job_id: str) -> bool:
        """Tell one engine that a job waits; False if the message could not be sent."""
        try:
            self._client.prepare(retry=1).cast(ctxt, 'job_created', job_id=job_id)
            return True
        except messaging.MessagingException as exc:
            LOG.warning('Could not tell the engines about job %s (%s); their next scan '
                        'will find it', job_id, exc)
            return False

    def ping(self, ctxt, server: str | None = None, timeout: float = 10) -> dict:
        client = self._client.prepare(server=server, timeout=timeout)
        return client.call(ctxt, 'ping')
