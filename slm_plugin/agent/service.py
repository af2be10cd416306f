"""The agent service: an RPC server of AgentEndpoint on the host's topic."""

from __future__ import annotations

from oslo_log import log as logging

from slm_plugin import exception
from slm_plugin.agent import driver as agent_driver
from slm_plugin.agent import ledger as agent_ledger
from slm_plugin.agent import rpc
from slm_plugin.common import messaging

LOG = logging.getLogger(__name__)


class AgentService:
    """Serves one host: ``host`` (default ``[DEFAULT] host``) names its topic and server.

    ``libvirt_uri`` defaults to ``[agent] libvirt_uri``. Several services may run in
    one process (tests, the demo), each for its own host.
    """

    def __init__(self, conf, host: str | None = None, libvirt_uri: str | None = None,
                 driver: agent_driver.LibvirtDriver | None = None):
        self.conf = conf
        self.host = host or conf.host
        self.driver = driver or agent_driver.LibvirtDriver(
            libvirt_uri or conf.agent.libvirt_uri,
            hold_downtime_ms=conf.agent.hold_downtime_ms)
        # the migrations' true figures come from libvirt's events, which need its event
        # loop before the connection is opened
        agent_driver.start_event_loop()
        self.ledger = agent_ledger.MigrationLedger(self.driver)
        endpoint = rpc.AgentEndpoint(self.driver, self.host,
                                     dirty_rate_seconds=conf.agent.dirty_rate_seconds,
                                     ledger=self.ledger)
        self.topic = messaging.agent_topic(conf, self.host)
        self.server = messaging.get_rpc_server(conf, self.topic, [endpoint], server=self.host)
        self._running = False

    def start(self) -> None:
        try:
            self.driver.connection()  # listen to its events from now on
        except exception.HypervisorUnavailable as exc:
            LOG.warning('%s; migration events are followed once it answers', exc)
        self.server.start()
        self._running = True
        LOG.info('slm-agent for %s serves %s on topic %s', self.host, self.driver.uri,
                 self.topic)

    def stop(self) -> None:
        if self._running:
            self.server.stop()
            self.server.wait()
            self._running = False
        self.driver.close()
