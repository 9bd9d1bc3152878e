"""Where the project's shared material is: ``../shared`` beside the repository (CI
clones the repository fresh, with shared/ next to it)."""

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
VENDOR = SHARED / "vendor"
