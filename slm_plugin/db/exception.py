"""Errors of the persistence layer, with messages an operator can act on.

As in Nova, each error keeps its arguments in ``kwargs`` and accepts an
already formatted message, so that oslo.messaging can rebuild it on the
calling side of an RPC (see slm_plugin.common.messaging.ALLOWED_EXMODS).
"""


class DBError(Exception):
    """Base class of SLM's database errors."""

    msg_fmt = 'A database error occurred.'

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        for name, value in kwargs.items():
            setattr(self, name, value)
        super().__init__(message or self._format(**kwargs))

    def _format(self, **kwargs):
        return self.msg_fmt % kwargs


class JobNotFound(DBError):
    msg_fmt = 'Migration job %(job_id)s could not be found.'


class MemberNotFound(DBError):
    msg_fmt = 'Job member %(member_id)s could not be found.'


class InvalidStateTransition(DBError):
    """A job or member was asked to move to a state its lifecycle forbids."""

    def _format(self, kind, ident, current, requested, allowed):
        allowed_text = ', '.join(sorted(allowed)) or 'none, it is final'
        if current is None:
            return f'{kind} {ident} must be created as {allowed_text}, not {requested!r}.'
        return (f'{kind} {ident} cannot go from {current!r} to {requested!r}; '
                f'allowed from {current!r}: {allowed_text}.')


class UnknownState(DBError):
    def _format(self, kind, requested, known):
        return f'{requested!r} is not a {kind} state; known: {", ".join(known)}.'


class ConcurrentUpdate(DBError):
    """Another writer changed the row between our read and our write."""

    msg_fmt = ('%(kind)s %(ident)s was changed concurrently (it is no longer '
               '%(expected)r); read it again before retrying.')
