"""The service commands are installed, and the WSGI entry point builds the application."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent


@pytest.mark.parametrize('command', ['slm-api', 'slm-engine', 'slm-sim-cloud'])
def test_the_service_commands_are_installed(command):
    result = subprocess.run([str(BIN / command), '--help'], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '--config-file' in result.stdout


def test_the_wsgi_entry_point_serves_the_api(tmp_path):
    conf = tmp_path / 'slm.conf'
    conf.write_text(
        '[DEFAULT]\ntransport_url = fake://\n'
        f'[database]\nconnection = sqlite:///{tmp_path / "slm.sqlite"}\n'
        '[api]\nauth_strategy = noauth\n'
        f'[engine]\nscenario = {ROOT / "tests" / "functional" / "data" / "two-groups.yaml"}\n')
    script = (
        'import webob\n'
        'from slm_plugin.api.wsgi import init_application\n'
        'app = init_application()\n'
        'r = webob.Request.blank("/v1").get_response(app)\n'
        'print(r.status_int, r.json["version"]["id"])\n')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=60, check=False, cwd=tmp_path,
                            env={'SLM_CONFIG_FILES': str(conf), 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == '200 v1'
