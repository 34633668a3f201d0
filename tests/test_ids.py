"""Ids are version-4 UUIDs, unique, and a forked worker never repeats its parent's sequence."""

from __future__ import annotations

import os
import uuid
import warnings

from mock_server.ids import new_id, new_seed


def test_ids_are_distinct_version_4_uuids_and_seeds_fit_31_bits():
    ids = [new_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:2000]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    seeds = [new_seed() for _ in range(20000)]
    assert min(seeds) >= 0 and max(seeds) < 2**31 and len(set(seeds)) > 19000


def test_a_forked_child_draws_other_ids_than_its_parent():
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns of fork() beside threads; this child only writes
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # the child: its next ids, to the parent
        os.write(write, " ".join(new_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        theirs = pipe.read().split()
    assert len(theirs) == 3 and not set(theirs) & {new_id() for _ in range(3)}
