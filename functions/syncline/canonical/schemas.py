"""JSON Schema files for the canonical events, and the backward-compatibility check that guards them.

``python -m syncline.canonical.schemas`` (``make schemas``) writes ``schemas/v<N>/<Event>.json``.
:func:`breaking_changes` compares a published schema with the one the models generate now. A
consumer validating with the old schema must keep accepting what producers send, so a change
breaks it when it:
- removes a property, or changes its type;
- makes a property required that was optional, or adds a new required property;
- removes an enum value, or narrows a string pattern or a numeric bound;
- removes an event type.
Adding optional properties, enum values and event types is compatible. A breaking change needs a new
schema version (a new folder), never an edit of a published one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from syncline.canonical.events import EVENT_TYPES, SCHEMA_VERSION

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"


def generate() -> dict[str, dict[str, Any]]:
    """Event type -> JSON Schema, as the models define it now."""
    return {name: cls.model_json_schema(mode="serialization") for name, cls in sorted(EVENT_TYPES.items())}


def write(directory: Path | None = None) -> list[Path]:
    target = (directory or SCHEMAS_DIR) / f"v{SCHEMA_VERSION}"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = target / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def load(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    source = (directory or SCHEMAS_DIR) / f"v{SCHEMA_VERSION}"
    return {path.stem: json.loads(path.read_text()) for path in sorted(source.glob("*.json"))}


def breaking_changes(published: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    """Every way ``current`` would break a consumer of ``published`` (empty when compatible)."""
    problems: list[str] = []
    for name, old in published.items():
        if name not in current:
            problems.append(f"{name}: event type removed")
            continue
        _compare(old, current[name], old, current[name], name, problems)
    return problems


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        node = root["$defs"][ref.rsplit("/", 1)[-1]]
    return node


def _types(node: dict[str, Any], root: dict[str, Any]) -> set[str]:
    node = _resolve(node, root)
    if "anyOf" in node:
        return set().union(*(_types(option, root) for option in node["anyOf"]))
    if "const" in node:
        return {f"const:{node['const']}"}
    kind = node.get("type", "any")
    return {kind if isinstance(kind, str) else "|".join(kind)}


def _compare(
    old: dict[str, Any],
    new: dict[str, Any],
    old_root: dict[str, Any],
    new_root: dict[str, Any],
    where: str,
    problems: list[str],
) -> None:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    if "anyOf" in old or "anyOf" in new:
        _compare_unions(old, new, old_root, new_root, where, problems)
        return
    old_types, new_types = _types(old, old_root), _types(new, new_root)
    if not old_types <= new_types:
        problems.append(f"{where}: type changed from {sorted(old_types)} to {sorted(new_types)}")
        return
    problems.extend(_constraint_changes(old, new, where))
    if old_types == {"object"}:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        for prop in old_props:
            if prop not in new_props:
                problems.append(f"{where}.{prop}: property removed")
            else:
                _compare(old_props[prop], new_props[prop], old_root, new_root, f"{where}.{prop}", problems)
        newly_required = set(new.get("required", [])) - set(old.get("required", []))
        problems.extend(f"{where}.{prop}: now required" for prop in sorted(newly_required))
    if old_types == {"array"} and "items" in old and "items" in new:
        _compare(old["items"], new["items"], old_root, new_root, f"{where}[]", problems)


def _compare_unions(
    old: dict[str, Any],
    new: dict[str, Any],
    old_root: dict[str, Any],
    new_root: dict[str, Any],
    where: str,
    problems: list[str],
) -> None:
    """``X | None`` and friends: no accepted type may go, and object members are compared member-wise."""
    removed_types = _types(old, old_root) - _types(new, new_root)
    if removed_types:
        problems.append(f"{where}: no longer accepts {', '.join(sorted(removed_types))}")
    for option in old.get("anyOf", [old]):
        match = [n for n in new.get("anyOf", [new]) if _types(n, new_root) == _types(option, old_root)]
        if match:
            _compare(option, match[0], old_root, new_root, where, problems)


def _constraint_changes(old: dict[str, Any], new: dict[str, Any], where: str) -> list[str]:
    """Narrowed enums, patterns and bounds: values the old schema accepted that the new one refuses."""
    problems = []
    removed_values = set(map(str, old.get("enum", []))) - set(map(str, new.get("enum", old.get("enum", []))))
    if removed_values:
        problems.append(f"{where}: enum values removed: {', '.join(sorted(removed_values))}")
    if new.get("pattern") and new.get("pattern") != old.get("pattern"):
        problems.append(f"{where}: pattern changed to {new['pattern']!r}")
    problems.extend(
        f"{where}: {bound} raised to {new[bound]}"
        for bound in ("minimum", "exclusiveMinimum", "minLength", "minItems")
        if bound in new and (bound not in old or new[bound] > old[bound])
    )
    problems.extend(
        f"{where}: {bound} lowered to {new[bound]}"
        for bound in ("maximum", "exclusiveMaximum", "maxLength", "maxItems")
        if bound in new and (bound not in old or new[bound] < old[bound])
    )
    return problems


def main() -> int:
    published = load()
    current = generate()
    problems = breaking_changes(published, current) if published else []
    if problems:
        print(f"Refusing to overwrite schemas/v{SCHEMA_VERSION}: the models break it:", file=sys.stderr)  # noqa: T201
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)  # noqa: T201
        print("Make the change compatible, or publish a new schema version.", file=sys.stderr)  # noqa: T201
        return 1
    for path in write():
        print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
