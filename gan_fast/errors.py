"""gan_fast.errors: the exceptions a caller may want to tell apart, at the bottom of the
package (every layer may raise them; this module imports nothing of gan_fast).

ConfigError          a setting is invalid (a bad batch size, epochs < 1, an unknown
                     option...): raised before anything is written. The command line
                     exits with status 2.
NonFiniteLossError   a loss or parameter became NaN/inf during training (status 1).
ModeCollapseWarning  an evaluation during training found fewer digits than before.
The other expected failures keep their own types where they arise:
gan_fast.data.MNISTError, gan_fast.checkpoint.CheckpointError (status 1).
"""
from __future__ import annotations

__all__ = ["ConfigError", "NonFiniteLossError", "ModeCollapseWarning"]


class ConfigError(ValueError):
    """An invalid setting, named in the message; nothing has been written yet."""


class NonFiniteLossError(FloatingPointError):
    """A loss or a parameter became NaN or infinite; the message names the loss (or the
    parameter tensor) and the step."""


class ModeCollapseWarning(UserWarning):
    """An evaluation found fewer digits than an earlier one, or a class histogram much
    further from uniform (gan_fast.trainer.KL_RISE nats above the best so far): the
    generator may be collapsing onto a few modes."""
