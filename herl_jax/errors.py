"""`UserError`: the base of the errors a user's input causes (a config value, a data, model or checkpoint file,
a busy workdir, a run that stopped learning), which the CLIs report in one line (herl_jax.cli_errors).

Imports nothing, so that every floor's error classes can derive from it; each also keeps its own builtin base
(ValueError, RuntimeError), so `except ValueError` callers still catch it.
"""


class UserError(Exception):
    """An error in what the user gave, not a bug: a CLI prints its message in one line and exits 1."""
