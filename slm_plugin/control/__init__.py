"""The control loop and the vocabulary it shares with the planners and the clouds.

Part of the pure core (with ``model``, ``scenario``, ``planning`` and ``simulation``):
``cloud`` says what the loop drives (the :class:`~slm_plugin.control.cloud.Cloud`
protocol, the member statuses, :class:`~slm_plugin.control.cloud.Progress`), ``loop``
runs a plan against any Cloud one tick at a time.
"""
