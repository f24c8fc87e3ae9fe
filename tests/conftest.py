"""Settings for the whole suite.

With pytest-xdist (`make test` runs two workers), each worker's grading runs take their
sandbox uids from a pool of their own: a test that looks for the processes or files of its
run's uid after the run must not find another worker's run, which could otherwise take the
same uid the moment it is given back.
"""
import os


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        os.environ["DLGRADE_SANDBOX_UID"] = str(61000 + 1000 * int(worker[2:]))
