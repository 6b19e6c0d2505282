"""Reading ``syncline.toml``: where it is and the error it raises, without any of the models.

``syncline.config`` validates the whole file; the webhook function validates only its part
(``syncline.webhooks.sources``). Both read the file through here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "syncline.toml"


class ConfigError(ValueError):
    """The configuration file is missing or invalid; the message names the file and the field."""


def read_toml(path: Path | str | None = None) -> tuple[Path, str, dict[str, Any]]:
    """The file (``DEFAULT_PATH`` when none is given), its text and its parsed tables."""
    source = Path(path) if path else DEFAULT_PATH
    try:
        text = source.read_text(encoding="utf-8")
        return source, text, tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{source}: configuration file not found (set SYNCLINE_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
