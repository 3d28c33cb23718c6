"""The IPython side: magics, subcommand handlers, widget and display sinks, completion.

The only package that imports IPython, ipywidgets, ipykernel or traitlets."""
