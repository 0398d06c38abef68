"""The exit statuses of ``kgqa-validator`` (one list, shown by ``--help``), and how help
text is laid out."""

from __future__ import annotations

import argparse
import textwrap

EXIT_OK, EXIT_INVALID, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

EXIT_CODES_HELP = """\
exit status:
  0    everything valid (check) or a candidate accepted for every question (rerank)
  1    something invalid, or a question with no accepted candidate
  2    usage or infrastructure error (one line on stderr, never a traceback)
  130  interrupted (the results already written are kept)"""


class HelpFormatter(argparse.HelpFormatter):
    """Prose paragraphs are wrapped to the terminal; an indented block or one under a heading
    (``examples:``, ``exit status:``) is shown as written, so commands stay copyable."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if lines and (lines[0].endswith(":") or any(line.startswith(" ") for line in lines)):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                blocks.append(textwrap.fill(" ".join(block.split()), width,
                                            initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(blocks)
