"""The viewer in a notebook: serve a :class:`~sammoe_core.segmentation.session.Session` in a
background thread and show the page in an iframe.

    >>> viewer = NotebookViewer(session, "liver_seg.nii.gz")   # Save writes there
    >>> viewer                                                 # Jupyter shows the page
    >>> viewer.stop()

The session stays the notebook's: clicks in the page and calls in Python edit the same targets.
The iframe points at 127.0.0.1, so the notebook's browser must run on the machine of the kernel
(or reach it through a tunnel, as in docs/view.md).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from sammoe_core.segmentation.session import Session


class NotebookViewer:
    """The viewer's page for ``session`` on 127.0.0.1, shown by Jupyter as an iframe."""

    def __init__(self, session: Session, output: str | Path, *, port: int = 0, height: int = 720) -> None:
        from sammoe_core.viewer import server
        from sammoe_core.viewer.app import create_app
        from sammoe_core.viewer.assets import check_niivue
        from sammoe_core.viewer.state import SavePlan, ViewerState

        check_niivue()
        port = server.check_port("127.0.0.1", port)
        self.state = ViewerState(session, SavePlan(Path(output), session.volume.source))
        self._server = server.serve_in_background(create_app(self.state), "127.0.0.1", port)
        self.url = server.url_of("127.0.0.1", port, None)
        self.height = int(height)

    def stop(self) -> None:
        """Stop serving (the session and anything saved stay)."""
        self._server.should_exit = True

    def _repr_html_(self) -> str:
        src = html.escape(self.url, quote=True)
        return f'<iframe src="{src}" width="100%" height="{self.height}" style="border:0"></iframe>'

    def __repr__(self) -> str:
        return f"NotebookViewer({self.url})"

    def __enter__(self) -> NotebookViewer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
