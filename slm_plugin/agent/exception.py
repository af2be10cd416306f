"""Errors of the SLM agent, each a clear statement of what went wrong.

Every libvirt error the agent meets becomes one of these (see
``driver.translate``). They cross RPC by class name: the engine's client
(``slm_plugin.collectors.agent``) turns the oslo.messaging RemoteError back
into the same class, so callers catch ``DomainNotFound`` and not a string.
"""


class AgentError(Exception):
    """Base of the agent's errors; ``code`` names the kind for logs and RPC."""

    code = "agent_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class HypervisorUnavailable(AgentError):
    """libvirtd cannot be reached (stopped, restarting, wrong URI)."""

    code = "hypervisor_unavailable"


class DomainNotFound(AgentError):
    """No guest with that UUID runs on this host (never did, or migrated away)."""

    code = "domain_not_found"


class NoMigration(AgentError):
    """The guest has no migration job running."""

    code = "no_migration"


class NotSupported(AgentError):
    """The hypervisor driver cannot do this (libvirt's test driver, old QEMU)."""

    code = "not_supported"


class InvalidRequest(AgentError):
    """Bad arguments: a negative cap, an unknown completion mode, an invalid state."""

    code = "invalid_request"


class OperationFailed(AgentError):
    """libvirt refused or failed the operation for another reason; the message is libvirt's."""

    code = "operation_failed"


class AgentUnavailable(AgentError):
    """(Engine side) no agent answers on that host."""

    code = "agent_unavailable"


ALL = {cls.__name__: cls for cls in (AgentError, HypervisorUnavailable, DomainNotFound,
                                     NoMigration, NotSupported, InvalidRequest, OperationFailed,
                                     AgentUnavailable)}
