"""Who is logged in on one connection, and what they may do.

The dispatcher asks `is_authorized` once per command; nothing else in phidb
makes an authorization decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from phidb.security.authz.privileges import Privilege, granted


@dataclass
class AuthenticatedUser:
    user: str
    db: str
    roles: list[dict[str, str]]  # [{role, db}] as granted, direct and inherited
    privileges: list[Privilege] = field(default_factory=list)


class AuthorizationSession:
    """The users authenticated on a connection (MongoDB allows one per database)."""

    def __init__(self) -> None:
        self.users: list[AuthenticatedUser] = []
        # The user-store generation these users were read at (see `refresh`).
        self.generation = 0

    @property
    def is_authenticated(self) -> bool:
        return bool(self.users)

    def add_user(self, user: AuthenticatedUser) -> None:
        """Authenticate `user`, replacing any user of the same database."""
        self.users = [u for u in self.users if u.db != user.db] + [user]

    def logout(self, db: str | None = None) -> list[AuthenticatedUser]:
        """Log out the user of `db` (every user when None); returns who was removed."""
        removed = [u for u in self.users if db is None or u.db == db]
        self.users = [u for u in self.users if u not in removed]
        return removed

    def refresh(self, current: list[AuthenticatedUser], generation: int) -> None:
        """Replace the users with their current definitions; a dropped user is
        simply absent from `current` and so is logged out."""
        self.users = current
        self.generation = generation

    def is_authorized(self, required: list[Privilege]) -> bool:
        """Deny by default: an empty requirement is never satisfied here."""
        if not required:
            return False
        grants = [p for u in self.users for p in u.privileges]
        return all(granted(grants, r) for r in required)

    def user_names(self) -> list[dict[str, str]]:
        return [{"user": u.user, "db": u.db} for u in self.users]

    def role_names(self) -> list[dict[str, str]]:
        seen: list[dict[str, str]] = []
        for u in self.users:
            for r in u.roles:
                if r not in seen:
                    seen.append(r)
        return seen

    def owner_key(self) -> frozenset[tuple[str, str]]:
        """Identifies who owns a cursor: the exact set of users logged in."""
        return frozenset((u.user, u.db) for u in self.users)
