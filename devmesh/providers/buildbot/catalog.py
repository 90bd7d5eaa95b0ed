"""A master's builders and force schedulers, cached, and force calls checked against them.

Builders and schedulers change only when the master is reconfigured, so they are read
once and kept (the kit's ``Refreshing``): a lookup that misses reads them again unless
they are fresh, so a new builder is found at once and a list of builds of a deleted
builder does not re-read them per build.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from devmesh.adapters.caching import Refreshing
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.providers.buildbot.client import BuildbotClient
from devmesh.providers.buildbot.models import WireBuilder, WireField, WireForceScheduler

__all__ = ["Catalog", "force_params", "settable"]

_DEFAULT_REASON = "triggered through Developer Mesh"
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class Catalog:
    """One master's builders and force schedulers, per adapter."""

    def __init__(self, client: BuildbotClient, *, scheduler: str | None) -> None:
        self._wanted = scheduler
        empty_builders: list[WireBuilder] = []
        empty_schedulers: list[WireForceScheduler] = []
        self.builders = Refreshing(client.builders, empty=empty_builders)
        self.schedulers = Refreshing(client.force_schedulers, empty=empty_schedulers)

    async def builder_named(self, name: str) -> WireBuilder:
        found = await self.builders.find(lambda all: next((b for b in all if b.name == name), None))
        if found is not None:
            return found
        names = sorted(builder.name for builder in self.builders.last)
        raise UpstreamNotFound(
            f"buildbot has no builder {name!r}; its builders are: {', '.join(names) or 'none'}",
            details={"project": name, "builders": names},
        )

    async def builder_name(self, builderid: int) -> str:
        found = await self.builders.find(
            lambda all: next((b.name for b in all if b.builderid == builderid), None)
        )
        return found if found is not None else f"builder {builderid}"

    async def scheduler_for(self, builder: str, parameters: dict[str, Any]) -> WireForceScheduler:
        wanted = self._wanted

        def pick(schedulers: list[WireForceScheduler]) -> WireForceScheduler | None:
            if wanted:
                named = next((s for s in schedulers if s.name == wanted), None)
                return named if named is not None and builder in named.builder_names else None
            # A force scheduler starts whatever builder it is asked to, so pick one that
            # serves this builder; among several, the one that takes the given parameters,
            # and rather one of its own than a pipeline's (the master lists them in no
            # stable order).
            serving = sorted(
                (s for s in schedulers if builder in s.builder_names),
                key=lambda s: (len(s.builder_names), s.name),
            )
            fitting = [s for s in serving if set(parameters) <= settable(s).keys()]
            return (fitting or serving)[0] if serving else None

        found = await self.schedulers.find(pick)
        if found is not None:
            return found
        names = sorted(s.name for s in self.schedulers.last)
        if wanted and wanted not in names:
            raise UpstreamInvalidArgument(
                f"config.scheduler {wanted!r} is not a force scheduler on buildbot; "
                f"its force schedulers are: {', '.join(names) or 'none'}",
                details={"scheduler": wanted, "schedulers": names},
            )
        if wanted:
            raise UpstreamInvalidArgument(
                f"force scheduler {wanted!r} (config.scheduler) cannot start builder {builder!r}",
                details={"scheduler": wanted, "project": builder},
            )
        raise UpstreamInvalidArgument(
            f"no force scheduler on buildbot can start builder {builder!r}; add a "
            "ForceScheduler for it to master.cfg, or set config.scheduler",
            details={"project": builder, "schedulers": names},
        )

    async def scheduler_named(self, name: str) -> WireForceScheduler:
        found = await self.schedulers.find(
            lambda all: next((s for s in all if s.name == name), None)
        )
        if found is not None:
            return found
        names = sorted(s.name for s in self.schedulers.last)
        raise UpstreamNotFound(
            f"buildbot has no pipeline {name!r} (a pipeline is a force scheduler); its "
            f"pipelines are: {', '.join(names) or 'none'}; list_pipelines shows what each starts",
            details={"pipeline": name, "pipelines": names},
        )


# --- force parameters ------------------------------------------------------------------


def _leaves(fields: Iterable[WireField]) -> Iterable[WireField]:
    for field in fields:
        if field.fields:
            yield from _leaves(field.fields)
        elif field.type != "nested":
            yield field


def _text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise UpstreamInvalidArgument(
        f"parameter {name!r} takes text or a number, not {type(value).__name__}",
        details={"parameter": name},
    )


def _coerce(field: WireField, name: str, value: Any) -> Any:
    """The value as the force form expects it; Buildbot would silently misread others."""
    if field.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise UpstreamInvalidArgument(
            f"parameter {name!r} is a yes/no flag: pass true or false",
            details={"parameter": name},
        )
    if field.multiple and isinstance(value, list):
        return [_text(name, item) for item in value]
    return _text(name, value)


def _field_name(field: WireField) -> str:
    return field.full_name or field.name


def settable(scheduler: WireForceScheduler) -> dict[str, WireField]:
    return {
        _field_name(field): field
        for field in _leaves(scheduler.all_fields)
        if field.type != "fixed" and _field_name(field)
    }


def force_params(
    scheduler: WireForceScheduler,
    target: str,
    *,
    parameters: dict[str, Any],
    branch: str | None,
    commit: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """The force call's params, checked against the scheduler's form.

    Buildbot ignores names its form does not have and keeps fixed fields fixed, so
    a misspelt parameter or an unsupported branch would otherwise start a build
    other than the one asked for, without a word. ``target`` ends the scheduler's
    name in messages, e.g. "for 'runtests'".
    """
    settable_fields = settable(scheduler)
    fixed = {_field_name(f) for f in _leaves(scheduler.all_fields)} - settable_fields.keys()
    where = f"force scheduler {scheduler.name!r} {target}"
    params: dict[str, Any] = {}
    for name, value in parameters.items():
        field = settable_fields.get(name)
        if field is None:
            why = "is fixed by" if name in fixed else "is not a parameter of"
            raise UpstreamInvalidArgument(
                f"{name!r} {why} {where}; parameters it takes: "
                f"{', '.join(sorted(settable_fields)) or 'none'}",
                details={"parameter": name, "accepted": sorted(settable_fields)},
            )
        params[name] = _coerce(field, name, value)
    for wanted, leaf, label in ((branch, "branch", "branch"), (commit, "revision", "commit")):
        if not wanted:
            continue
        targets = sorted(name for name, field in settable_fields.items() if field.name == leaf)
        if len(targets) != 1:
            problem = (
                f"takes no {label} (its {leaf} is fixed or absent)"
                if not targets
                else f"has several codebases ({', '.join(targets)}); pass one in parameters"
            )
            raise UpstreamInvalidArgument(f"{where} {problem}", details={"field": label})
        params[targets[0]] = wanted
    params["reason"] = reason or params.get("reason") or _DEFAULT_REASON
    return params
