"""The training side of the harness: configuration, model building, the loop, run directories."""
