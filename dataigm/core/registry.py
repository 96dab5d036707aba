"""A tiny name -> object registry, as timm does for models: an unknown name lists the valid ones."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from dataigm.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (classes, factories, specs) of one extensible family."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; used bare or as a decorator ``@registry.register("name")``."""

        def add(o: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = o
            return o

        return add(obj) if obj is not None else add

    def get(self, name: str) -> T:
        """Return the entry for ``name`` or raise :class:`UnknownNameError` (a KeyError) listing the valid names."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._entries))}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
