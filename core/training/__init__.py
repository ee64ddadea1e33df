"""Training: settings (`config`), optimisers and schedules (`optimizers`), compiled programs (`programs`), the
chunked loop (`loop`), driving a run for a page or a command (`drive`), a run's status (`status`), evaluation
(`evaluation`), a run's record (`runs`) and the on-disk compile cache."""
