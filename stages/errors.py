"""The errors a user can act on. `python -m stages` prints them as one message and exits 1."""


class StageError(Exception):
    """A problem with the user's params or data, or a run that cannot go on; never a bug."""
