"""The files the page is made of: our HTML, JavaScript and CSS, and the NiiVue bundle.

NiiVue (npm ``@niivue/niivue``, BSD-2-Clause) is never committed here: ``setup.py`` copies its
self-contained UMD build from ``node_modules`` (``npm ci`` against ``package-lock.json``) into
``static/vendor/`` when sammoe is installed, with its licence; the server only ever serves the
fixed files listed in :data:`PAGE_FILES`, so no path from a client is opened.
"""

from __future__ import annotations

from pathlib import Path

from sammoe_core.errors import SammoeError

STATIC = Path(__file__).parent / "static"
NIIVUE_BUNDLE = STATIC / "vendor" / "niivue.umd.js"
NIIVUE_LICENCE = STATIC / "vendor" / "NIIVUE-LICENSE.txt"

# URL name -> (file, media type): everything the page loads besides the API
PAGE_FILES = {
    "viewer.js": (STATIC / "viewer.js", "text/javascript"),
    "viewer.css": (STATIC / "viewer.css", "text/css"),
    "niivue.umd.js": (NIIVUE_BUNDLE, "text/javascript"),
    "NIIVUE-LICENSE.txt": (NIIVUE_LICENCE, "text/plain"),
}
INDEX_HTML = STATIC / "index.html"


def check_niivue() -> Path:
    """The NiiVue bundle's path, or an error saying how to put it there."""
    if not NIIVUE_BUNDLE.is_file():
        raise SammoeError(
            f"the viewer's NiiVue bundle is missing ({NIIVUE_BUNDLE}); it is built when sammoe is installed from "
            "its repository with npm on the PATH: run `npm ci` in the repository, then reinstall (pip install -e .)"
        )
    return NIIVUE_BUNDLE
