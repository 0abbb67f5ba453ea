"""A local Genesys Cloud emulator: OAuth token, Data Actions catalog/execute/test, workflow executions.

    from dataactions.emulator import EmulatorServer, Scenario

    with EmulatorServer(Scenario.default()) as emulator:
        ...  # point a client at emulator.base_url; read emulator.stats()

See README.md beside this file for the scenario format.
"""

from dataactions.emulator.app import create_app
from dataactions.emulator.canonical import input_digest
from dataactions.emulator.scenario import DEFAULT_SCENARIO_PATH, Scenario, load_scenario
from dataactions.emulator.server import EmulatorProcess, EmulatorServer, serve

__all__ = [
    "DEFAULT_SCENARIO_PATH",
    "EmulatorProcess",
    "EmulatorServer",
    "Scenario",
    "create_app",
    "input_digest",
    "load_scenario",
    "serve",
]
