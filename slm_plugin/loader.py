"""One way to load plugins: a stevedore namespace, by name, with a clear error.

Every entry-point namespace of the project (``slm_plugin.planners``,
``slm_plugin.clouds``) is loaded through a :class:`Loader`, in the manner of
Watcher's ``watcher.common.loader.default.DefaultLoader``. The module imports only
stevedore and the project's exceptions, so the pure core may load its plugins with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stevedore import driver, extension

from slm_plugin import exception


class Loader:
    """The plugins of one namespace.

    ``unknown(name, known)`` builds the error for a name nobody installed: each
    namespace words it for the option or field its users set.
    """

    def __init__(self, namespace: str,
                 unknown: Callable[[str, Sequence[str]], exception.SLMException]):
        self.namespace = namespace
        self._unknown = unknown

    def names(self) -> list[str]:
        """Every installed plugin's name, sorted."""
        return sorted(extension.ExtensionManager(self.namespace).names())

    def check(self, name: str) -> None:
        """Raise the namespace's error unless a plugin of that name is installed."""
        known = self.names()
        if name not in known:
            raise self._unknown(name, known)

    def load(self, name: str, *args, **kwargs):
        """An instance of plugin ``name``, built with ``args`` and ``kwargs``."""
        self.check(name)
        return driver.DriverManager(self.namespace, name, invoke_on_load=True,
                                    invoke_args=args, invoke_kwds=kwargs).driver
