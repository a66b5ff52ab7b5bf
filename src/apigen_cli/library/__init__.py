"""The API library: loading it, and (to come) importing it from Python packages, OpenAPI, MCP and ToolBench."""
