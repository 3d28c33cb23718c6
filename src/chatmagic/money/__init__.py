"""What endpoints say about money: the account's own figures (balance, used, limit)."""
