"""A small Dockerfile reader: instructions with their continuation lines joined, split into build stages."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

# Packages that compile code. None may be left in the image a worker runs in.
COMPILER_PACKAGES = frozenset(
    {"gcc", "g++", "cc", "c++", "clang", "build-essential", "make", "cmake", "gfortran", "rustc", "cargo", "golang"}
)
ROOT_USERS = frozenset({"root", "0"})


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, USER, ...
    arguments: str
    line: int


def instructions(text: str) -> list[Instruction]:
    """Every instruction, with backslash-continued lines joined and comments dropped."""
    found: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip(), start))
    return found


def final_stage(text: str) -> list[Instruction]:
    """The instructions of the last stage (from its FROM on): what the image that runs is made of."""
    parsed = instructions(text)
    starts = [index for index, instruction in enumerate(parsed) if instruction.keyword == "FROM"]
    if not starts:
        raise ValueError("no FROM instruction: not a Dockerfile")
    return parsed[starts[-1] :]


def effective_user(stage: list[Instruction]) -> str:
    """The user (without group) the stage's containers run as: the last USER, or root when there is none."""
    users = [instruction.arguments for instruction in stage if instruction.keyword == "USER"]
    return users[-1].split(":", 1)[0].strip() if users else "root"


def installed_compilers(stage: list[Instruction]) -> list[str]:
    """Compiler packages that the stage's RUN instructions install and do not remove again."""
    installed: set[str] = set()
    for instruction in stage:
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", instruction.arguments):
            words = shlex.split(command)
            packages = {word for word in words if not word.startswith("-")} & COMPILER_PACKAGES
            if {"install", "add"} & set(words):
                installed |= packages
            if {"remove", "purge", "del"} & set(words):
                installed -= packages
    return sorted(installed)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")
