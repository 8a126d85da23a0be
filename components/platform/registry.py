"""Platform names to implementations; an unknown name is an error, never a fallback."""

from __future__ import annotations

from components.errors import InvalidInputError


def platform_for(name: str):
    """The platform registered under `name`."""
    if name == "local":
        from components.platform.local import LocalPlatform

        return LocalPlatform()
    raise InvalidInputError("platform", f"unknown platform {name!r}",
                            "use local (the Kubernetes platform is not built yet)")
