"""Privileges: an action set on a resource, as MongoDB defines them.

A resource is a namespace (`db` and `collection`), where an empty string means
"any" (`{db: "", collection: ""}` is every non-system namespace), or the
cluster. Commands declare the privileges they need; `covers` decides whether a
granted privilege satisfies a required one. The decision itself is made once,
by the dispatcher, through `AuthorizationSession.is_authorized`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    db: str = ""
    collection: str = ""
    cluster: bool = False
    any_resource: bool = False  # {anyResource: true}: root's internal wildcard

    def to_doc(self) -> dict[str, object]:
        if self.any_resource:
            return {"anyResource": True}
        if self.cluster:
            return {"cluster": True}
        return {"db": self.db, "collection": self.collection}

    def covers(self, required: Resource) -> bool:
        """Whether a grant on `self` applies to `required`."""
        if self.any_resource:
            return True
        if self.cluster or required.cluster:
            return self.cluster and required.cluster
        if required.any_resource:
            return False
        is_system = required.collection.startswith("system.")
        if self.db and self.db != required.db:
            return False
        if self.collection:
            return self.collection == required.collection
        # {db: X, collection: ""} and {db: "", collection: ""} cover every
        # non-system collection of the database(s), and the database itself.
        return not is_system


@dataclass(frozen=True)
class Privilege:
    resource: Resource
    actions: frozenset[str]

    def to_doc(self) -> dict[str, object]:
        return {"resource": self.resource.to_doc(), "actions": sorted(self.actions)}


def on_namespace(db: str, collection: str, *actions: str) -> Privilege:
    return Privilege(Resource(db=db, collection=collection), frozenset(actions))


def on_database(db: str, *actions: str) -> Privilege:
    return Privilege(Resource(db=db, collection=""), frozenset(actions))


def on_cluster(*actions: str) -> Privilege:
    return Privilege(Resource(cluster=True), frozenset(actions))


def granted(grants: list[Privilege], required: Privilege) -> bool:
    """True when every action of `required` is granted on a covering resource."""
    missing = set(required.actions)
    for grant in grants:
        if grant.resource.covers(required.resource):
            missing -= grant.actions
            if not missing:
                return True
    return not missing


def authenticated_only() -> Privilege:
    """A requirement every authenticated user meets (no action on any resource), for
    commands whose check is who the user is, such as `usersInfo` of oneself. The
    dispatcher has already refused unauthenticated clients before asking."""
    return Privilege(Resource(), frozenset())
