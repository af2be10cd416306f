# Sphinx configuration of the slm_plugin documentation.
#
# Build (tools/test.sh runs exactly this; warnings are errors):
#   .venv/bin/sphinx-build -q -W --keep-going -b html doc/source doc/build/html
#
# The theme is openstackdocstheme, as in other OpenStack projects. It reads the
# commit and the pages' dates from git, so build from a git checkout.

import warnings
from importlib import metadata

# Importing the option modules pulls in oslo.service, which imports eventlet;
# its deprecation notice says nothing about the documentation.
warnings.filterwarnings('ignore', message='\\s*Eventlet is deprecated')

project = 'slm-plugin'
copyright = '2025, slm_plugin developers'

# The version of the installed package; the theme would warn (an error under
# -W) where the package is not installed, so it is read here instead.
try:
    release = metadata.version('slm-plugin')
except metadata.PackageNotFoundError:
    release = ''
version = release

extensions = [
    'sphinx.ext.autodoc',
    'openstackdocstheme',
    # show-options renders the options of a generator namespace; the sample
    # file is generated at build time from the same generator config.
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    # show-policy renders the policy rules; the sample policy file likewise.
    'oslo_policy.sphinxext',
    'oslo_policy.sphinxpolicygen',
    # autoprogram-cliff renders the openstack client's SLM commands
    'cliff.sphinxext',
]

# Both samples are written into _static at every build (ignored by git there)
# and shown with literalinclude.
config_generator_config_file = '../../etc/slm/slm-config-generator.conf'
sample_config_basename = '_static/slm'
policy_generator_config_file = '../../etc/slm/slm-policy-generator.conf'
sample_policy_basename = '_static/slm'

# the commands are those of the installed package's openstack.slm.v1 entry
# points; the output format options every openstack command has are left out
autoprogram_cliff_application = 'openstack'
autoprogram_cliff_ignored = [
    '--help', '--format', '--column', '--noindent', '--prefix', '--max-width',
    '--fit-width', '--print-empty', '--quote', '--sort-column', '--sort-ascending',
    '--sort-descending',
]

# openstackdocstheme
openstackdocs_repo_name = 'openstack/slm-plugin'
openstackdocs_auto_name = False
openstackdocs_auto_version = False

source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'
exclude_patterns = []
pygments_style = 'native'
# keep -- in option names and quotes in commands as typed
smartquotes = False
html_theme = 'openstackdocs'
html_static_path = ['_static']
