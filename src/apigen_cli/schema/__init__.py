"""Tool schemas: the dialects people write tools in, the argument type checks, and the API library."""
