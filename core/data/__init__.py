"""Datasets: what their examples look like (`spec`), reading their files (`formats`), finding or downloading
them (`locate`, `download`) and splitting them for training (`splits`)."""
