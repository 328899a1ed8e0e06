"""What every part of shopfloor shares: the settings (`settings`) and the warehouse they
point at, an embedded DuckDB file or a DuckLake lakehouse (`warehouse`)."""
