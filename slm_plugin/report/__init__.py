"""Reports on simulated runs: a timeline figure and a comparison table."""

from slm_plugin.report.timeline import build_figure, format_comparison, write_timeline

__all__ = ['build_figure', 'format_comparison', 'write_timeline']
