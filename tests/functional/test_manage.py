"""slm-manage db, run as the installed console script, on SQLite and MariaDB."""

import pathlib
import subprocess
import sys

import pytest

from slm_plugin.db import migration

pytestmark = [pytest.mark.functional, pytest.mark.timeout(180)]

SLM_MANAGE = pathlib.Path(sys.executable).parent / 'slm-manage'
SLM_TABLES = {'jobs', 'job_members', 'job_events'}


@pytest.fixture
def manage(db_url, tmp_path):
    """Run slm-manage with a config file whose [database] connection is db_url."""
    if not SLM_MANAGE.exists():
        pytest.fail(f'{SLM_MANAGE} is missing; install the package: '
                    '.venv/bin/pip install --no-deps -e .', pytrace=False)
    config = tmp_path / 'slm.conf'
    config.write_text(f'[database]\nconnection = {db_url}\n')

    def _manage(*args):
        return subprocess.run(
            [str(SLM_MANAGE), '--config-file', str(config), *args],
            capture_output=True, text=True, timeout=120, check=False)

    return _manage


def test_db_upgrade_version_downgrade(manage, db_url):
    result = manage('db', 'version')
    assert (result.returncode, result.stdout) == (0, 'base\n'), result.stderr

    result = manage('db', 'upgrade')
    assert result.returncode == 0, result.stderr
    assert f'Database schema is at {migration.head()}.' in result.stdout
    assert SLM_TABLES <= migration.table_names(db_url)
    assert manage('db', 'version').stdout == f'{migration.head()}\n'

    # Going down drops tables, so the target has to be named.
    result = manage('db', 'downgrade')
    assert result.returncode != 0
    assert 'revision' in result.stderr
    assert SLM_TABLES <= migration.table_names(db_url)

    result = manage('db', 'downgrade', 'base')
    assert result.returncode == 0, result.stderr
    assert not SLM_TABLES & migration.table_names(db_url)
    assert manage('db', 'version').stdout == 'base\n'
