"""What the plant's people read: the marts published as an immutable DuckDB snapshot
(`snapshot`) or to PostgreSQL (`postgres`), and the questions asked of them (`marts`)."""
