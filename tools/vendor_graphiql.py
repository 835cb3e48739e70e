"""Fetch the pinned GraphiQL, React and explorer-plugin builds into app/web/graphiql/.

Run from the repository root with Node's npm on the PATH:  .venv/bin/python tools/vendor_graphiql.py
To update, change a version below, run it, check the page (tests/e2e/test_graphiql_page.py) and
update the table in app/web/graphiql/README.md. `npm pack` downloads each package's tarball from the
npm registry exactly as published; only the browser bundles, their CSS and licences are kept.

GraphiQL's stylesheet carries its fonts and a few images as `data:` URLs. They are written out as
files beside it, so the page's Content-Security-Policy can stay self-only (`font-src 'self'`, no
`data:`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DEST = Path(__file__).resolve().parents[1] / "app" / "web" / "graphiql"
# package spec -> {file in the package tarball: name under DEST}
PACKAGES: dict[str, dict[str, str]] = {
    "react@18.2.0": {
        "umd/react.production.min.js": "react.production.min.js",
        "LICENSE": "LICENSE.react.txt",
    },
    "react-dom@18.2.0": {
        "umd/react-dom.production.min.js": "react-dom.production.min.js",
        "LICENSE": "LICENSE.react-dom.txt",
    },
    "graphiql@3.8.3": {
        "graphiql.min.js": "graphiql.min.js",
        "graphiql.min.css": "graphiql.min.css",
        "LICENSE": "LICENSE.graphiql.txt",
    },
    # The plugin's tarball has no LICENSE of its own: it is MIT, from the same graphql/graphiql
    # repository as graphiql (whose LICENSE covers it). It bundles graphiql-explorer, below.
    "@graphiql/plugin-explorer@1.0.2": {
        "dist/index.umd.js": "plugin-explorer.umd.js",
        "dist/style.css": "plugin-explorer.css",
    },
    "graphiql-explorer@0.9.0": {"LICENSE": "LICENSE.graphiql-explorer.txt"},
}
DATA_URL = re.compile(r"url\(data:(font/woff2?|image/png);base64,([A-Za-z0-9+/=]+)\)")
SUFFIXES = {"font/woff2": "woff2", "font/woff": "woff", "image/png": "png"}


def unpack(spec: str, workdir: Path) -> Path:
    packed = subprocess.run(  # noqa: S603 (npm, with our pinned specs)
        ["npm", "pack", spec, "--silent", "--pack-destination", str(workdir)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    target = workdir / packed.removesuffix(".tgz")
    with tarfile.open(workdir / packed) as archive:
        archive.extractall(target, filter="data")
    return target / "package"


def externalise_data_urls(css: str) -> tuple[str, dict[str, bytes]]:
    files: dict[str, bytes] = {}

    def replace(match: re.Match[str]) -> str:
        body = base64.b64decode(match.group(2))
        kind = "font" if match.group(1).startswith("font") else "image"
        name = f"{kind}-{hashlib.sha256(body).hexdigest()[:12]}.{SUFFIXES[match.group(1)]}"
        files[name] = body
        return f"url({name})"

    return DATA_URL.sub(replace, css), files


def main() -> int:
    for old in DEST.glob("*"):
        if old.name not in {"README.md", "index.html", "modelgate-graphiql.js", "modelgate-graphiql.css"}:
            old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        for spec, files in PACKAGES.items():
            package = unpack(spec, Path(tmp))
            for source, name in files.items():
                shutil.copyfile(package / source, DEST / name)
    css, extracted = externalise_data_urls((DEST / "graphiql.min.css").read_text(encoding="utf-8"))
    (DEST / "graphiql.min.css").write_text(css, encoding="utf-8")
    for name, body in extracted.items():
        (DEST / name).write_bytes(body)
    for path in sorted(DEST.iterdir()):
        print(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
