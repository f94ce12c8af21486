"""Where the tests find the project: its root and its examples, wherever a test module sits."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
