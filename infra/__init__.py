"""Syncline's AWS infrastructure as CDK constructs, derived from ``functions/syncline.toml``.

The resources come from ``syncline.topology`` (the same definition the local stack uses), which lives
in the Lambda code tree. ``functions/`` is put on ``sys.path`` here so that ``python app.py`` works
from a plain checkout, without installing the engine package.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))
