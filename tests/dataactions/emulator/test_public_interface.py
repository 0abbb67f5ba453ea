"""The emulator's public names: others build on exactly these."""

from __future__ import annotations

import dataactions.emulator as emulator


def test_the_package_exports_exactly_its_public_interface() -> None:
    assert emulator.__all__ == [
        "DEFAULT_SCENARIO_PATH",
        "EmulatorProcess",
        "EmulatorServer",
        "Scenario",
        "create_app",
        "input_digest",
        "load_scenario",
        "serve",
    ]
    assert all(hasattr(emulator, name) for name in emulator.__all__)
    assert emulator.DEFAULT_SCENARIO_PATH.is_file()
