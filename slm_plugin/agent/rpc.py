"""The agent's RPC endpoint: a shell around LibvirtDriver on topic ``<prefix>.<host>``.

Version 1.1 (1.1 added ``migration_record``). Every method takes the guest's
UUID (Nova's instance UUID) as ``instance_uuid``; answers are plain dicts and
numbers (MiB, MiB/s, s, ms).
Errors are ``slm_plugin.agent.exception.AgentError`` subclasses; they reach the
caller as oslo.messaging RemoteErrors carrying the class name, which
``slm_plugin.agent.client.AgentClient`` raises again as the same class.
"""

from __future__ import annotations

import oslo_messaging as messaging
from oslo_log import log as logging

from slm_plugin import exception
from slm_plugin.agent import driver as agent_driver
from slm_plugin.agent import ledger as agent_ledger

LOG = logging.getLogger(__name__)

RPC_API_VERSION = '1.1'

_expected = messaging.expected_exceptions(exception.AgentError)


class AgentEndpoint:
    target = messaging.Target(version=RPC_API_VERSION)

    def __init__(self, driver: agent_driver.LibvirtDriver, host: str,
                 dirty_rate_seconds: int = 2,
                 ledger: agent_ledger.MigrationLedger | None = None):
        self.driver = driver
        self.ledger = ledger
        self.host = host
        self.dirty_rate_seconds = dirty_rate_seconds

    @_expected
    def ping(self, ctxt) -> dict:
        """Who answers, and whether its libvirtd does."""
        try:
            info = self.driver.host_info()
            return {'host': self.host, 'uri': self.driver.uri, 'hypervisor': True,
                    'hostname': info['hostname']}
        except exception.HypervisorUnavailable as exc:
            return {'host': self.host, 'uri': self.driver.uri, 'hypervisor': False,
                    'error': str(exc)}

    @_expected
    def host_info(self, ctxt) -> dict:
        return self.driver.host_info()

    @_expected
    def list_domains(self, ctxt) -> list[dict]:
        return self.driver.list_domains()

    @_expected
    def domain_stats(self, ctxt, instance_uuid: str) -> dict:
        return self.driver.domain_stats(instance_uuid)

    @_expected
    def dirty_rate(self, ctxt, instance_uuid: str, seconds: int | None = None) -> float:
        return self.driver.dirty_rate(instance_uuid, seconds or self.dirty_rate_seconds)

    @_expected
    def migration_stats(self, ctxt, instance_uuid: str) -> dict:
        return self.driver.migration_stats(instance_uuid)

    @_expected
    def migration_record(self, ctxt, instance_uuid: str) -> dict:
        """What this host's libvirtd said of the guest's last migration (its switchover
        instant, downtime and bytes: ``ledger.MigrationLedger.record``); empty when
        this agent keeps no ledger or saw nothing."""
        return {} if self.ledger is None else self.ledger.record(instance_uuid)

    @_expected
    def set_max_speed(self, ctxt, instance_uuid: str, cap_mibps: float | None) -> int:
        LOG.debug('%s: max speed %s MiB/s', instance_uuid, cap_mibps)
        return self.driver.set_max_speed(instance_uuid, cap_mibps)

    @_expected
    def set_max_downtime(self, ctxt, instance_uuid: str, downtime_ms: int) -> None:
        self.driver.set_max_downtime(instance_uuid, downtime_ms)

    @_expected
    def hold(self, ctxt, instance_uuid: str, held: bool) -> None:
        LOG.info('%s: %s', instance_uuid, 'hold' if held else 'release')
        self.driver.hold(instance_uuid, bool(held))

    @_expected
    def force_complete(self, ctxt, instance_uuid: str, mode: str) -> None:
        LOG.info('%s: force-complete by %s', instance_uuid, mode)
        self.driver.force_complete(instance_uuid, mode)

    @_expected
    def abort(self, ctxt, instance_uuid: str) -> None:
        LOG.info('%s: abort', instance_uuid)
        self.driver.abort(instance_uuid)
