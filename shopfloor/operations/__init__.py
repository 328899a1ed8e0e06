"""Keeping the plant's data safe and sized: backup and restore (`backup`), capacity and
cost (`capacity`)."""
