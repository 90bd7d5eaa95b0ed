from importlib.metadata import EntryPoint

import pytest

from devmesh.adapters.registry import ProviderLoadError, _load


def entry_point(value: str, name: str = "broken") -> EntryPoint:
    return EntryPoint(name=name, value=value, group="devmesh.providers")


def test_an_entry_point_that_does_not_import_is_named_in_the_error() -> None:
    with pytest.raises(ProviderLoadError, match=r"devmesh.providers:broken .*failed to load"):
        _load(entry_point("no_such_module_anywhere:provider"), "devmesh.providers")


def test_an_entry_point_that_is_not_a_provider_is_refused() -> None:
    with pytest.raises(ProviderLoadError, match=r"devmesh.providers:broken .*not a .*Provider"):
        _load(entry_point("json:dumps"), "devmesh.providers")
