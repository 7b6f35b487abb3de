"""One module per `wmprune` command (train, evaluate, export, sweep, report, plot): what the command does,
called by the thin CLI above."""
