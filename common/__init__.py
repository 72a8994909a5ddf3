"""Beam-free pieces every part of lowbackground shares: the command-line contract and stable hash fractions.

``pipeline/``, ``detectors/`` and ``collapse/`` all import from here, and this package imports none of them but
``detectors``' plain constants (no Beam, no torch, no pyarrow):

* :mod:`common.cli`: the error shape of every `lowbg` command (one line on stderr, exit 2 for bad usage or
  input, 1 for a run that failed), the argparse subclass that gives it, and the value types that check ranges;
* :mod:`common.flags`: the table of flags that several commands take, so that each is spelled, checked,
  defaulted and explained the same way everywhere;
* :mod:`common.hashing`: the deterministic "hash a key to a number in [0, 1)" used for every sample and split.
"""
