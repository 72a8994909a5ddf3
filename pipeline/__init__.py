"""The Apache Beam curation pipeline (`lowbg curate`, `decide`, `index`, `manifest`).

Importing the package drops one stray warning of Beam's before any module here imports Beam: without the
``[gcp]`` extra, ``import apache_beam`` logs "apitools not found, and bigquery client libraries are not available"
on every local run, although nothing here uses BigQuery. Only that record is dropped (a filter on the root
logger, which is where Beam logs it); every other warning is untouched.
"""

import logging


class _DropApitoolsWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and str(record.msg).startswith("apitools not found"))


logging.getLogger().addFilter(_DropApitoolsWarning())
