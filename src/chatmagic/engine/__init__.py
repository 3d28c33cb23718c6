"""The exchange engine: requests planned, sent, retried and folded into replies."""
