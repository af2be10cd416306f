# Sphinx configuration of the slm_plugin documentation.
#
# Build, with sphinx installed next to the package (it is not a requirement):
#   .venv/bin/sphinx-build -W -b html doc/source doc/build/html

project = 'slm_plugin'
copyright = '2025, slm_plugin developers'

extensions = [
    'sphinx.ext.autodoc',
    # Renders the options of a generator namespace (show-options) and a
    # sample file (generated at build time from the same generator config).
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
]

config_generator_config_file = '../../etc/slm/slm-config-generator.conf'
sample_config_basename = '_static/slm'

source_suffix = '.rst'
master_doc = 'index'
exclude_patterns = []
pygments_style = 'sphinx'
html_theme = 'alabaster'
html_static_path = ['_static']
