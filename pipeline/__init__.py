"""The Apache Beam curation pipeline (`lowbg curate`, `decide`, `index`, `manifest`, `report`).

Importing the package drops one stray warning of Beam's before any module here imports Beam: without the
``[gcp]`` extra, ``import apache_beam`` logs "apitools not found, and bigquery client libraries are not available"
on every local run, although nothing here uses BigQuery (:func:`common.cli.drop_apitools_warning`; the ``lowbg``
command also quiets the advice transformers and torch print, :func:`common.cli.quiet_library_warnings`). Every
other warning is untouched.
"""

from common.cli import drop_apitools_warning

drop_apitools_warning()
