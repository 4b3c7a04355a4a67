"""Bounded YAML: a study file is a few KB, so its size, aliases, nesting and expanded size are capped.

YAML aliases (``*name``) repeat their anchor's whole content, so nine nested lists of nine aliases
(a "billion laughs") expand to 9**9 values from a few hundred bytes. PyYAML builds them as shared
references, but validation, the stored JSON and error messages would expand them, and did (4.5 GB).
The loader counts while it composes, before anything is expanded: every node knows its expanded
size once its children are composed, so the check costs one addition per node and the bomb is
refused at the first value that passes the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tuner.errors import SpecError

# The example studies are under 1 KB; a spec with a long grid still fits a small fraction of these.
MAX_BYTES = 256 * 1024
MAX_ALIASES = 100
MAX_NODES = 10_000
MAX_DEPTH = 50


def read_yaml(path: Path) -> tuple[Any, str]:
    """The document in the file at ``path`` and its text, read within the limits above.

    Raises:
        SpecError: naming the file (and the line) for a file that is too big, not UTF-8, not YAML,
            or whose aliases, nesting or expanded size pass the limits.
    """
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)  # never more, whatever the file's size
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the study file ({exc.strerror or exc}). Check its permissions.") from None
    if len(data) > MAX_BYTES:
        size = path.stat().st_size
        raise SpecError(
            f"{path}: the file has {size} bytes; a study file may have at most {MAX_BYTES} (studies are a few KB). "
            "Check that this is the study file and not a data file; data belongs in a CSV/Parquet file named by "
            "`data.source`."
        )
    text = _decode(data, path)
    try:
        return parse_yaml(text, str(path)), text
    except yaml.reader.ReaderError as exc:  # a control character: say where, which YAML's message does not
        line = text.count("\n", 0, exc.position) + 1
        raise SpecError(
            f"{path}, line {line}: the control character U+{exc.character:04X} is not allowed in YAML. Delete it "
            "(it is often pasted in by accident; `cat -A` shows it)."
        ) from None


def parse_yaml(text: str, label: str) -> Any:
    """The YAML document in ``text``, within the limits; errors start with ``label``.

    Raises:
        SpecError: for aliases, nesting or an expanded size past the limits.
        yaml.YAMLError: for a syntax error (the caller words it for its source).
    """
    loader = _BoundedLoader(text, label)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text`` (for line numbers), or None when it cannot be read within the limits."""
    loader = _BoundedLoader(text, "")
    try:
        return loader.get_single_node()
    except (yaml.YAMLError, SpecError):
        return None
    finally:
        loader.dispose()


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        utf16 = " It looks like UTF-16 ('Unicode' in some editors)." if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise SpecError(
            f"{path}, line {line}, column {column} (byte {start}): 0x{data[start]:02x} is not UTF-8, and a study "
            f"file must be UTF-8 text.{utf16} Open the file in an editor and save it as UTF-8 (or convert it, e.g. "
            f"`iconv -f latin1 -t utf-8`), then run again."
        ) from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents past the limits while it composes them."""

    def __init__(self, text: str, label: str) -> None:
        super().__init__(text)
        self._label = label
        self._aliases = 0
        self._depth = 0
        # Expanded size of every node composed so far, by id: aliases reuse their anchor's node.
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise self._refuse(
                    event,
                    f"more than {MAX_ALIASES} YAML aliases (`*name`); a study file needs few. Write the values out "
                    "or use fewer aliases",
                )
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._sizes:  # still being composed: it contains itself
                raise self._refuse(
                    event,
                    f"the alias *{event.anchor} refers to a value that contains it, which never ends. Refer to "
                    "another value or write the values out",
                )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._refuse(
                event, f"values nested more than {MAX_DEPTH} levels deep; a study file needs a few. Flatten them"
            )
        node = super().compose_node(parent, index)
        self._depth -= 1
        if node is None:  # only an alias composes to None (an unknown anchor), and aliases returned above
            return None
        size = 1 + sum(self._sizes[id(child)] for child in _children(node))
        if size > MAX_NODES:
            raise self._refuse(
                event,
                f"the YAML expands to more than {MAX_NODES} values (each alias `*name` repeats its anchor's "
                "whole content, so aliases of aliases multiply). Write the values out instead of nesting aliases",
            )
        self._sizes[id(node)] = size
        return node

    def _refuse(self, event: yaml.Event, problem: str) -> SpecError:
        where = f", line {event.start_mark.line + 1}" if event.start_mark else ""
        return SpecError(f"{self._label}{where}: {problem}.")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
