#!/usr/bin/env python3
"""Write this deployment's secrets into .env beside docker-compose.yml, readable by its owner only.

    python3 docker/generate_env.py            # or --output PATH

docker-compose.yml has no default for FPSLINK_OPERATOR_KEY, FPSLINK_IBPS_TOKEN, POSTGRES_PASSWORD or
GRAFANA_ADMIN_PASSWORD (the `observe` profile's Grafana): each deployment gets its own, 256 random
bits apiece. A variable the file already sets is kept (so running it again changes nothing, and a
value of your own stays); only missing ones are added, so a .env written before Grafana came gets
its password by running this again. Only the standard library: it runs on the host, before any
image is built.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import stat
import sys
from pathlib import Path

SECRETS = ("FPSLINK_OPERATOR_KEY", "FPSLINK_IBPS_TOKEN", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
"""URL-safe values: the PostgreSQL password sits inside the services' database URLs as it is."""
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / ".env"


def present(text: str) -> set[str]:
    """The variables a .env text sets to a non-empty value."""
    found = re.findall(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S.*)?$", text, re.MULTILINE)
    return {name for name, value in found if value and value.strip("'\"")}


def generate(output: Path) -> list[str]:
    """Add the missing secrets to `output` (created 0600 if absent); returns the names added."""
    text = output.read_text() if output.exists() else ""
    missing = [name for name in SECRETS if name not in present(text)]
    if not output.exists():
        os.close(os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    output.chmod(stat.S_IRUSR | stat.S_IWUSR)
    if missing:
        lines = [f"{name}={secrets.token_urlsafe(32)}\n" for name in missing]
        with output.open("a") as out:
            out.write(("" if not text or text.endswith("\n") else "\n") + "".join(lines))
    return missing


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the .env file to write")
    args = parser.parse_args(argv)
    added = generate(args.output)
    kept = [name for name in SECRETS if name not in added]
    print(f"{args.output}: added {', '.join(added) or 'nothing'}; kept {', '.join(kept) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
