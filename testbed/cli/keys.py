"""``testbed keys``: generate CURVE key pairs for the control plane (the BS and each UE).

Each NAME gets ``NAME.key`` (public, 0644: copy it to the peers) and ``NAME.key_secret`` (0600: never leaves
the machine). The BS's allow-list is a directory holding the UEs' ``<ue_id>.key`` files.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from testbed.cli._output import add_json_flag, emit, format_table


def register(subparsers: Any) -> None:
    """Add ``testbed keys DIR NAME [NAME ...]``."""
    parser = subparsers.add_parser("keys", help="generate CURVE key pairs for the control plane")
    parser.add_argument("directory", type=Path, help="where to write NAME.key and NAME.key_secret")
    parser.add_argument("names", nargs="+", help="one key pair per name: 'bs' and the UE ids (e.g. ue-1)")
    parser.add_argument("--force", action="store_true", help="replace existing key files")
    add_json_flag(parser)
    parser.set_defaults(func=_keys)


def _keys(args: argparse.Namespace) -> int:
    from testbed.control.protocol import UE_ID_PATTERN, UE_ID_RE
    from testbed.control.security import generate_keypair
    from testbed.errors import ConfigError

    for name in args.names:
        if not UE_ID_RE.match(name):
            raise ConfigError(f"key name {name!r} must be a valid id ({UE_ID_PATTERN}): it becomes the UE id")
    existing = [n for n in args.names if (args.directory / f"{n}.key_secret").exists()]
    if existing and not args.force:
        raise ConfigError(f"key pairs for {', '.join(existing)} exist in {args.directory}; pass --force to replace")
    pairs = [generate_keypair(args.directory, name, overwrite=args.force) for name in args.names]
    result = {
        "keys": [
            {"name": name, "public_file": str(p.public_file), "secret_file": str(p.secret_file),
             "public_key": p.public_key.decode("ascii")}
            for name, p in zip(args.names, pairs, strict=True)
        ]
    }  # fmt: skip

    def human(r: dict[str, Any]) -> str:
        rows = [[k["name"], k["public_key"], k["secret_file"]] for k in r["keys"]]
        return format_table(["name", "public key (Z85)", "secret file (0600)"], rows)

    emit(result, as_json=args.json, human=human)
    return 0
