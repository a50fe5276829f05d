"""Training algorithms for the neural baselines."""
