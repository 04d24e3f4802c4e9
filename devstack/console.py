"""What `up` prints: its own lines plain, each child's lines behind its name."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

# ANSI colours cycled over the components; only used on a terminal.
_COLOURS = ("36", "35", "33", "32", "34", "31")
_RESET = "\x1b[0m"


def colour_wanted(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and "NO_COLOR" not in os.environ


def prefixed(name: str, text: str, width: int, colour: str | None = None) -> str:
    """`[name]` padded to `width` characters, then the child's line without its line end."""
    tag = f"[{name}]".ljust(width + 2)
    if colour:
        tag = f"\x1b[{colour}m{tag}{_RESET}"
    return f"{tag} {text.rstrip()}"


@dataclass
class Console:
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    colour: bool = False
    width: int = 8
    _colours: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_stdout(cls) -> Console:
        return cls(stream=sys.stdout, colour=colour_wanted(sys.stdout))

    def align(self, names: list[str]) -> None:
        """Pad every prefix to the longest component name so the lines line up."""
        self.width = max([len(n) for n in names] + [self.width])
        for i, name in enumerate(names):
            self._colours.setdefault(name, _COLOURS[i % len(_COLOURS)])

    def say(self, text: str) -> None:
        self._write(text)

    def child(self, name: str, text: str) -> None:
        colour = self._colours.get(name) if self.colour else None
        self._write(prefixed(name, text, self.width, colour))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            # The reader went away (`up | head`); keep supervising rather than crash mid-stop.
            pass
