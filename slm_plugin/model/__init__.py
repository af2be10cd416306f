"""Pure pre-copy live-migration model: one VM, any bandwidth, any mid-migration state."""

from slm_plugin.model.precopy import (
    VM,
    CompletionPolicy,
    MigrationState,
    Prediction,
    advance,
    bandwidth_for_deadline,
    force_complete,
    predict,
    start,
)

__all__ = [
    'VM',
    'CompletionPolicy',
    'MigrationState',
    'Prediction',
    'advance',
    'bandwidth_for_deadline',
    'force_complete',
    'predict',
    'start',
]
