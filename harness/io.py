"""Reading and writing files: safe YAML, JSONL, JSON written atomically, content hashes. A leaf: it imports
nothing from the project but the error type, so every other module may use it."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UserError


def read_utf8(path: Path) -> str:
    """A text file's contents; a file that is not UTF-8 is a one-line error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start}); save the file as UTF-8") from None


def read_yaml(path: Path) -> Any:
    """``yaml.safe_load`` a file, turning every failure into a one-line UserError."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path")
    text = read_utf8(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        context, start = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and start is not None and (mark is None or start.line != mark.line):
            problem += f" ({context} started at line {start.line + 1})"
        raise UserError(f"{path}{line}: YAML syntax error: {problem}; fix the YAML at that line") from None


def read_jsonl(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; one-line errors for malformed lines."""
    rows = []
    for number, line in enumerate(read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(
                f"{path}:{number}: malformed JSON ({err.msg}); each line of a {what} file must be one JSON object"
            ) from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        rows.append((number, obj))
    if not rows:
        raise UserError(f"{path}: the {what} file is empty; add at least one JSON line")
    return rows


def read_json(path: Path) -> Any | None:
    """A JSON file's contents, or None when it is missing or not valid JSON (a record being written, say)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False, default=str))


def display_path(path: str | Path) -> str:
    """A path as records and reports show it: relative to the working directory (so a committed record names no
    machine's folders), "../" where it lies outside; as given only where no relative path exists (another drive)."""
    return portable_path(path, Path.cwd())


def portable_path(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base`` (a task file's folder, the working directory), never absolute where a relative
    path exists."""
    try:
        return os.path.relpath(Path(path).resolve(), Path(base).resolve())
    except ValueError:  # Windows: another drive
        return str(path)


def portable_text(text: str | None) -> str | None:
    """An error or traceback without the machine's folders: the working directory, the Python installation (where
    packages live) and the home folder left out."""
    if not text:
        return text
    prefixes = sorted(
        {(str(Path.cwd()), "."), (sys.prefix, "<python>"), (sys.base_prefix, "<python>"), (str(Path.home()), "~")},
        key=lambda pair: -len(pair[0]),  # the longest first: the venv inside the working directory before it
    )
    for prefix, shown in prefixes:
        if len(prefix) > 1:
            text = text.replace(prefix + os.sep, shown + os.sep)
    return text


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_sha256(path: Path) -> str:
    """A file's hash, or a folder's: every file's relative path and hash, in order."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode())
        digest.update(file_sha256(f).encode())
    return digest.hexdigest()
