"""The one permission check services use."""

from app.domain.auth import Permission, Principal
from app.domain.errors import AccessDenied


def require(principal: Principal, permission: Permission) -> None:
    if not principal.has(permission):
        raise AccessDenied(f"this needs the {permission.value} permission")
