"""The executor's state as OpenMetrics: families, exposition, the file and the HTTP endpoint."""
