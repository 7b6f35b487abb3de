"""One module per `wmprune` command (train, evaluate, export, sweep, report, plot, bench, runs): what the
command does, called by the thin CLI above; grid.py reads the grid files `sweep` trains."""
