"""One JSON encoding for answers and events (`kafka_integration.encoding`, re-exported here)."""

from __future__ import annotations

from kafka_integration.encoding import dumps

__all__ = ["dumps"]
