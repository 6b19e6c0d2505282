"""Lambda entry points: parse the event, call the engine, shape the response."""
