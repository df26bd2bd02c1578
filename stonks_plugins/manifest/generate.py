"""Regenerate ``_compiled_schema.py`` after editing the manifest schema."""

from pathlib import Path

from .validation import generate_compiled_validator

if __name__ == "__main__":
    target = Path(__file__).with_name("_compiled_schema.py")
    target.write_text(generate_compiled_validator(), "utf-8")
    print(f"wrote {target}")
