"""The networks on offer, in the order the app and the CLI list them. Adding a network: one module beside this
one (a `Network` subclass and its instance `NETWORK`), one line here."""

from __future__ import annotations

from core.networks import lenet5, linear, mlp
from core.networks.base import NETWORKS, Network, register

for module in (linear, mlp, lenet5):
    register(module.NETWORK)


def network(name: str) -> Network:
    return NETWORKS[name]
