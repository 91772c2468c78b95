"""The kernel API, one module per include/linux header group; bottomhalf.linux
re-exports it for ``from bottomhalf.linux import *``."""
