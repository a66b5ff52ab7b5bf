"""Running calls for real: Python functions in worker processes, REST APIs over HTTP."""
