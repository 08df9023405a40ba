"""The flush's Redis command packer in C (store/_resp.c) against hiredis.pack_command, the
reference it stands in for: the very bytes for every command it packs, and None (hiredis
then packs, or raises its own error) for every argument it leaves to hiredis."""

from __future__ import annotations

import random

import hiredis
import pytest

from collector.native import c_module
from collector.store import redis_client

C_RESP = c_module("collector.store._resp")
pytestmark = pytest.mark.skipif(C_RESP is None, reason="store/_resp.c is not built (pip install -e .)")

INT64 = (0, 1, -1, 9, 10, -10, 2**31, -(2**31), 2**63 - 1, -(2**63), 1_900_000_000, 86_400 * 400)
TEXTS = ("", "h", "EVALSHA", "eb:app:day:20261201:c", "页面/首页", "é", "a\r\nb", "\x00", "x" * 70_000, "🎓" * 3)
LEFT_TO_HIREDIS = (1.5, -0.0, float("inf"), 2**63, -(2**63) - 1, 10**40, True, False, memoryview(b"mv"),
                   bytearray(b"ba"), None, "\ud800", "a\udfffb", [1], (1,), {"a": 1})


class Text(str):
    pass


class Number(int):
    pass


class Data(bytes):
    pass


def hiredis_or_error(args: tuple) -> bytes | str:
    try:
        return hiredis.pack_command(args)
    except Exception as error:  # noqa: BLE001 - the type is the answer compared
        return type(error).__name__


def answers(args: tuple) -> tuple[object, object]:
    """(what the C packer answers, what hiredis answers) for one command."""
    return C_RESP.pack_command(args), hiredis_or_error(args)


@pytest.mark.parametrize("arg", [*INT64, *TEXTS, b"", b"\xff\xfe", b"x" * 70_000])
def test_each_kind_it_packs_is_hiredis_bytes(arg):
    ours, reference = answers(("SET", arg, arg))
    assert ours == reference


@pytest.mark.parametrize("arg", [*LEFT_TO_HIREDIS, Text("t"), Number(3), Data(b"d")])
def test_what_it_leaves_to_hiredis_it_answers_none_and_pack_still_answers_as_hiredis(arg):
    ours, reference = answers(("SET", "k", arg))
    assert ours is None
    try:
        packed = redis_client.pack("SET", "k", arg)
    except Exception as error:  # noqa: BLE001
        packed = type(error).__name__
    assert packed == reference


def test_an_empty_command_is_hiredis_bytes():
    assert answers(()) == (hiredis_or_error(()),) * 2


def test_not_a_tuple_is_a_type_error():
    with pytest.raises(TypeError):
        C_RESP.pack_command(["SET", "k", "v"])


def _draw(rng: random.Random) -> object:
    """An argument: mostly of the kinds the C packer takes (edges among them), now and then
    one it leaves to hiredis."""
    if rng.random() < 0.005:
        return rng.choice(LEFT_TO_HIREDIS)
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(INT64) + rng.randint(-3, 3) if rng.random() < 0.3 else rng.randint(-(10**12), 10**12)
    if kind == 1:
        return rng.getrandbits(rng.randint(1, 64)) * rng.choice((1, -1))  # now and then past 64 bits
    if kind == 2:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
    alphabet = "abcxyz:_-0123456789" if kind < 5 else "aé页🎓\r\n\x00"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))


def test_random_commands_pack_as_hiredis_packs_them():
    rng = random.Random(20261201)
    packed_by_c = 0
    for _ in range(5_000):
        args = tuple(_draw(rng) for _ in range(rng.randint(0, 40)))
        ours, reference = answers(args)
        if ours is None:
            continue
        packed_by_c += 1
        assert ours == reference, args
    assert packed_by_c > 3_000  # the draws reach the C path, not only the fallback


def test_random_commands_through_pack_answer_as_hiredis():
    rng = random.Random(7)
    for _ in range(2_000):
        args = tuple(_draw(rng) for _ in range(rng.randint(1, 12)))
        try:
            packed: object = redis_client.pack(*args)
        except Exception as error:  # noqa: BLE001
            packed = type(error).__name__
        assert packed == hiredis_or_error(args), args
