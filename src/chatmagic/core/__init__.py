"""The vocabulary every layer speaks: events, failures, options, profiles, prices, schemas.

Plain typed Python: no IPython, no ipywidgets, no HTTP."""
