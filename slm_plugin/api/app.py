"""The WSGI application of slm-api: routes, the group migrations resource, errors as JSON.

Resources (every response and error body is JSON)::

    GET  /                                        versions
    GET  /v1                                      this version
    POST /v1/group-migrations                     start (202) or plan (dry run, 200)
    GET  /v1/group-migrations[?status=&group=]    list, oldest first
    GET  /v1/group-migrations/{id}                plan, members' progress, switchover
    GET  /v1/group-migrations/{id}/events         the job's story
    POST /v1/group-migrations/{id}/abort          abort (202)

HEAD answers as GET without the body, OPTIONS with the ``Allow`` header that
every 405 carries too. A path or a query string that is not UTF-8 once
percent-decoded, a Content-Length that is not a number, a body that is not
one JSON object (duplicate keys, nesting deeper than MAX_DEPTH) are 400s;
a body larger than ``[api] max_request_body_size`` is a 413.

The pipeline is: request id, authentication (keystonemiddleware's auth_token,
or ``noauth`` for development and tests, see ``[api] auth_strategy``), the
request context, then the router. Every operation is checked against the
policy (slm_plugin.api.policies).
"""

from __future__ import annotations

import json
import urllib.parse

import routes
import webob
import webob.dec
import webob.request
from oslo_log import log as logging
from oslo_middleware import http_proxy_to_wsgi, request_id

from slm_plugin import context as slm_context
from slm_plugin import exception, planning
from slm_plugin.api import policy, schemas, views
from slm_plugin.db import api as db
from slm_plugin.db import coordination, states
from slm_plugin.engine import backends, jobs

LOG = logging.getLogger(__name__)

#: ``version`` grows with every addition a client may look for (doc/source/service.rst,
#: "Versions"): 1.1 added ``options.max_bandwidth_mibps``, 1.2 ``switchover.eta_at`` and
#: ``switchover.progress``, 1.3 ``options.allow_post_copy``, 1.4 ``options.complete_by``,
#: ``options.not_before`` and ``schedule``, 1.5 ``options.priority``, ``priority`` and
#: ``options.allow_auto_converge``
VERSION = {'id': 'v1', 'status': 'CURRENT', 'version': '1.5', 'min_version': '1.0',
           'links': [{'rel': 'self', 'href': '/v1'}]}
LIST_FILTERS = {'status', 'group', 'limit', 'marker'}
MAX_LIMIT = 1000
RETRY_AFTER_S = 30  # a 503's Retry-After: the cloud did not answer


class Fault(exception.SLMException):
    """An error answer of the API's own (a bad query, a body too large): code and message.

    Errors from below (the database, the backend, the planner) are not wrapped
    in a Fault: they are SLMExceptions with an HTTP code of their own, and the
    Router answers every SLMException by its code.
    """

    def __init__(self, code: int, message: str, headers=None):
        super().__init__(message)
        self.code = code
        self.headers = headers or {}


def _json(status: int, body, headers=None) -> webob.Response:
    response = webob.Response(status=status, content_type='application/json', charset='utf-8')
    response.text = json.dumps(body)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(code: int, message: str, headers=None) -> webob.Response:
    title = webob.Response(status=code).status.split(' ', 1)[1]
    return _json(code, {'error': {'code': code, 'title': title, 'message': message}}, headers)


class GroupMigrations:
    """The group migrations resource; every method takes the request and its context."""

    def __init__(self, conf, backend, engine_api, enforcer):
        self.conf = conf
        self.backend = backend
        self.engine_api = engine_api
        self.enforcer = enforcer
        self.schema = schemas.create(planning.names())

    def _authorize(self, ctxt, action, job=None):
        """Check the policy of action; on a job, against the job's project, as Nova does."""
        target = None if job is None else {'project_id': job.project_id,
                                           'user_id': job.user_id}
        policy.authorize(self.enforcer, ctxt, policies_name(action), target)

    def create(self, req, ctxt):
        self._authorize(ctxt, 'create')
        body = _body(req, self.conf.api.max_request_body_size)
        schemas.validate(self.schema, body)
        request = body['group_migration']
        try:
            if (request.get('options') or {}).get('dry_run'):
                result = jobs.dry_run(self.conf, self.backend, request)
                group = result['group']
                return _json(200, {'group_migration': {
                    'dry_run': True, 'group': {'id': group.id, 'name': group.name},
                    'strategy': result['strategy'], 'target': result['target'],
                    'options': result['options'], 'plan': result['plan'],
                    **({'schedule': result['schedule']} if 'schedule' in result else {})}})
            job = jobs.submit(ctxt, self.conf, self.backend, request, requested_by='api',
                              reason=request.get('reason'))
        except exception.CloudUnavailable as exc:
            LOG.warning('Cannot answer %s %s: %s (%s)', req.method, req.path, exc,
                        exc.__cause__)
            text = str(exc) if str(exc).endswith(('.', '?')) else f'{exc}.'
            raise Fault(503, f'{text} Nothing was started; try again later.',
                        {'Retry-After': str(RETRY_AFTER_S)}) from None
        self.engine_api.job_created(ctxt, job.id)
        url = _url(self.conf, req)
        return _json(202, {'group_migration': views.detail(job, job.members, url)},
                     {'Location': f'{url}{views.BASE}/{job.id}'})

    def index(self, req, ctxt):
        self._authorize(ctxt, 'list')
        unknown = set(req.GET) - LIST_FILTERS
        if unknown:
            raise Fault(400, f'Unknown query parameter(s): {", ".join(sorted(unknown))}; '
                             f'known: {", ".join(sorted(LIST_FILTERS))}.')
        repeated = sorted(k for k in LIST_FILTERS if len(req.GET.getall(k)) > 1)
        if repeated:
            raise Fault(400, f'Query parameter(s) given more than once: '
                             f'{", ".join(repeated)}.')
        status = req.GET.get('status')
        if status is not None and status not in states.JOB_STATUSES:
            raise Fault(400, f'Invalid status {status}; choose one of: '
                             f'{", ".join(states.JOB_STATUSES)}.')
        group = req.GET.get('group')
        if group is not None:
            try:
                group = self.backend.find_group(group).id
            except (exception.GroupNotFound, exception.InvalidTarget,
                    exception.CloudUnavailable):
                pass  # a group that no longer exists (or is empty) may still have old jobs,
                # and the jobs are in the database: a list needs no cloud
        limit = _limit(req.GET.get('limit'))
        marker = req.GET.get('marker')
        try:
            self._authorize(ctxt, 'list:all_projects')
            project = None
        except exception.Forbidden:
            project = ctxt.project_id or ''  # only the caller's project's (none: nothing)
        try:
            found = db.list_jobs(ctxt, status=status, server_group_id=group, limit=limit,
                                 marker=marker, project_id=project)
        except exception.JobNotFound:
            raise Fault(400, f'Invalid marker {marker}: no such migration.') from None
        url = _url(self.conf, req)
        body = {'group_migrations': [views.summary(j, url) for j in found]}
        if limit is not None and len(found) == limit:
            # OpenStack's way: a link to the next page, after the last one shown
            query = dict(req.GET, marker=found[-1].id)
            body['group_migrations_links'] = [{
                'rel': 'next',
                'href': f'{url}{views.BASE}?{urllib.parse.urlencode(query)}'}]
        return _json(200, body)

    def show(self, req, ctxt, job_id):
        job = _get(ctxt, job_id)
        self._authorize(ctxt, 'show', job)
        return _json(200, {'group_migration': views.detail(job, job.members,
                                                        _url(self.conf, req))})

    def events(self, req, ctxt, job_id):
        job = _get(ctxt, job_id)
        self._authorize(ctxt, 'show', job)
        names = {m.id: m.name for m in job.members}
        return _json(200, {'events': [views.event(e, names)
                                      for e in db.list_events(ctxt, job_id)]})

    def abort(self, req, ctxt, job_id):
        self._authorize(ctxt, 'abort', _get(ctxt, job_id))
        job = coordination.request_abort(ctxt, job_id, by=ctxt.user_id)
        return _json(202, {'group_migration': views.detail(job, job.members,
                                                        _url(self.conf, req))})


def _url(conf, req):
    """Where the API is for the caller: ``[api] public_endpoint``, or else the request's URL.

    The request's URL is built from its Host header, which any client sets (or,
    with ``[oslo_middleware] enable_proxy_headers_parsing``, from the
    X-Forwarded-* headers of the proxy in front).
    """
    return (conf.api.public_endpoint or req.application_url).rstrip('/')


def _limit(text):
    if text is None:
        return None
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise Fault(400, f'Invalid limit {text}: give a whole number from 1 to {MAX_LIMIT}.')
    return limit


def policies_name(action):
    return f'slm:group_migration:{action}'


def _get(ctxt, job_id):
    return db.get_job(ctxt, job_id)


MAX_DEPTH = 32  # a request is 4 levels deep; JSON nested deeper is not ours


class _DuplicateKey(ValueError):
    pass


def _object(pairs):
    """json's object_pairs_hook: a dict, refusing a key given twice (RFC 8259 leaves it open)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _too_deep(value) -> bool:
    """Whether value nests more than MAX_DEPTH levels; iterative, so any depth is fine."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else (
            item if isinstance(item, list) else ())
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False


def content_length(environ):
    """The request's Content-Length as a number, None without one; Fault 400 if it is not one.

    webob takes ``-1`` (or ``+5``) for a number and reads ``-1`` as "until the
    client closes", which a client keeping the connection open makes a hang.
    """
    text = environ.get('CONTENT_LENGTH')
    if text is None or text == '':
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise Fault(400, f'Invalid Content-Length {text[:40]!r}: give the length of the '
                         'body in bytes, a whole number.')
    return int(text)


def _body(req, limit):
    length = content_length(req.environ)
    if length is not None and length > limit:
        raise Fault(413, f'Request body larger than {limit} bytes.')
    try:
        raw = req.body_file.read(limit + 1)
    except webob.request.DisconnectionError:
        raise Fault(400, 'The request body ended before its Content-Length.') from None
    except OSError as exc:  # the server's: socket.timeout here, OSError under uWSGI, mod_wsgi
        if isinstance(exc, TimeoutError) or 'timeout' in str(exc).lower():
            raise Fault(408, 'The request body did not arrive in time.') from None
        raise Fault(400, f'The request body could not be read: {exc}.') from None
    if len(raw) > limit:
        raise Fault(413, f'Request body larger than {limit} bytes.')
    if not raw.strip():
        raise Fault(400, 'Malformed request body: it is empty; send a JSON object.')
    if req.content_type not in ('application/json', ''):
        raise Fault(415, f'Unsupported content type {req.content_type}; send '
                         'application/json.')
    try:
        body = json.loads(raw, object_pairs_hook=_object)
    except _DuplicateKey as exc:
        raise Fault(400, f'Malformed request body: the key {exc.args[0]!r} is given more '
                         'than once in an object.') from None
    except RecursionError:
        body = too_deep = True  # deeper than the decoder goes: far deeper than MAX_DEPTH
    except (ValueError, UnicodeDecodeError) as exc:
        raise Fault(400, f'Malformed request body: not JSON ({exc}).') from None
    else:
        too_deep = _too_deep(body)
    if too_deep:
        raise Fault(400, f'Malformed request body: JSON nested deeper than {MAX_DEPTH} '
                         'levels.')
    return body


class Router:
    """Dispatch on method and path; turn faults and surprises into JSON errors."""

    METHODS = ('GET', 'POST')

    def __init__(self, controller: GroupMigrations, db_manager):
        self.controller = controller
        self.db_manager = db_manager
        m = self.mapper = routes.Mapper()
        base = views.BASE
        for path, method, action in (
                ('/', 'GET', 'versions'),
                ('/v1', 'GET', 'version'),
                (base, 'GET', 'index'),
                (base, 'POST', 'create'),
                (base + '/{job_id}', 'GET', 'show'),
                (base + '/{job_id}/events', 'GET', 'events'),
                (base + '/{job_id}/abort', 'POST', 'abort')):
            m.connect(None, path, action=action, conditions={'method': [method]})
        self.paths = routes.Mapper()
        for path in ('/', '/v1', base, base + '/{job_id}', base + '/{job_id}/events',
                     base + '/{job_id}/abort'):
            self.paths.connect(None, path, action='any')

    def allowed(self, path) -> str:
        """The Allow header of path: its methods, HEAD with GET, and OPTIONS."""
        methods = [m for m in self.METHODS
                   if self.mapper.match(path, environ={'REQUEST_METHOD': m}) is not None]
        if 'GET' in methods:
            methods.append('HEAD')
        return ', '.join(methods + ['OPTIONS'])

    @webob.dec.wsgify
    def __call__(self, req):
        # webob decodes the path and the query string as UTF-8 when first asked, and
        # raises on a percent-escape that is not: refuse those before anything reads them
        try:
            path = req.path_info.rstrip('/') or '/'
        except UnicodeDecodeError:
            return error_response(400, 'Malformed request: the path is not UTF-8 once '
                                       'percent-decoded.')
        try:
            _ = req.GET
        except UnicodeDecodeError:
            return error_response(400, 'Malformed request: the query string is not UTF-8 '
                                       'once percent-decoded.')
        try:
            content_length(req.environ)
        except Fault as fault:
            return error_response(fault.code, fault.message, fault.headers)
        method = 'GET' if req.method == 'HEAD' else req.method  # webob drops HEAD's body
        match = self.mapper.match(path, environ=dict(req.environ, PATH_INFO=path,
                                                     REQUEST_METHOD=method))
        if match is None:
            if self.paths.match(path) is None:
                return error_response(404, f'No resource at {path}.')
            allow = {'Allow': self.allowed(path)}
            if req.method == 'OPTIONS':
                response = webob.Response(status=204, headers=allow)
                del response.content_type
                return response
            return error_response(405, f'Method {req.method} is not allowed on {path}; '
                                       f'allowed: {allow["Allow"]}.', allow)
        action = match.pop('action')
        try:
            if action == 'versions':
                return _json(200, {'versions': [VERSION]})
            if action == 'version':
                return _json(200, {'version': VERSION})
            ctxt = slm_context.RequestContext.from_environ(req.environ,
                                                           db_connection=self.db_manager)
            return getattr(self.controller, action)(req, ctxt, **match)
        except exception.SLMException as exc:
            if exc.code >= 500 and exc.code not in (502, 503):
                LOG.exception('Error answering %s %s', req.method, path)
                return error_response(500, 'The server could not answer; the error is in '
                                           'its log.')
            return error_response(exc.code, str(exc), getattr(exc, 'headers', None))
        except Exception:
            LOG.exception('Unexpected error answering %s %s', req.method, path)
            return error_response(500, 'The server could not answer; the error is in its log.')


class NoAuth:
    """``[api] auth_strategy = noauth``: trust the identity headers, defaulting to an admin.

    The headers are those keystonemiddleware would set from a token, so tests
    can act as any user: ``X-Roles: member`` is a non-administrator.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ.setdefault('HTTP_X_USER_ID', 'noauth-user')
        environ.setdefault('HTTP_X_PROJECT_ID', 'noauth-project')
        environ.setdefault('HTTP_X_ROLES', 'admin')
        environ['HTTP_X_IDENTITY_STATUS'] = 'Confirmed'
        return self.app(environ, start_response)


def _unversioned(app, auth):
    """Leave the version documents open, as OpenStack APIs do, and OPTIONS, which only
    lists methods; the rest goes through auth."""
    def pick(environ, start_response):
        method = environ.get('REQUEST_METHOD')
        if method == 'OPTIONS' or (method in ('GET', 'HEAD') and
                                   environ.get('PATH_INFO', '/').rstrip('/') in ('', '/v1')):
            return app(environ, start_response)
        return auth(environ, start_response)
    return pick


def build_app(conf, backend=None, engine_api=None, db_manager=None, enforcer=None):
    """The WSGI application for conf; the arguments replace what it would build itself."""
    from slm_plugin.db.manager import database_manager
    from slm_plugin.engine.rpcapi import EngineAPI

    backend = backend or backends.load(conf)
    engine_api = engine_api or EngineAPI(conf)
    db_manager = db_manager or database_manager(conf)
    enforcer = enforcer or policy.enforcer(conf)
    router = Router(GroupMigrations(conf, backend, engine_api, enforcer), db_manager)
    if conf.api.auth_strategy == 'noauth':
        authed = NoAuth(router)
    else:
        from keystonemiddleware import auth_token
        authed = auth_token.AuthProtocol(router, {'oslo_config_config': conf})
    # outermost: behind a proxy that says so ([oslo_middleware]
    # enable_proxy_headers_parsing), the URL the client used, from X-Forwarded-*
    return http_proxy_to_wsgi.HTTPProxyToWSGI(
        request_id.RequestId(_unversioned(router, authed)), conf)
