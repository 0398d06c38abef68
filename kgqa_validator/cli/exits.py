"""The exit statuses of ``kgqa-validator`` (one list, shown by ``--help``)."""

from __future__ import annotations

EXIT_OK, EXIT_INVALID, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

EXIT_CODES_HELP = """\
exit status:
  0    everything valid (check) or a candidate accepted for every question (rerank)
  1    something invalid, or a question with no accepted candidate
  2    usage or infrastructure error (one line on stderr, never a traceback)
  130  interrupted (the results already written are kept)"""
