"""A value and where it came from: ``file:line``, a flag, or a program's own default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from spamdrill.errors import SpamdrillError, bad

__all__ = ["Sourced", "SpamdrillError", "at", "bad", "default_of"]

T = TypeVar("T")


@dataclass(frozen=True)
class Sourced(Generic[T]):
    value: T
    source: str


def at(path: str, line: int) -> str:
    return f"{path}:{line}"


def default_of(program: str) -> str:
    return f"default of {program}"

