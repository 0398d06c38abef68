"""``python -m kgqa_validator.parsing.worker``: a parser process (see :mod:`.guard`)."""

from kgqa_validator.parsing.guard import worker_main

if __name__ == "__main__":
    worker_main()
