"""Every error SLM raises, in one module, in the style of Nova's and Watcher's.

Each class has a message format (``msg_fmt``, filled from its keyword arguments) and
an HTTP status ``code``. The API answers any :class:`SLMException` with its code and
message, so a new error needs no new ``except`` clause there. Keyword arguments are
kept in ``kwargs`` and an already formatted message is accepted, so that
oslo.messaging can rebuild the error on the calling side of an RPC (this module is in
``slm_plugin.common.messaging.ALLOWED_EXMODS``).

The module imports nothing: the pure core (``model``, ``scenario``, ``control``,
``planning``, ``simulation``) raises these errors too.
"""

from __future__ import annotations


class SLMException(Exception):
    """Base of SLM's errors: a message an operator can act on, and an HTTP code."""

    msg_fmt = 'An unknown error occurred.'
    code = 500

    def __init__(self, message: str | None = None, **kwargs):
        self.kwargs = kwargs
        for name, value in kwargs.items():
            setattr(self, name, value)
        if message is None:
            message = self._format(**kwargs)
        self.message = message
        super().__init__(message)

    def _format(self, **kwargs) -> str:
        return self.msg_fmt % kwargs if kwargs else self.msg_fmt

    def __str__(self) -> str:
        return self.message


# -- by HTTP status ---------------------------------------------------------------------------


class Invalid(SLMException, ValueError):
    msg_fmt = 'Invalid input.'
    code = 400


class Forbidden(SLMException):
    msg_fmt = 'Policy does not allow this action.'
    code = 403


class NotFound(SLMException, LookupError):
    msg_fmt = 'Not found.'
    code = 404


class Conflict(SLMException):
    msg_fmt = 'The request conflicts with the current state.'
    code = 409


class ServiceUnavailable(SLMException):
    msg_fmt = 'A service SLM needs does not answer: %(reason)s'
    code = 503


# -- requests ---------------------------------------------------------------------------------


class ValidationError(Invalid):
    """A request body that does not match its schema."""


class UsageError(Invalid):
    """Bad input from the command line; printed as one line, exit status 2."""


class PlanError(Invalid):
    """No plan can carry the request out (an unknown strategy, a target with no room)."""


class UnknownStrategy(PlanError):
    msg_fmt = 'Unknown strategy %(strategy)r; choose one of: %(known)s.'

    def _format(self, strategy, known):
        return self.msg_fmt % {'strategy': strategy, 'known': ', '.join(known)}


class ScenarioError(Invalid):
    """A scenario that cannot be loaded; the message is one line: ``source: path: problem``."""

    def __init__(self, source: str, path: str, problem: str):
        where = f'{source}: {path}' if path else source
        super().__init__(f'{where}: {problem}')
        # args are the three parts, so that the error pickles and crosses RPC intact
        self.args = (source, path, problem)
        self.source, self.path, self.problem = source, path, problem


class InvalidTarget(Invalid):
    """The requested destination does not exist, or the group cannot move there."""


class GroupNotFound(NotFound):
    """No server group of that id or name."""


class MembersBusy(Conflict):
    """A member of the group is migrating already, or busy with another task."""


# -- the cloud the control loop drives --------------------------------------------------------


class CloudError(SLMException):
    """An action the cloud refused, or a migration it could not carry out; says why.

    ``transient`` says that nothing was decided: the part that carries the action
    out did not answer (an agent restarting, libvirtd down), so the same action
    may succeed when sent again. The control loop sends a transient cap or hold
    again for a while before it counts the member as failed.
    """

    code = 502

    @property
    def transient(self) -> bool:
        return False


class CloudUnavailable(ServiceUnavailable):
    """The cloud did not answer (unreachable, timed out, failing): nothing was decided.

    The message says which cloud and why; the request may be tried again later.
    Backends raise it from what the API asks (find_group, check, scenario)
    instead of their transport's own errors.
    """


class ActuatorError(CloudError):
    """The agent could not cap, hold or complete a migration on its host.

    ``cause`` is the agent's error (AgentUnavailable, NoMigration, ...). A
    CloudError, so the control loop applies its failure policy to it as to any
    refused action.
    """

    def __init__(self, message: str, cause: Exception | None = None):
        super().__init__(message)
        self.cause = cause

    @property
    def transient(self) -> bool:
        return isinstance(self.cause, (AgentUnavailable, HypervisorUnavailable))


class NovaVersionError(SLMException):
    """Nova does not offer the microversions SLM needs."""


# -- the database -----------------------------------------------------------------------------


class DBError(SLMException):
    """Base of SLM's database errors."""

    msg_fmt = 'A database error occurred.'


class JobNotFound(DBError, NotFound):
    msg_fmt = 'Migration job %(job_id)s could not be found.'
    code = 404


class MemberNotFound(DBError, NotFound):
    msg_fmt = 'Job member %(member_id)s could not be found.'
    code = 404


class InvalidStateTransition(DBError, Conflict):
    """A job or member was asked to move to a state its lifecycle forbids."""

    code = 409

    def _format(self, kind, ident, current, requested, allowed):
        allowed_text = ', '.join(sorted(allowed)) or 'none, it is final'
        if current is None:
            return f'{kind} {ident} must be created as {allowed_text}, not {requested!r}.'
        return (f'{kind} {ident} cannot go from {current!r} to {requested!r}; '
                f'allowed from {current!r}: {allowed_text}.')


class UnknownState(DBError, Invalid):
    code = 400

    def _format(self, kind, requested, known):
        return f'{requested!r} is not a {kind} state; known: {", ".join(known)}.'


class ConcurrentUpdate(DBError, Conflict):
    """Another writer changed the row between our read and our write."""

    code = 409
    msg_fmt = ('%(kind)s %(ident)s was changed concurrently (it is no longer '
               '%(expected)r); read it again before retrying.')


class JobConflict(DBError, Conflict):
    """The group or a server of a new job is already moving in another job."""

    code = 409

    def _format(self, lock, job_id):
        kind, _, ident = lock.partition(':')
        what = 'server group' if kind == 'group' else 'server'
        return f'The {what} {ident} is already being migrated by job {job_id}.'


class JobFinished(DBError, Conflict):
    code = 409
    msg_fmt = 'Migration job %(job_id)s has already ended (%(status)s).'


class NotOwner(DBError, Conflict):
    code = 409
    msg_fmt = ('Engine %(owner)s no longer owns job %(job_id)s (owner: %(current)s, '
               'status: %(status)s).')


# -- the agent --------------------------------------------------------------------------------


class AgentError(SLMException):
    """Base of the agent's errors; ``kind`` names the kind for logs and RPC.

    Every libvirt error the agent meets becomes one of these (``agent.driver.translate``).
    They cross RPC by class name: the engine's client (``slm_plugin.agent.client``)
    turns the oslo.messaging RemoteError back into the same class.
    """

    kind = 'agent_error'


class HypervisorUnavailable(AgentError):
    """libvirtd cannot be reached (stopped, restarting, wrong URI)."""

    kind = 'hypervisor_unavailable'


class DomainNotFound(AgentError):
    """No guest with that UUID runs on this host (never did, or migrated away)."""

    kind = 'domain_not_found'


class NoMigration(AgentError):
    """The guest has no migration job running."""

    kind = 'no_migration'


class NotSupported(AgentError):
    """The hypervisor driver cannot do this (libvirt's test driver, old QEMU)."""

    kind = 'not_supported'


class InvalidRequest(AgentError):
    """Bad arguments: a negative cap, an unknown completion mode, an invalid state."""

    kind = 'invalid_request'


class OperationFailed(AgentError):
    """libvirt refused or failed the operation for another reason; the message is libvirt's."""

    kind = 'operation_failed'


class AgentUnavailable(AgentError):
    """(Engine side) no agent answers on that host."""

    kind = 'agent_unavailable'


AGENT_ERRORS = {cls.__name__: cls for cls in (
    AgentError, HypervisorUnavailable, DomainNotFound, NoMigration, NotSupported,
    InvalidRequest, OperationFailed, AgentUnavailable)}
