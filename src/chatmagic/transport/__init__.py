"""One request over HTTP through the openai SDK: clients, the SSE reader, chunks to events."""
