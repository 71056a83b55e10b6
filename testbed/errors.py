"""One exception family for the whole package.

Each layer raises its own child so callers can catch a layer's failures without catching bugs.
Children that signal bad input also derive from ``ValueError`` so generic callers still work.
``exit_status`` is what the ``testbed`` command exits with: 2 for bad usage, configuration or input files
(fix the input and run again), 1 for failures at run time (a radio, a link, a peer).
"""


class TestbedError(Exception):
    """Base of every error the testbed raises on purpose."""

    exit_status = 1


class ConfigError(TestbedError, ValueError):
    """A configuration value or file is invalid; the message names the field and the accepted range."""

    exit_status = 2


class StateError(ConfigError):
    """A saved-state file (checkpoint, metrics log) is damaged, foreign to this run, or from another version."""


class PhyError(TestbedError, ValueError):
    """Input the OFDM PHY cannot process (wrong dtype, NaN, absurd size, unknown MCS)."""

    exit_status = 2


class ChannelError(TestbedError, ValueError):
    """A channel model was configured with impossible parameters."""

    exit_status = 2


class RadioError(TestbedError):
    """A radio backend failed: device absent, unsupported setting, stream overflow."""


class LinkError(TestbedError):
    """A transfer could not complete; the message names what was missing."""


class ProtocolError(TestbedError, ValueError):
    """A control-plane message was malformed, out of bounds, replayed or unauthorised."""


class ExecutorError(TestbedError):
    """The workers of the in-process engine (a Ray cluster) cannot be reached or failed: a runtime failure."""


class LearningError(TestbedError):
    """A training step or aggregation received something it must refuse."""


class PolicyError(TestbedError, ValueError):
    """A capability report, deadline or allocation request is invalid or infeasible."""
