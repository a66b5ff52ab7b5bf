"""LLM access: the chat protocol stages speak, the HTTP and offline backends, the cache and rate limits."""
