"""A local emulator of the Zoho CRM v8 subset the connector uses, over real HTTP."""

from engine.emulator.app import EmulatorSettings, Fault
from engine.emulator.server import EmulatorServer

__all__ = ["EmulatorServer", "EmulatorSettings", "Fault"]
