from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.ids import LEG_ENTRY, LEG_EXIT, MAX_LENGTH, MAX_SEQ, client_order_id, sequence_of

SHAPE = re.compile(r"TW[A-Z2-7]{20}[A-Z]{1,4}[0-9]{1,6}")
workflow_ids = st.text(min_size=1, max_size=80)
legs = st.from_regex(r"[A-Z]{1,4}", fullmatch=True)
seqs = st.integers(0, MAX_SEQ)


def test_layout_is_the_documented_one() -> None:
    digest = hashlib.sha256(b"ns\x00trade-alpha-1").digest()
    hashed = base64.b32encode(digest).decode()[:20]
    assert client_order_id("trade-alpha-1", "SL", 7, namespace="ns") == f"TW{hashed}SL7"


def test_known_value_is_stable() -> None:
    # Pinned: a change here would re-send orders under new ids after an upgrade.
    assert client_order_id("trade-alpha-1", LEG_ENTRY, 0) == "TW45PCVPQDTIBJUKKRCXAKE0"
    assert client_order_id("trade-alpha-1", LEG_EXIT, 12) == "TW45PCVPQDTIBJUKKRCXAKX12"


@given(workflow_ids, legs, seqs, st.text(max_size=20).filter(lambda s: "\x00" not in s))
def test_shape_charset_length_and_determinism(wf: str, leg: str, seq: int, ns: str) -> None:
    cid = client_order_id(wf, leg, seq, namespace=ns)
    assert SHAPE.fullmatch(cid) and len(cid) <= MAX_LENGTH and cid.isalnum() and cid.isascii()
    assert cid == client_order_id(wf, leg, seq, namespace=ns)


@given(st.tuples(workflow_ids, legs, seqs), st.tuples(workflow_ids, legs, seqs))
def test_distinct_inputs_give_distinct_ids(
    a: tuple[str, str, int], b: tuple[str, str, int]
) -> None:
    if a != b:
        assert client_order_id(*a) != client_order_id(*b)


def test_many_sequential_ids_are_distinct() -> None:
    ids = {
        client_order_id(f"trade-s-{n}", leg, seq)
        for n in range(200)
        for leg in ("E", "X", "TP", "SL")
        for seq in range(25)
    }
    assert len(ids) == 200 * 4 * 25


def test_namespace_separates_installations() -> None:
    assert client_order_id("trade-s-1", "E", 0) != client_order_id(
        "trade-s-1", "E", 0, namespace="install-b"
    )


@pytest.mark.parametrize(
    ("wf", "leg", "seq", "ns"),
    [
        ("", "E", 0, ""),
        ("w", "", 0, ""),
        ("w", "e", 0, ""),
        ("w", "ENTRY", 0, ""),
        ("w", "E1", 0, ""),
        ("w", "E", -1, ""),
        ("w", "E", MAX_SEQ + 1, ""),
        ("w", "E", True, ""),
        ("w", "E", 1.0, ""),
        ("w", "E", 0, "a\x00b"),
    ],
)
def test_bad_inputs_are_refused(wf: str, leg: str, seq: int, ns: str) -> None:
    with pytest.raises(ValueError):
        client_order_id(wf, leg, seq, namespace=ns)


@given(workflow_ids, legs, seqs, st.text(max_size=20).filter(lambda s: "\x00" not in s))
def test_the_sequence_number_is_read_back_from_an_id(wf: str, leg: str, seq: int, ns: str) -> None:
    assert sequence_of(client_order_id(wf, leg, seq, namespace=ns)) == seq


def test_a_foreign_client_id_has_no_sequence_number() -> None:
    with pytest.raises(ValueError):
        sequence_of("my-own-order")
