"""What is wrong with a mappings directory, said precisely: file, JSON pointer, rule."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    file: str  # the file's name inside the mappings directory
    pointer: str  # RFC 6901 JSON pointer into that file ("" is the whole document)
    rule: str  # the schema keyword or contract rule broken, e.g. "required", "too_many_contacts"
    message: str

    def __str__(self) -> str:
        return f"{self.file}#{self.pointer}: [{self.rule}] {self.message}"

    def to_json(self) -> dict[str, str]:
        return {
            "file": self.file,
            "pointer": self.pointer,
            "rule": self.rule,
            "message": self.message,
        }


class MappingError(Exception):
    """The mappings were refused; ``problems`` says every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        first = str(problems[0]) if problems else "no problems recorded"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"mappings refused: {first}{more}")


def pointer(*parts: str | int) -> str:
    """A JSON pointer from path parts, escaping ``~`` and ``/`` as RFC 6901 says."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
