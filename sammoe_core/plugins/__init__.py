"""The plugin contract (:mod:`.hookspecs`), the host that loads plugins without letting one break
sammoe (:mod:`.host`), the named factories they register (:mod:`.factories`), and sammoe's own
features registered through the same hooks (:mod:`.builtins`)."""
