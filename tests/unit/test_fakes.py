"""The fakes of tests/unit/fakes.py keep the shape of what they stand for, so that a service tested on
them calls what production has, with the same parameters."""

from __future__ import annotations

import inspect
from typing import Any, get_type_hints

import pytest

from fpslink.ibps_client import IbpsClient
from fpslink.uow import UnitOfWork
from unit.fakes import FakeIbps, FakeUnitOfWork


def _repositories(uow: type) -> dict[str, type]:
    """The unit of work's repository properties and the classes they return."""
    return {
        name: get_type_hints(member.fget)["return"]
        for name, member in vars(uow).items()
        if isinstance(member, property) and name != "conn"
    }


REAL = _repositories(UnitOfWork)


def _public(cls: type) -> dict[str, Any]:
    return {n: m for n, m in vars(cls).items() if not n.startswith("_") and inspect.isfunction(m)}


def _parameters(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_fake_unit_of_work_has_every_repository_and_method() -> None:
    assert REAL, "the unit of work hands out repositories"
    assert _repositories(FakeUnitOfWork).keys() == REAL.keys()
    for method in ("commit", "ping"):
        assert _parameters(getattr(FakeUnitOfWork, method)) == _parameters(getattr(UnitOfWork, method))


@pytest.mark.parametrize("name", sorted(REAL))
def test_a_fake_repository_has_the_real_ones_methods(name: str) -> None:
    real, fake = REAL[name], _repositories(FakeUnitOfWork)[name]
    assert _public(fake).keys() == _public(real).keys()
    for method, function in _public(real).items():
        assert _parameters(getattr(fake, method)) == _parameters(function), method


def test_the_fake_ibps_is_called_as_the_client_is() -> None:
    for method, function in _public(FakeIbps).items():
        assert _parameters(function) == _parameters(getattr(IbpsClient, method)), method
