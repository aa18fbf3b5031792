"""Regenerate the Python code for proto/shoal/v1/*.proto.

Run from anywhere: `python proto/generate.py`. The generated modules are
committed; tests/unit/test_proto_fresh.py fails when they are stale. The
generators are grpcio-tools (the code) and mypy-protobuf (the .pyi stubs of
the messages and of the gRPC stubs and servicers, which mypy checks our code
against), both pinned in pyproject.toml's dev extra, so that every machine
writes the same bytes.
"""

from __future__ import annotations

import pathlib
import sys

from grpc_tools import protoc

PROTO_ROOT = pathlib.Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "shoal" / "v1"


def generate(out_dir: pathlib.Path) -> None:
    """Write *_pb2.py, *_pb2.pyi, *_pb2_grpc.py and *_pb2_grpc.pyi for every .proto into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    # mypy-protobuf's plugins are installed beside this interpreter.
    bin_dir = pathlib.Path(sys.executable).parent
    if not (bin_dir / "protoc-gen-mypy").exists():
        raise SystemExit("proto/generate.py: mypy-protobuf is missing; install the dev extra (bash deploy/prepare.sh)")
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PACKAGE_DIR.glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT)
