"""The house rules of the package layout, checked on the source itself.

The pure core (``model``, ``scenario``, ``control``, ``planning``, ``simulation``)
takes data and returns data: it imports no OpenStack, libvirt, database or web
library and nothing of the shell around it. It may raise the project's exceptions
(``slm_plugin.exception``, which imports nothing) and load its plugins with
stevedore (``slm_plugin.loader``).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import slm_plugin

PACKAGE = pathlib.Path(slm_plugin.__file__).parent
CORE = ('model', 'scenario', 'control', 'planning', 'simulation')
ALLOWED_OWN = {'slm_plugin.exception', 'slm_plugin.loader'} | {f'slm_plugin.{p}' for p in CORE}
FORBIDDEN_LIBRARIES = ('oslo_', 'openstack', 'keystoneauth1', 'keystonemiddleware', 'libvirt',
                       'sqlalchemy', 'alembic', 'webob', 'routes', 'novaclient', 'osc_lib',
                       'tenacity', 'eventlet', 'stevedore')
STEVEDORE_ALLOWED = {'slm_plugin/loader.py'}


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split('.')[0] == 'slm_plugin':
                for alias in node.names:
                    yield node.lineno, f'{node.module}.{alias.name}'
            else:
                yield node.lineno, node.module


def _offences(path: pathlib.Path, relative: str):
    for line, name in _imports(path):
        top = name.split('.')[0]
        if top == 'slm_plugin':
            own = '.'.join(name.split('.')[:2])
            if own not in ALLOWED_OWN:
                yield f'{relative}:{line} imports the shell module {name}'
        elif any(top.lower().startswith(lib) for lib in FORBIDDEN_LIBRARIES):
            if top == 'stevedore' and relative in STEVEDORE_ALLOWED:
                continue
            yield f'{relative}:{line} imports the library {name}'


def core_files():
    for package in CORE:
        yield from sorted((PACKAGE / package).rglob('*.py'))
    yield PACKAGE / 'exception.py'
    yield PACKAGE / 'loader.py'


def test_the_core_imports_no_shell_and_no_outside_library():
    offences = []
    for path in core_files():
        offences.extend(_offences(path, str(path.relative_to(PACKAGE.parent))))
    assert not offences, '\n'.join(offences)


def test_the_rule_catches_an_offending_import(tmp_path):
    """The check is not vacuous: a core module importing a shell or an outside library fails."""
    bad = tmp_path / 'bad.py'
    bad.write_text('import libvirt\nfrom oslo_log import log\nfrom slm_plugin.nova import cloud\n'
                   'from slm_plugin import engine\nfrom slm_plugin.model import precopy\n')
    found = list(_offences(bad, 'slm_plugin/planning/bad.py'))
    assert len(found) == 4, found
    assert any('libvirt' in f for f in found) and any('slm_plugin.engine' in f for f in found)


@pytest.mark.parametrize('package', CORE)
def test_every_core_package_exists(package):
    assert (PACKAGE / package / '__init__.py').exists()


def test_one_room_per_outside_system():
    """Only the Nova room imports openstacksdk; only the agent room imports libvirt."""
    rooms = {'openstack': ('nova/', 'osc/', 'common/retry.py'), 'libvirt': ('agent/',)}
    offences = []
    for path in sorted(PACKAGE.rglob('*.py')):
        relative = str(path.relative_to(PACKAGE))
        for line, name in _imports(path):
            top = name.split('.')[0]
            allowed = rooms.get(top)
            if allowed is not None and not relative.startswith(allowed):
                offences.append(f'{relative}:{line} imports {name}')
    assert not offences, '\n'.join(offences)


# Within the core, each layer imports only the layers below it (or its own).
RANKS = {'model': 0, 'scenario': 1, 'control.cloud': 2, 'planning': 3, 'control.loop': 4,
         'control': 4, 'simulation': 5}


def _rank(module: str) -> int | None:
    parts = module.split('.')[1:]
    for length in (2, 1):
        key = '.'.join(parts[:length])
        if key in RANKS:
            return RANKS[key]
    return None


def test_the_core_layers_import_only_downwards():
    offences = []
    for path in core_files():
        relative = path.relative_to(PACKAGE.parent).with_suffix('')
        module = '.'.join(relative.parts)
        if module.endswith('.__init__'):
            module = module[:-len('.__init__')]
        mine = _rank(module)
        if mine is None:
            continue
        for line, name in _imports(path):
            theirs = _rank(name) if name.startswith('slm_plugin.') else None
            if theirs is not None and theirs > mine:
                offences.append(f'{module}:{line} imports {name}, a layer above it')
    assert not offences, '\n'.join(offences)


def test_the_unit_tests_mirror_the_package():
    """Every folder of tests/unit is a package of slm_plugin, and no test lies at the top."""
    here = pathlib.Path(__file__).parent
    folders = [p for p in here.iterdir() if p.is_dir() and p.name != '__pycache__']
    assert folders
    for folder in folders:
        assert (PACKAGE / folder.name).is_dir(), f'tests/unit/{folder.name} mirrors nothing'
    # the two house-rule tests (this one, and the test suite's own timeouts) stay here
    stray = [p.name for p in here.glob('test_*.py')
             if p.name not in ('test_layout.py', 'test_test_timeouts.py')]
    assert not stray, f'put these in the folder of the package they test: {stray}'
