#!/usr/bin/env python3
"""Refresh the page's vendored front-end libraries in edge/web/static/vendor/.

Developer tool (needs `npm` and the npm registry; the service and its install never
do): `npm pack`s the pinned versions into a temporary directory, copies only the files
the page loads plus each package's LICENSE, and writes VENDOR.md and SHA256SUMS
(checked by tests/web/test_static.py). Two edits are made while copying, and listed
in VENDOR.md: preact/hooks imports the bare specifier "preact", rewritten to
"./preact.mjs" so the page needs no import map; and `sourceMappingURL` comments are
dropped, since the maps are not vendored (a browser's devtools would ask for them).

    python tools/vendor_web.py
"""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "edge" / "web" / "static" / "vendor"

# package, version, licence, {file in the tarball: name in vendor/}
PACKAGES = [
    ("preact", "11.2.0", "MIT",
     {"dist/preact.mjs": "preact.mjs", "hooks/dist/hooks.mjs": "hooks.mjs"}),
    ("htm", "3.1.1", "Apache-2.0", {"dist/htm.mjs": "htm.mjs"}),
    ("uplot", "1.6.32", "MIT",
     {"dist/uPlot.iife.min.js": "uPlot.iife.min.js", "dist/uPlot.min.css": "uPlot.min.css"}),
]  # fmt: skip
SOURCE_MAP = re.compile(rb"\n?//# sourceMappingURL=\S+\s*$")


def _edit(name: str, data: bytes) -> bytes:
    data = SOURCE_MAP.sub(b"\n", data)
    if name == "hooks.mjs":
        data, count = re.subn(rb"""from\s*(["'])preact\1""", b'from"./preact.mjs"', data)
        if count != 1:
            sys.exit(f"hooks.mjs: expected one import of 'preact', found {count}")
    return data


def main() -> None:
    VENDOR.mkdir(parents=True, exist_ok=True)
    for old in VENDOR.iterdir():
        old.unlink()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        specs = [f"{name}@{version}" for name, version, _, _ in PACKAGES]
        subprocess.run(["npm", "pack", "--silent", *specs], cwd=tmp, check=True)
        for name, version, licence, files in PACKAGES:
            tarball = Path(tmp) / f"{name}-{version}.tgz"
            sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
            with tarfile.open(tarball) as tar:

                def member(path: str, tar: tarfile.TarFile = tar) -> bytes:
                    extracted = tar.extractfile(f"package/{path}")
                    assert extracted is not None, path
                    return extracted.read()

                (VENDOR / f"LICENSE-{name}").write_bytes(member("LICENSE"))
                for source, target in files.items():
                    data = _edit(target, member(source))
                    (VENDOR / target).write_bytes(data)
                    size = len(data)
                    packed = len(gzip.compress(data, 9))
                    cells = [f"`{target}`", f"{name} {version}", licence, f"`{source}`"]
                    cells += [f"{size:,}", f"{packed:,}"]
                    rows.append("| " + " | ".join(cells) + " |")
            rows.append(f"|  | tarball sha256 `{sha[:16]}…` | | `LICENSE-{name}` | | |")
    (VENDOR / "VENDOR.md").write_text(
        "# Vendored front-end libraries\n\n"
        "Written by `tools/vendor_web.py` from `npm pack` of the versions below; do not edit\n"
        "by hand. Edits made while copying: `hooks.mjs` imports `./preact.mjs` instead of\n"
        "the bare `preact` (no import map needed); `sourceMappingURL` comments removed (the\n"
        "maps are not vendored).\n\n"
        "| file | package | licence | from | bytes | gzip -9 |\n|---|---|---|---|--:|--:|\n"
        + "\n".join(rows)
        + "\n"
    )
    sums = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}"
        for path in sorted(VENDOR.iterdir())
        if path.name != "SHA256SUMS"
    ]
    (VENDOR / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    print(f"vendored into {VENDOR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
