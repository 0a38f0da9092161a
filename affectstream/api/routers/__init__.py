"""One router per resource; each handler parses, calls the service layer, serialises."""
