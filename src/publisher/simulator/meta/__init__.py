"""What the simulated Facebook and Instagram share (graph.py): Graph errors, tokens, paging."""
