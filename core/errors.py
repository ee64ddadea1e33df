"""The project's errors: each carries a message a user can act on, never a traceback."""


class DigitLabError(Exception):
    """Base of every error Digit Lab reports to a user."""


class DataError(DigitLabError):
    """A data file is missing, corrupt or inconsistent; the message names the file and the problem."""


class DataNotFoundError(DataError):
    """No MNIST copy was found anywhere and none could be downloaded."""


class ConfigError(DigitLabError):
    """A configuration value is out of range or inconsistent."""


class ModelFileError(DigitLabError):
    """A saved model file is unreadable, tampered with or does not match its config."""


class HistoryError(DigitLabError):
    """The run history database is unreadable, corrupt, from a newer Digit Lab, or cannot be written."""


class StudyError(DigitLabError):
    """A hyperparameter study or its storage cannot be opened or used."""
