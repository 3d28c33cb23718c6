"""What draws a run in a cell: live widgets or display handles, text in a terminal."""
