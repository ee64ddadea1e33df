"""The networks: pure functions over parameter pytrees, one module per network, and the registry of those on offer.

Importing any network module runs this first, so the registry (`core.networks.base.NETWORKS`) is always full.
Adding a network: one module beside these (a `Network` subclass and its instance `NETWORK`), its name below.
"""

import importlib

from core.networks.base import register

NETWORK_MODULES = ("linear", "mlp", "lenet5")  # in the order the app and the CLI list them

for name in NETWORK_MODULES:
    register(importlib.import_module(f"core.networks.{name}").NETWORK)
