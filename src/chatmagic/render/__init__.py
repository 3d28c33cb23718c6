"""Drawing replies: `html` (model text as safe HTML), `pieces` (a stream cut into pieces) and
`mathml` are plain Python the core may use; `cell`, `columns` and `text` are the thin shell
that draws a `Run` in a notebook or a terminal (they import IPython, so nothing here does)."""
