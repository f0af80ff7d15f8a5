"""gan_fast.errors: the exceptions a caller may want to tell apart, at the bottom of the
package (every layer may raise them; this module imports nothing of gan_fast).

ConfigError     a setting is invalid (a bad batch size, epochs < 1, an unknown option...):
                raised before anything is written. The command line exits with status 2.
Other expected failures keep their own types where they arise: gan_fast.data.MNISTError,
gan_fast.checkpoint.CheckpointError, gan_fast.trainer.NonFiniteLossError (status 1).
"""
from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An invalid setting, named in the message; nothing has been written yet."""
