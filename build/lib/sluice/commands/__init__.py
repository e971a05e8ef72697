"""Operator commands of the ``sluice`` CLI that are not one of the three services: schema
migration, users and grants, the local supervisor (``sluice up``) and the development front
proxy. The shared runtime the services import stays one level up, in ``sluice/``."""
