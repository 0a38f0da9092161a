"""Time-series storage: the TimeSeriesStore interface, embedded default, InfluxDB, spool."""
