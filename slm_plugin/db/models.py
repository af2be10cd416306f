"""SQLAlchemy models of the SLM database.

The alembic migrations under slm_plugin/db/alembic create these tables; a
functional test checks that both agree on SQLite and MariaDB.
"""

import datetime

import sqlalchemy as sa
from oslo_db.sqlalchemy import models
from oslo_db.sqlalchemy import types as db_types
from oslo_utils import timeutils
from sqlalchemy import orm
from sqlalchemy.dialects import mysql

from slm_plugin.db import states

# Constraint names that future migrations can refer to on every backend.
NAMING_CONVENTION = {
    'ix': 'ix_%(table_name)s_%(column_0_N_name)s',
    'uq': 'uq_%(table_name)s_%(column_0_N_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}

# Microseconds: events of one control tick must keep their order on MariaDB,
# whose DATETIME drops fractions of a second unless asked not to.
DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def _utcnow():
    return timeutils.utcnow()


class Base(models.ModelBase, orm.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        DateTime, nullable=False, default=_utcnow)
    updated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        DateTime, nullable=True, onupdate=_utcnow)


class Job(TimestampMixin, Base):
    """The migration of one server group, from request to final status."""

    __tablename__ = 'jobs'
    __table_args__ = (
        sa.Index(None, 'status'),
        sa.Index(None, 'server_group_id'),
        sa.Index(None, 'status', 'lease_expires_at'),
        sa.Index(None, 'project_id'),
    )

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    server_group_id: orm.Mapped[str] = orm.mapped_column(sa.String(36), nullable=False)
    server_group_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    strategy: orm.Mapped[str] = orm.mapped_column(sa.String(64), nullable=False)
    status: orm.Mapped[str] = orm.mapped_column(
        sa.String(16), nullable=False, default=states.PENDING)
    request: orm.Mapped[dict] = orm.mapped_column(
        db_types.JsonEncodedDict(mysql_as_medium=True), nullable=False)
    plan: orm.Mapped[dict | None] = orm.mapped_column(
        db_types.JsonEncodedDict(mysql_as_medium=True))
    # The engine running the job and until when; another engine may take the
    # job over once the lease has expired.
    owner: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    lease_expires_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(DateTime)
    error: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    # who asked (the request context's), for the policies: NULL for the engine's own jobs
    project_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    user_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    # while it runs: the share done (only grows) and the predicted switchover of the group
    progress: orm.Mapped[float | None] = orm.mapped_column(sa.Float)
    eta_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(DateTime)
    # control.shares.LEVELS: claimed first, and first on the links it shares
    priority: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False, default=200,
                                                  server_default='200')

    members: orm.Mapped[list['Member']] = orm.relationship(
        back_populates='job', order_by='Member.id', lazy='raise')


class Member(TimestampMixin, Base):
    """One server of the group and the progress of its live migration."""

    __tablename__ = 'job_members'
    __table_args__ = (
        sa.UniqueConstraint('job_id', 'server_id'),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    job_id: orm.Mapped[str] = orm.mapped_column(
        sa.String(36), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False)
    server_id: orm.Mapped[str] = orm.mapped_column(sa.String(36), nullable=False)
    name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    source_host: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)
    destination_host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    state: orm.Mapped[str] = orm.mapped_column(
        sa.String(16), nullable=False, default=states.QUEUED)
    started_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(DateTime)
    switchover_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(DateTime)
    bytes_transferred: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger, nullable=False, default=0)
    downtime_ms: orm.Mapped[int | None] = orm.mapped_column(sa.Integer)
    # while it migrates (every [engine] progress_interval): memory and disk still to
    # send, the pre-copy iteration (-1 while the disk is copied), when that was seen
    remaining_bytes: orm.Mapped[int | None] = orm.mapped_column(sa.BigInteger)
    iteration: orm.Mapped[int | None] = orm.mapped_column(sa.Integer)
    progress_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(DateTime)

    job: orm.Mapped[Job] = orm.relationship(back_populates='members', lazy='raise')


class JobEvent(Base):
    """One thing that happened to a job or one of its members: the job's story."""

    __tablename__ = 'job_events'
    __table_args__ = (
        sa.Index(None, 'job_id', 'at'),
        sa.Index(None, 'member_id'),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    job_id: orm.Mapped[str] = orm.mapped_column(
        sa.String(36), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False)
    member_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.Integer, sa.ForeignKey('job_members.id', ondelete='CASCADE'))
    at: orm.Mapped[datetime.datetime] = orm.mapped_column(DateTime, nullable=False, default=_utcnow)
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(64), nullable=False)
    detail: orm.Mapped[dict | None] = orm.mapped_column(db_types.JsonEncodedDict)


class JobLock(Base):
    """A server group or a server that an unfinished job is moving.

    ``name`` is ``group:<id>`` or ``server:<id>``; the primary key makes a
    second job for the same group or server fail, whoever asks first wins.
    The locks go when the job reaches a final status.
    """

    __tablename__ = 'job_locks'
    __table_args__ = (
        sa.Index(None, 'job_id'),
    )

    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), primary_key=True)
    job_id: orm.Mapped[str] = orm.mapped_column(
        sa.String(36), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        DateTime, nullable=False, default=_utcnow)
