"""What outlives a process: model files (`checkpoint`) and the run history (`history`)."""
