"""Files sammoe writes and trusts: atomic writes, sha256 digests, and containment of paths that
come from data."""
