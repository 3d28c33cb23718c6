"""What is kept on disk: conversations, finished --each rows, Batch API jobs (JSON lines)."""
