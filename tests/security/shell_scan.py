"""A static scan for every way Python code can hand a string to a shell.

Keys and archive member names are attacker-chosen; if one ever reached ``/bin/sh`` it could run commands.
The project's rule is simple enough to check mechanically: no call may start a shell. This finds

- ``shell=<anything but False>`` on any call (``subprocess.run``, ``Popen``, ``check_output``, ...);
- ``os.system``, ``os.popen``, ``subprocess.getoutput``, ``subprocess.getstatusoutput``,
  ``asyncio.create_subprocess_shell`` and ``pty.spawn``, however they were imported or aliased.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# (module, function) pairs that always go through a shell.
SHELL_FUNCTIONS = frozenset(
    {
        ("os", "system"),
        ("os", "popen"),
        ("subprocess", "getoutput"),
        ("subprocess", "getstatusoutput"),
        ("asyncio", "create_subprocess_shell"),
        ("pty", "spawn"),
    }
)
# Calls that take shell= (or pass **kwargs on to something that does).
PROCESS_FUNCTIONS = frozenset(
    ("subprocess", name) for name in ("run", "call", "check_call", "check_output", "Popen")
) | {("asyncio", "create_subprocess_exec")}


@dataclass(frozen=True)
class Finding:
    """One place where a shell could be started."""

    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


class ShellCallFinder(ast.NodeVisitor):
    """Walks one module, remembering import aliases, and collects the calls that start a shell."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.module_aliases: dict[str, str] = {}  # local name -> module ("sp" -> "subprocess")
        self.function_aliases: dict[str, tuple[str, str]] = {}  # local name -> (module, function)
        self.findings: list[Finding] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.module_aliases[alias.asname or alias.name] = alias.name
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.function_aliases[alias.asname or alias.name] = (node.module or "", alias.name)
        self.generic_visit(node)

    def resolve(self, func: ast.expr) -> tuple[str, str] | None:
        """The (module, function) a call target names, if it is one we can tell."""
        if isinstance(func, ast.Name):
            return self.function_aliases.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = self.module_aliases.get(func.value.id, func.value.id)
            return module, func.attr
        return None

    def visit_Call(self, node: ast.Call) -> None:
        target = self.resolve(node.func)
        if target in SHELL_FUNCTIONS:
            self.findings.append(Finding(self.path, node.lineno, f"{target[0]}.{target[1]}() runs a shell"))
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value in (False, None, 0)
            ):
                self.findings.append(Finding(self.path, node.lineno, f"shell={ast.unparse(keyword.value)}"))
            if keyword.arg is None and target in PROCESS_FUNCTIONS:  # **kwargs could smuggle shell=True in
                self.findings.append(Finding(self.path, node.lineno, "**kwargs passed to a call (could hold shell=)"))
        self.generic_visit(node)


def scan_source(source: str, path: str = "<string>") -> list[Finding]:
    """The shell-starting calls in one module's source."""
    finder = ShellCallFinder(path)
    finder.visit(ast.parse(source, filename=path))
    return finder.findings


def python_files(roots: Iterable[Path]) -> list[Path]:
    """Every .py file under the given folders, sorted."""
    return sorted(path for root in roots for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def scan_tree(roots: Iterable[Path]) -> list[Finding]:
    """The shell-starting calls in every .py file under the given folders."""
    return [finding for path in python_files(roots) for finding in scan_source(path.read_text("utf-8"), str(path))]
