"""Console scripts of slm_plugin."""
