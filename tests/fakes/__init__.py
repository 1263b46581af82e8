"""Protocol fakes for servers that cannot run here. Only Exchange (EWS) qualifies."""

from __future__ import annotations
