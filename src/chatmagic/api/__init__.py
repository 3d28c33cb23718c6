"""The Python API: prompt(), aprompt(), conversation(), map() and their responses."""
