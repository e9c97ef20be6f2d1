"""The browser viewer behind ``sammoe view``: a thin HTTP layer over
:class:`~sammoe_core.segmentation.session.Session`, and the page that drives it (NiiVue).

:mod:`.state` holds what one opened volume needs (session, target colours, the save location),
:mod:`.app` maps it onto HTTP endpoints with the safety rules (token, host check, body limits,
errors as one-line JSON), :mod:`.assets` finds the page's files and the NiiVue bundle, and
:mod:`.server` runs it with uvicorn. The endpoints are documented in docs/view.md.
"""
