"""Reads and writes of the SLM database, each in an oslo.db enginefacade transaction.

Every function takes a slm_plugin.context.RequestContext first, as in Nova:
the decorators open a reader or writer transaction on it (or join the one
already open), and ``context.db_connection`` may select a database other than
the one in ``[database] connection``. Functions return model objects that stay
usable after the transaction; a job's members are loaded by get_job only.
"""

import functools

import sqlalchemy as sa
from oslo_db.sqlalchemy import enginefacade
from oslo_log import log as logging
from oslo_utils import timeutils, uuidutils
from sqlalchemy import orm

from slm_plugin import exception
from slm_plugin.db import models, states

LOG = logging.getLogger(__name__)

# Reads [database] from slm_plugin.conf.CONF when the first transaction starts.
main_context_manager = enginefacade.transaction_context()
main_context_manager.configure(sqlite_fk=True)


def create_context_manager(connection, **kwargs):
    """A transaction context manager of its own for the database at connection.

    Put it in ``RequestContext(db_connection=...)``; call its dispose_pool()
    when done with it.
    """
    ctxt_mgr = enginefacade.transaction_context()
    ctxt_mgr.configure(connection=connection, sqlite_fk=True, **kwargs)
    return ctxt_mgr


def get_context_manager(context):
    return getattr(context, 'db_connection', None) or main_context_manager


def _writer(f):
    @functools.wraps(f)
    def wrapped(context, *args, **kwargs):
        with get_context_manager(context).writer.using(context):
            return f(context, *args, **kwargs)
    return wrapped


def _reader(f):
    @functools.wraps(f)
    def wrapped(context, *args, **kwargs):
        with get_context_manager(context).reader.using(context):
            return f(context, *args, **kwargs)
    return wrapped


def _check_transition(kind, ident, current, requested, known, transitions):
    if requested not in known:
        raise exception.UnknownState(kind=kind.lower(), requested=requested, known=list(known))
    allowed = transitions[current]
    if requested not in allowed:
        raise exception.InvalidStateTransition(
            kind=kind, ident=ident, current=current, requested=requested, allowed=sorted(allowed))


def _update_row(context, model, kind, ident, current_state, state_attr, values):
    """UPDATE one row; if the state changes, only if nobody changed it meanwhile."""
    values = dict(values, updated_at=timeutils.utcnow())
    query = sa.update(model).where(model.id == ident).values(**values)
    if state_attr in values:
        query = query.where(getattr(model, state_attr) == current_state)
    result = context.session.execute(query.execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise exception.ConcurrentUpdate(kind=kind, ident=ident, expected=current_state)


# Jobs


@_writer
def create_job(context, values, members=()):
    """Create a pending job, and its members if given, in one transaction."""
    values = dict(values)
    values.setdefault('id', uuidutils.generate_uuid())
    if values.setdefault('status', states.PENDING) != states.PENDING:
        raise exception.InvalidStateTransition(
            kind='Job', ident=values['id'], current=None, requested=values['status'],
            allowed=[states.PENDING])
    job = models.Job(**values)
    context.session.add(job)
    context.session.flush()
    for member in members:
        add_member(context, job.id, member)
    LOG.debug('Created job %s for server group %s', job.id, job.server_group_id)
    return job


def _job_get(context, job_id, with_members=False):
    query = sa.select(models.Job).where(models.Job.id == job_id)
    if with_members:
        query = query.options(orm.selectinload(models.Job.members))
    job = context.session.scalars(query).one_or_none()
    if job is None:
        raise exception.JobNotFound(job_id=job_id)
    return job


@_reader
def get_job(context, job_id):
    """The job with its members; JobNotFound if there is none."""
    return _job_get(context, job_id, with_members=True)


@_reader
def list_jobs(context, status=None, server_group_id=None, limit=None, marker=None,
              project_id=None):
    """Jobs, oldest first, optionally only those with a status, of a group or a project.

    A page: at most ``limit`` jobs, those after the job ``marker`` (JobNotFound
    if there is no such job).
    """
    job = models.Job
    query = sa.select(job).order_by(job.created_at, job.id)
    if status is not None:
        query = query.where(job.status == status)
    if server_group_id is not None:
        query = query.where(job.server_group_id == server_group_id)
    if project_id is not None:
        query = query.where(job.project_id == project_id)
    if marker is not None:
        after = _job_get(context, marker)
        query = query.where(sa.or_(job.created_at > after.created_at,
                                   sa.and_(job.created_at == after.created_at,
                                           job.id > after.id)))
    if limit is not None:
        query = query.limit(limit)
    return list(context.session.scalars(query))


@_writer
def update_job(context, job_id, values):
    """Change fields of a job; a new ``status`` must be allowed from the current one.

    Raises InvalidStateTransition for a move the lifecycle forbids (see
    slm_plugin.db.states) and ConcurrentUpdate when another writer changed
    the status since it was read.
    """
    job = _job_get(context, job_id)
    if 'status' in values:
        _check_transition('Job', job_id, job.status, values['status'],
                          states.JOB_STATUSES, states.JOB_TRANSITIONS)
    _update_row(context, models.Job, 'Job', job_id, job.status, 'status', values)
    context.session.expire(job)
    return _job_get(context, job_id)


# Members


@_writer
def add_member(context, job_id, values):
    """Add a queued member (one server) to a job."""
    values = dict(values)
    if values.setdefault('state', states.QUEUED) != states.QUEUED:
        raise exception.InvalidStateTransition(
            kind='Member', ident=values.get('server_id'), current=None,
            requested=values['state'], allowed=[states.QUEUED])
    _job_get(context, job_id)
    member = models.Member(job_id=job_id, **values)
    context.session.add(member)
    context.session.flush()
    return member


def _member_get(context, member_id):
    member = context.session.get(models.Member, member_id)
    if member is None:
        raise exception.MemberNotFound(member_id=member_id)
    return member


@_reader
def get_member(context, member_id):
    return _member_get(context, member_id)


@_reader
def list_members(context, job_id):
    query = sa.select(models.Member).where(models.Member.job_id == job_id)
    return list(context.session.scalars(query.order_by(models.Member.id)))


@_writer
def update_member(context, member_id, values):
    """Change fields of a member; a new ``state`` must be allowed from the current one."""
    member = _member_get(context, member_id)
    if 'state' in values:
        _check_transition('Member', member_id, member.state, values['state'],
                          states.MEMBER_STATES, states.MEMBER_TRANSITIONS)
    _update_row(context, models.Member, 'Member', member_id, member.state, 'state', values)
    context.session.expire(member)
    return _member_get(context, member_id)


@_writer
def update_members_progress(context, values_by_member: dict, job_id=None, job_values=None):
    """Write the progress of several members (no state change), and the job's own
    (``progress``, ``eta_at``), in one transaction."""
    now = timeutils.utcnow()
    if job_id is not None and job_values:
        context.session.execute(
            sa.update(models.Job).where(models.Job.id == job_id)
            .values(**job_values).execution_options(synchronize_session=False))
    for member_id, values in values_by_member.items():
        context.session.execute(
            sa.update(models.Member).where(models.Member.id == member_id)
            .values(**values, updated_at=now).execution_options(synchronize_session=False))


# Events


@_writer
def add_event(context, job_id, kind, detail=None, member_id=None, at=None):
    """Record one step of a job's story: kind is a short name, detail a dict."""
    event = models.JobEvent(job_id=job_id, member_id=member_id, kind=kind, detail=detail,
                            at=at or timeutils.utcnow())
    context.session.add(event)
    context.session.flush()
    return event


@_reader
def list_events(context, job_id, member_id=None):
    """A job's events in the order they happened."""
    query = sa.select(models.JobEvent).where(models.JobEvent.job_id == job_id)
    if member_id is not None:
        query = query.where(models.JobEvent.member_id == member_id)
    query = query.order_by(models.JobEvent.at, models.JobEvent.id)
    return list(context.session.scalars(query))
