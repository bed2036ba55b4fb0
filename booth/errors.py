"""Domain errors carry a message for the person in front of the screen (already translatable)."""
from __future__ import annotations


class DomainError(Exception):
    status = 422

    def __init__(self, message, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field


class NotFound(DomainError):
    status = 404
