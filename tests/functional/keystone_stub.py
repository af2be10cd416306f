"""A stand-in for Keystone on loopback, because no Keystone runs on the test machine.

It answers only what its two real clients ask of Keystone v3: the
``openstack`` command (version discovery, ``POST /v3/auth/tokens`` with a
password) and slm-api's keystonemiddleware (the same for its service user,
then ``GET /v3/auth/tokens`` to validate a caller's token). The tokens are
keystoneauth1's own fixture (``fixture.V3Token``), so their roles and
service catalog are the real format; nothing else of Keystone is here.
"""

from __future__ import annotations

import json
import threading
import uuid

import webob
import webob.dec
from keystoneauth1 import fixture

from slm_plugin.cmd.api import make_server

REGION = 'RegionOne'
DOMAIN = {'id': 'default', 'name': 'Default'}


class KeystoneStub:
    """Users with a password and roles in a project; a catalog; tokens it has issued."""

    def __init__(self):
        self.users: dict[str, dict] = {}
        self.catalog: dict[str, str] = {}  # service type -> URL of every interface
        self.tokens: dict[str, dict] = {}
        self.issued: list[str] = []  # the user of each token issued, in order
        self._lock = threading.Lock()
        self._server = make_server(self.app, '127.0.0.1', 0)
        self.port = self._server.server_address[1]
        self.url = f'http://127.0.0.1:{self.port}/v3'
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name='keystone-stub', daemon=True)
        self.register('identity', self.url)

    def add_user(self, name: str, password: str, roles, project: str = 'ops'):
        self.users[name] = {'password': password, 'roles': list(roles), 'project': project}

    def register(self, service_type: str, url: str):
        self.catalog[service_type] = url

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def authtoken_options(self, user: str, password: str) -> dict:
        """keystonemiddleware's ``[keystone_authtoken]`` for a service user of this Keystone."""
        return {'www_authenticate_uri': self.url, 'auth_url': self.url,
                'auth_type': 'password', 'username': user, 'password': password,
                'project_name': self.users[user]['project'], 'user_domain_name': 'Default',
                'project_domain_name': 'Default', 'region_name': REGION,
                'interface': 'public'}

    # -- Keystone v3, the little of it that is used ------------------------------------

    def issue(self, name: str) -> tuple[str, dict]:
        """A new token of the user: its id and body."""
        user = self.users[name]
        token = fixture.V3Token(user_id=f'{name}-id', user_name=name,
                                user_domain_id=DOMAIN['id'], user_domain_name=DOMAIN['name'],
                                project_id=f"{user['project']}-id",
                                project_name=user['project'],
                                project_domain_id=DOMAIN['id'],
                                project_domain_name=DOMAIN['name'], methods=['password'])
        for role in user['roles']:
            token.add_role(name=role, id=f'{role}-id')
        for service_type, url in self.catalog.items():
            service = token.add_service(service_type, name=service_type)
            service.add_standard_endpoints(public=url, internal=url, admin=url, region=REGION)
        token_id = uuid.uuid4().hex
        with self._lock:
            self.tokens[token_id] = dict(token)
            self.issued.append(name)
        return token_id, dict(token)

    @staticmethod
    def _json(status: int, body, headers=None) -> webob.Response:
        response = webob.Response(status=status, content_type='application/json',
                                  charset='utf-8', headers=headers or {})
        response.text = json.dumps(body)
        return response

    def _error(self, status: int, message: str) -> webob.Response:
        return self._json(status, {'error': {'code': status, 'message': message}})

    def _authenticate(self, req) -> webob.Response:
        try:
            identity = json.loads(req.body)['auth']['identity']
            user = identity['password']['user']
            name, password = user['name'], user['password']
        except (ValueError, KeyError, TypeError):
            return self._error(400, 'Only password authentication with a user name is here.')
        if self.users.get(name, {}).get('password') != password:
            return self._error(401, 'The request you have made requires authentication.')
        token_id, body = self.issue(name)
        return self._json(201, body, {'X-Subject-Token': token_id})

    def _validate(self, req) -> webob.Response:
        with self._lock:
            caller = self.tokens.get(req.headers.get('X-Auth-Token', ''))
            subject = self.tokens.get(req.headers.get('X-Subject-Token', ''))
        if caller is None:
            return self._error(401, 'The request you have made requires authentication.')
        if subject is None:
            return self._error(404, 'Could not find token.')
        return self._json(200, subject, {'X-Subject-Token': req.headers['X-Subject-Token']})

    @webob.dec.wsgify
    def app(self, req):
        path = req.path_info.rstrip('/')
        version = fixture.V3Discovery(self.url)
        if path == '' and req.method == 'GET':
            return self._json(300, {'versions': {'values': [version]}})
        if path == '/v3' and req.method == 'GET':
            return self._json(200, {'version': version})
        if path == '/v3/auth/tokens' and req.method == 'POST':
            return self._authenticate(req)
        if path == '/v3/auth/tokens' and req.method in ('GET', 'HEAD'):
            return self._validate(req)
        return self._error(404, f'Not in this Keystone stand-in: {req.method} {path}')
