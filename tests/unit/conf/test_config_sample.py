"""The committed sample configuration file must match the options in the code."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
GENERATOR_CONF = ROOT / 'etc' / 'slm' / 'slm-config-generator.conf'
SAMPLE = ROOT / 'etc' / 'slm' / 'slm.conf.sample'
REGENERATE = '.venv/bin/oslo-config-generator --config-file etc/slm/slm-config-generator.conf'


def test_sample_config_is_up_to_date(tmp_path):
    generated = tmp_path / 'slm.conf.sample'
    # A separate process, as the console script would be: the generator changes
    # option defaults globally while it loads the namespaces.
    result = subprocess.run(
        [sys.executable, '-c', 'from oslo_config.generator import main; main()',
         '--config-file', str(GENERATOR_CONF), '--output-file', str(generated)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, f'oslo-config-generator failed:\n{result.stderr}'
    assert generated.read_text() == SAMPLE.read_text(), (
        f'{SAMPLE.relative_to(ROOT)} is out of date with the options in the code; '
        f'regenerate it from the repository root with:\n    {REGENERATE}'
    )
