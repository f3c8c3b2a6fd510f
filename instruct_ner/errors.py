"""The errors a user can cause, in one place: each is printed by the CLI as one line and exit status 2.

Every message names where (file and line or row, record id, recipe key, model folder) and what was
expected. Anything else that escapes a command is a bug and keeps its traceback. This module imports
nothing of the project, so that every layer can raise these.
"""

from __future__ import annotations


class InstructNerError(ValueError):
    """Base of the errors below (a ValueError, as they were before they were gathered here)."""


class DataError(InstructNerError):
    """Bad input. The message always names where (file and line/row, or record id) and what was expected."""

    def __init__(self, where: str, message: str, reason: str = "invalid"):
        self.where = where
        self.reason = reason  # short key used when skips are counted, e.g. "invalid_tag"
        super().__init__(f"{where}: {message}")


class ConfigError(InstructNerError):
    """A config that cannot be used; raised before any data or model is loaded."""


class TemplateError(InstructNerError):
    """A template that cannot be used: not found, no header, a missing variable, a syntax error."""


class ModelError(InstructNerError):
    """A model that cannot be found or loaded as asked; raised before any training or generation starts."""
