"""Reliability drills: the whole system on loopback, broken on purpose while it works, then checked
(``make drill``; the short one runs in ``make test``). See ``drill.main``."""
