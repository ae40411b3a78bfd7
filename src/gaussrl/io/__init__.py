"""Files: atomic writes, checkpoints and export."""
