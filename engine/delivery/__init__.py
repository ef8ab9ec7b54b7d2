"""Delivery guarantees: idempotency, ordering per record and serialization per record."""

from engine.delivery.processor import EventProcessor, ProcessResult

__all__ = ["EventProcessor", "ProcessResult"]
