"""drconsole: a terminal operations console for PostgreSQL disaster recovery on Barman."""

__version__ = "0.1.0"
