"""What Modelgate takes as an email address to send alerts to (a model's notifyEmails, an
organization's alertEmails): one plain address, as an SMTP envelope and a To header carry it."""

from __future__ import annotations

import re

# RFC 5321's limit on a path, which an address must fit in.
EMAIL_MAX_LENGTH = 254
# No white space or control characters (a NUL, a line break that would start another header), and
# none of the characters that make a header hold several addresses or a display name.
_ATOM = r"[^@\s\x00-\x1f\x7f\",;:<>()\[\]\\]"
_EMAIL = re.compile(rf"{_ATOM}{{1,64}}@{_ATOM}+\.{_ATOM}+")


def is_email_address(text: str) -> bool:
    return len(text) <= EMAIL_MAX_LENGTH and _EMAIL.fullmatch(text) is not None
