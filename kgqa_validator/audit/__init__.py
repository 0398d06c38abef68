"""Dataset audit: which question/query pairs of a dataset are wrong, and why.

``kgqa-validator audit DATASET --out DIR`` (:mod:`~kgqa_validator.audit.command`) reads a
dataset (:mod:`~kgqa_validator.audit.readers`), computes duplicate groups in a first streaming
pass (:mod:`~kgqa_validator.audit.groups`), audits batches of pairs on this machine
(:mod:`~kgqa_validator.audit.engine_local`) or on Ray (:mod:`~kgqa_validator.audit.engine_ray`)
with one :class:`~kgqa_validator.audit.auditor.Auditor`, and writes ``pairs.jsonl`` (resumable,
:mod:`~kgqa_validator.audit.resume`), ``summary.json`` (:mod:`~kgqa_validator.audit.output`)
and ``report.html`` (:mod:`~kgqa_validator.audit.report_html`).  Reason codes are in
:mod:`~kgqa_validator.audit.reasons`.
"""
