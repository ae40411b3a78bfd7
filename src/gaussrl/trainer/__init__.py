"""Training, evaluation and plotting of the torch agents, and the ``gaussrl`` command line."""
