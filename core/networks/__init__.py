"""The networks: pure functions over parameter pytrees, one module per network, registered in `registry`."""

from core.networks import registry  # noqa: F401  (fills the registry whenever any network module is used)
