"""Build hook: put the NiiVue bundle that ``sammoe view`` serves into the package.

NiiVue (npm ``@niivue/niivue``, BSD-2-Clause) is a dependency, never committed here. When
sammoe is built or installed (``pip install .`` or ``-e .``), ``npm ci`` installs the version
``package-lock.json`` pins, and its self-contained UMD build is copied with its licence into
``sammoe_core/viewer/static/vendor/`` (git-ignored). Without npm, or offline, the install still
succeeds with a warning, and ``sammoe view`` says how to add the bundle. Everything else is in
pyproject.toml.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "node_modules" / "@niivue" / "niivue"
VENDOR = ROOT / "sammoe_core" / "viewer" / "static" / "vendor"
BSD_2 = """Redistribution and use in source and binary forms, with or without modification, are permitted
provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this list of conditions
   and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice, this list of
   conditions and the following disclaimer in the documentation and/or other materials provided
   with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR
IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND
FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR
CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE,
DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER
IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF
THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


def _warn(message: str) -> None:
    print(f"sammoe setup: {message}; `sammoe view` will ask for it (see docs/view.md)", file=sys.stderr)


def vendor_niivue() -> None:
    """Copy NiiVue's bundle and licence into the package, running ``npm ci`` first if needed."""
    bundle = PACKAGE / "dist" / "niivue.umd.js"
    if not bundle.is_file():
        npm = shutil.which("npm")
        if npm is None:
            _warn("npm is not on the PATH, so the NiiVue bundle was not installed")
            return
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=optional", "--omit=dev"]
        command += ["--fetch-retries=1", "--fetch-timeout=60000"]  # offline: fail within minutes, not hang
        try:
            subprocess.run(command, cwd=ROOT, check=True, timeout=300, stdout=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            _warn(f"`npm ci` failed ({e}), so the NiiVue bundle was not installed")
            return
    meta = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    VENDOR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, VENDOR / "niivue.umd.js")
    notice = (
        f"niivue.umd.js is NiiVue {meta['version']} (npm {meta['name']}, {meta['repository']['url']}),\n"
        f"licence {meta['license']} as its package.json declares. Copyright (c) the {meta['author']}.\n\n"
    )
    (VENDOR / "NIIVUE-LICENSE.txt").write_text(notice + BSD_2, encoding="utf-8")


class BuildPyWithNiivue(build_py):
    def run(self) -> None:
        vendor_niivue()
        super().run()


setup(cmdclass={"build_py": BuildPyWithNiivue})
