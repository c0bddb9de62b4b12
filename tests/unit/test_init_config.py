from __future__ import annotations

import pytest

from dr_console.init_config import InitError, _ssh_host_of, parse_node, strip_password


def test_node_specs() -> None:
    spec = parse_node("bserver=bmuser@bserver:2222", None, None)
    assert spec.ssh is not None and (spec.ssh.user, spec.ssh.host, spec.ssh.port) == (
        "bmuser",
        "bserver",
        2222,
    )
    assert parse_node("geo=local", None, None).ssh is None
    v6 = parse_node("v6=bm@[::1]:22", None, None)
    assert v6.ssh is not None and v6.ssh.host == "::1"
    for bad in ("noequals", "x=", "x=bm@host:99999", "x=bm@host;rm", "b a=host"):
        with pytest.raises(InitError):
            parse_node(bad, None, None)


def test_passwords_never_survive() -> None:
    assert strip_password("host=pg password=s3cret user=bm") == "host=pg user=bm"
    assert strip_password("host=pg PASSWORD = 'a b' dbname=x") == "host=pg dbname=x"


def test_primary_host_from_ssh_command() -> None:
    assert _ssh_host_of("ssh bmuser@bserver") == "bserver"
    assert _ssh_host_of("ssh -p 2222 -o BatchMode=yes bm@10.0.0.1") == "10.0.0.1"
    assert _ssh_host_of(None) is None
