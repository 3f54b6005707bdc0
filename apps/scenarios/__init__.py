"""Example simulation scenarios (YAML) for ``agentcore sim``: ``town``, ``market``, ``debate``.

A package only so the YAML files ship as package data; it holds no code.
"""
