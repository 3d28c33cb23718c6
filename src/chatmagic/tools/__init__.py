"""Notebook functions offered to a model as tools: their schemas, calls and results."""
