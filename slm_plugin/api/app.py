"""The WSGI application of slm-api: routes, the group migrations resource, errors as JSON.

Resources (every response and error body is JSON)::

    GET  /                                        versions
    GET  /v1                                      this version
    POST /v1/group-migrations                     start (202) or plan (dry run, 200)
    GET  /v1/group-migrations[?status=&group=]    list, oldest first
    GET  /v1/group-migrations/{id}                plan, members' progress, switchover
    GET  /v1/group-migrations/{id}/events         the job's story
    POST /v1/group-migrations/{id}/abort          abort (202)

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
from oslo_log import log as logging
from oslo_middleware import request_id

from slm_plugin import context as slm_context
from slm_plugin import planning
from slm_plugin.api import policy, schemas, views
from slm_plugin.db import api as db
from slm_plugin.db import coordination, exception, states
from slm_plugin.engine import clouds, jobs
from slm_plugin.planning.plan import PlanError

LOG = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
VERSION = {'id': 'v1', 'status': 'CURRENT', 'links': [{'rel': 'self', 'href': '/v1'}]}
LIST_FILTERS = {'status', 'group', 'limit', 'marker'}
MAX_LIMIT = 1000


class Fault(Exception):
    """An error answer: status code and message."""

    def __init__(self, code: int, message: str, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
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

    def __init__(self, conf, driver, engine_api, enforcer):
        self.conf = conf
        self.driver = driver
        self.engine_api = engine_api
        self.enforcer = enforcer
        self.schema = schemas.create(planning.names())

    def _authorize(self, ctxt, action):
        policy.authorize(self.enforcer, ctxt, policies_name(action))

    def create(self, req, ctxt):
        self._authorize(ctxt, 'create')
        body = _body(req)
        try:
            schemas.validate(self.schema, body)
        except schemas.ValidationError as exc:
            raise Fault(400, str(exc)) from None
        request = body['group_migration']
        try:
            if (request.get('options') or {}).get('dry_run'):
                result = jobs.dry_run(self.conf, self.driver, request)
                group = result['group']
                return _json(200, {'group_migration': {
                    'dry_run': True, 'group': {'id': group.id, 'name': group.name},
                    'strategy': result['strategy'], 'target': result['target'],
                    'options': result['options'], 'plan': result['plan']}})
            job = jobs.submit(ctxt, self.conf, self.driver, request, requested_by='api',
                              reason=request.get('reason'))
        except clouds.GroupNotFound as exc:
            raise Fault(404, str(exc)) from None
        except clouds.MembersBusy as exc:
            raise Fault(409, str(exc)) from None
        except (clouds.InvalidTarget, jobs.UnknownStrategy, PlanError) as exc:
            raise Fault(400, str(exc)) from None
        except coordination.JobConflict as exc:
            raise Fault(409, str(exc)) from None
        self.engine_api.job_created(ctxt, job.id)
        location = f'{req.application_url}{views.BASE}/{job.id}'
        return _json(202, {'group_migration': views.detail(job, job.members, req.application_url)},
                     {'Location': location})

    def index(self, req, ctxt):
        self._authorize(ctxt, 'list')
        unknown = set(req.GET) - LIST_FILTERS
        if unknown:
            raise Fault(400, f'Unknown query parameter(s): {", ".join(sorted(unknown))}; '
                             f'known: {", ".join(sorted(LIST_FILTERS))}.')
        status = req.GET.get('status')
        if status is not None and status not in states.JOB_STATUSES:
            raise Fault(400, f'Invalid status {status}; choose one of: '
                             f'{", ".join(states.JOB_STATUSES)}.')
        group = req.GET.get('group')
        if group is not None:
            try:
                group = self.driver.find_group(group).id
            except (clouds.GroupNotFound, clouds.InvalidTarget):
                pass  # a group that no longer exists (or is empty) may still have old jobs
        limit = _limit(req.GET.get('limit'))
        marker = req.GET.get('marker')
        try:
            found = db.list_jobs(ctxt, status=status, server_group_id=group, limit=limit,
                                 marker=marker)
        except exception.JobNotFound:
            raise Fault(400, f'Invalid marker {marker}: no such migration.') from None
        body = {'group_migrations': [views.summary(j, req.application_url) for j in found]}
        if limit is not None and len(found) == limit:
            # OpenStack's way: a link to the next page, after the last one shown
            query = dict(req.GET, marker=found[-1].id)
            body['group_migrations_links'] = [{
                'rel': 'next',
                'href': f'{req.application_url}{views.BASE}?{urllib.parse.urlencode(query)}'}]
        return _json(200, body)

    def show(self, req, ctxt, job_id):
        self._authorize(ctxt, 'show')
        job = _get(ctxt, job_id)
        return _json(200, {'group_migration': views.detail(job, job.members, req.application_url)})

    def events(self, req, ctxt, job_id):
        self._authorize(ctxt, 'show')
        job = _get(ctxt, job_id)
        names = {m.id: m.name for m in job.members}
        return _json(200, {'events': [views.event(e, names)
                                      for e in db.list_events(ctxt, job_id)]})

    def abort(self, req, ctxt, job_id):
        self._authorize(ctxt, 'abort')
        try:
            job = coordination.request_abort(ctxt, job_id, by=ctxt.user_id)
        except exception.JobNotFound as exc:
            raise Fault(404, str(exc)) from None
        except coordination.JobFinished as exc:
            raise Fault(409, str(exc)) from None
        return _json(202, {'group_migration': views.detail(job, job.members, req.application_url)})


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
    try:
        return db.get_job(ctxt, job_id)
    except exception.JobNotFound as exc:
        raise Fault(404, str(exc)) from None


def _body(req):
    if req.content_length is not None and req.content_length > MAX_BODY:
        raise Fault(413, f'Request body larger than {MAX_BODY} bytes.')
    raw = req.body_file.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Fault(413, f'Request body larger than {MAX_BODY} bytes.')
    if not raw.strip():
        raise Fault(400, 'Malformed request body: it is empty; send a JSON object.')
    if req.content_type not in ('application/json', ''):
        raise Fault(415, f'Unsupported content type {req.content_type}; send '
                         'application/json.')
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Fault(400, f'Malformed request body: not JSON ({exc}).') from None


class Router:
    """Dispatch on method and path; turn faults and surprises into JSON errors."""

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

    @webob.dec.wsgify
    def __call__(self, req):
        path = req.path_info.rstrip('/') or '/'
        match = self.mapper.match(path, environ=dict(req.environ, PATH_INFO=path))
        if match is None:
            if self.paths.match(path) is not None:
                return error_response(405, f'Method {req.method} is not allowed on {path}.')
            return error_response(404, f'No resource at {path}.')
        action = match.pop('action')
        try:
            if action == 'versions':
                return _json(200, {'versions': [VERSION]})
            if action == 'version':
                return _json(200, {'version': VERSION})
            ctxt = slm_context.RequestContext.from_environ(req.environ,
                                                           db_connection=self.db_manager)
            return getattr(self.controller, action)(req, ctxt, **match)
        except Fault as fault:
            return error_response(fault.code, fault.message, fault.headers)
        except policy.Forbidden as exc:
            return error_response(403, str(exc))
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
    """Leave the version documents open, as OpenStack APIs do; the rest goes through auth."""
    def pick(environ, start_response):
        if environ.get('PATH_INFO', '/').rstrip('/') in ('', '/v1') and \
                environ.get('REQUEST_METHOD') == 'GET':
            return app(environ, start_response)
        return auth(environ, start_response)
    return pick


def build_app(conf, driver=None, engine_api=None, db_manager=None, enforcer=None):
    """The WSGI application for conf; the arguments replace what it would build itself."""
    from slm_plugin.engine.rpcapi import EngineAPI
    from slm_plugin.engine.service import database_manager

    driver = driver or clouds.load(conf)
    engine_api = engine_api or EngineAPI(conf)
    db_manager = db_manager or database_manager(conf)
    enforcer = enforcer or policy.enforcer(conf)
    router = Router(GroupMigrations(conf, driver, engine_api, enforcer), db_manager)
    if conf.api.auth_strategy == 'noauth':
        authed = NoAuth(router)
    else:
        from keystonemiddleware import auth_token
        authed = auth_token.AuthProtocol(router, {'oslo_config_config': conf})
    return request_id.RequestId(_unversioned(router, authed))
