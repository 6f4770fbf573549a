"""Command handlers, one module per command family; importing this package
registers them all in `phidb.commands.registry.COMMANDS`."""

import importlib
import pkgutil

_NOT_COMMANDS = {"context", "registry", "dispatcher", "cursors", "namespaces"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _NOT_COMMANDS and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
