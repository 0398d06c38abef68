"""The lexer against pyoxigraph itself: whenever pyoxigraph would call a SERVICE, the lexer sees it.

Queries are built (fixed seed) from fragments that have hidden clauses from tokenizers before:
code point escapes in IRIs and strings, brackets, quotes and ``#`` inside IRIs and strings,
comments ended by CR, long strings with quotes inside.  Each is *evaluated* by pyoxigraph on an
empty store inside a process under the network fence, with a SERVICE as the first element of
the WHERE group: a ``PermissionError`` means pyoxigraph tried to open a connection, i.e. it
read a live SERVICE.  For every such query the refusal rules must refuse it, and ``check``
must not call it valid.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGET = "<http://127.0.0.1:8123/x>"

BEFORE = [  # group elements before the SERVICE (each keeps the group valid)
    'BIND(<http://x/\\u0041#> AS ?z1)', 'BIND(<http://x/\\u0041(> AS ?z2)',
    "BIND(<http://x/\\u0041'> AS ?z3)", 'BIND(<http://x/\\u0041[]> AS ?z4)',
    'BIND("a\\u0041#" AS ?z5)', "BIND('\\u0022' AS ?z6)", 'BIND("""a"b#""" AS ?z7)',
    "BIND('''a'b''' AS ?z8)", 'BIND("\\"#" AS ?z9)', "# comment\r", "# comment\n",
    'BIND(<urn:a)b> AS ?z10)', 'BIND("\\\\u0041" AS ?z11)', "BIND(1.e5 AS ?z12)",
    'BIND("x"@en-GB AS ?z13)', 'BIND(<http://x/\\U00000041> AS ?z14)',
]
AFTER = ["", "# \"", "# '", "# #", 'FILTER(?z1 != "#")', "\r# x", "OPTIONAL { ?a ?b ?c }"]
PROJECTIONS = ["*", "(<http://x/\\u0023#> AS ?q)", "(\"\\u0027\" AS ?q)", "(1 AS ?q)"]

ORACLE = textwrap.dedent("""
    import json, sys
    from kgqa_validator import network_fence
    assert network_fence.install()
    import pyoxigraph
    from kgqa_validator.execution.refusal import refusal_reason
    from kgqa_validator.parsing.parse import parse_query
    out = []
    for text in json.load(sys.stdin):
        try:
            result = pyoxigraph.Store().query(text)
            if not isinstance(result, pyoxigraph.QueryBoolean):
                list(result)
            live = False
        except PermissionError:
            live = True
        except Exception:
            live = False
        parsed = parse_query(text, {})
        reason = refusal_reason(text, parsed, {}, allow_label_service=False, max_chars=100000)
        out.append({"live": live, "valid": parsed.valid_syntax, "refused": reason is not None,
                    "services": list(parsed.services)})
    json.dump(out, sys.stdout)
""")


def queries(count: int, seed: int = 8) -> list[str]:
    rng = random.Random(seed)
    found = []
    for _ in range(count):
        before = " ".join(rng.sample(BEFORE, rng.randint(0, 3)))
        after = rng.choice(AFTER)
        projection = rng.choice(PROJECTIONS)
        form = rng.choice([f"SELECT {projection} WHERE", "ASK"])
        # SERVICE first, so that on an empty store it is evaluated before anything else.
        found.append(f"{form} {{ SERVICE {TARGET} {{ ?s ?p ?o }} {before} {after}\n}}")
        found.append(f"{form} {{ {before} SERVICE {TARGET} {{ ?s ?p ?o }} {after}\n}}")
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs the network fence")
def test_every_service_pyoxigraph_would_call_is_seen():
    texts = queries(150)
    done = subprocess.run([sys.executable, "-c", ORACLE], input=json.dumps(texts).encode(),
                          capture_output=True, cwd=ROOT, timeout=300, check=True)
    results = json.loads(done.stdout)
    live = [(t, r) for t, r in zip(texts, results, strict=True) if r["live"]]
    assert len(live) > len(texts) // 4  # the oracle does see live SERVICE calls
    for text, result in live:
        assert result["refused"], text
        assert TARGET in result["services"] or not result["valid"], (text, result)
