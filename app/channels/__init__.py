"""How alert deliveries leave the process: email over SMTP, and signed webhook POSTs."""

from __future__ import annotations


class DeliveryFailed(Exception):
    """A try that did not deliver. The message is stored as the delivery's last error (no secret in
    it); `permanent`: trying again cannot help (the delivery fails at once)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
