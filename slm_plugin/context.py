"""Request context: who asks, and which database a request reads and writes."""

from oslo_context import context
from oslo_db.sqlalchemy import enginefacade


@enginefacade.transaction_context_provider
class RequestContext(context.RequestContext):
    """oslo.context's request context, able to carry a database transaction.

    ``db_connection`` selects a transaction context manager other than the
    service's main one (see slm_plugin.db.api.create_context_manager), as Nova
    does for cells; tools and tests use it to work on a database of their own.
    """

    def __init__(self, *args, db_connection=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.db_connection = db_connection


def get_admin_context(db_connection=None):
    """A context for the services' own work, not on behalf of a user."""
    return RequestContext(is_admin=True, overwrite=False, db_connection=db_connection)
