"""``python -m kgqa_validator.cli``: the same as the ``kgqa-validator`` command."""

import sys

from kgqa_validator.cli.main import main

sys.exit(main())
