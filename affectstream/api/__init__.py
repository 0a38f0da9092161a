"""FastAPI application: sessions, markers, live stream, exports and the dashboard."""
