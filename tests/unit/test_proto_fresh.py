"""The committed generated code must match what proto/generate.py writes from the .proto files."""

from __future__ import annotations

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh(tmp_path: pathlib.Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    generate.generate(tmp_path)
    committed = ROOT / "proto" / "shoal" / "v1"
    fresh = sorted(p.relative_to(tmp_path / "shoal" / "v1") for p in (tmp_path / "shoal" / "v1").iterdir())
    assert fresh, "the generator wrote nothing"
    for rel in fresh:
        assert (committed / rel).read_bytes() == (tmp_path / "shoal" / "v1" / rel).read_bytes(), (
            f"proto/shoal/v1/{rel} is stale: run `python proto/generate.py` and commit the result"
        )
