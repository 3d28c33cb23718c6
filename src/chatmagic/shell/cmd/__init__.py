"""The subcommands of the line magics, each a function of (arguments, session, ...) returning what to show."""
