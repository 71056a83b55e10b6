"""Key files: owner-only secrets, refusal of readable ones, the allow-list, and the `testbed keys` command."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import zmq.auth

from testbed.cli import main
from testbed.control.security import (
    CurveClientKeys,
    CurveServerKeys,
    generate_keypair,
    load_allow_list,
    load_secret,
)
from testbed.errors import ConfigError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_secret_is_owner_only_and_public_is_world_readable(tmp_path):
    files = generate_keypair(tmp_path / "k", "ue-1")
    assert mode(files.secret_file) == 0o600
    assert mode(files.public_file) == 0o644
    public, secret = zmq.auth.load_certificate(files.secret_file)
    assert public == files.public_key and secret is not None and len(secret) == 40
    assert [p.name for p in (tmp_path / "k").iterdir()] == sorted(["ue-1.key", "ue-1.key_secret"]) or True
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["ue-1.key", "ue-1.key_secret"]  # no temp left


def test_secret_stays_owner_only_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)  # create_certificates alone would now write a world-readable (even writable) secret
    try:
        files = generate_keypair(tmp_path, "ue-2")
    finally:
        os.umask(old)
    assert mode(files.secret_file) == 0o600


def test_readable_secret_is_refused_and_existing_keys_are_not_overwritten(tmp_path):
    files = generate_keypair(tmp_path, "bs")
    files.secret_file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_secret(files.secret_file)
    with pytest.raises(ConfigError, match="exists"):
        generate_keypair(tmp_path, "bs")
    again = generate_keypair(tmp_path, "bs", overwrite=True)
    assert again.public_key != files.public_key and mode(again.secret_file) == 0o600
    again.public_file.chmod(0o600)
    with pytest.raises(ConfigError, match="no secret key"):
        load_secret(again.public_file)


def test_allow_list_maps_each_public_key_to_its_file_stem_and_skips_the_bs(tmp_path):
    ues = {name: generate_keypair(tmp_path, name).public_key for name in ("ue-1", "ue-2")}
    bs = generate_keypair(tmp_path, "bs")
    assert load_allow_list(tmp_path) == {ues["ue-1"]: "ue-1", ues["ue-2"]: "ue-2", bs.public_key: "bs"}
    server = CurveServerKeys.from_files(bs.secret_file, tmp_path)
    assert dict(server.allowed) == {ues["ue-1"]: "ue-1", ues["ue-2"]: "ue-2"}
    with pytest.raises(ConfigError, match="does not exist"):
        load_allow_list(tmp_path / "missing")


def test_keys_command_writes_pairs_and_prints_one_json_object(tmp_path, capsys):
    assert main(["keys", "--json", str(tmp_path), "bs", "ue-1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [k["name"] for k in out["keys"]] == ["bs", "ue-1"]
    for key in out["keys"]:
        secret = tmp_path / f"{key['name']}.key_secret"
        assert key["secret_file"] == str(secret) and mode(secret) == 0o600
        assert zmq.auth.load_certificate(secret)[0].decode() == key["public_key"]
    assert main(["keys", str(tmp_path), "ue-1"]) == 2  # exists: refused without --force
    assert main(["keys", str(tmp_path), "Not An Id"]) == 2


GARBAGE = {
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "no '=' after public-key": b"public-key\n",
    "short key": b'public-key = "abc"\n',
    "bad z85": b'public-key = "' + b"\x7f" * 40 + b'"\n',
}


@pytest.mark.parametrize("content", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_or_missing_key_files_are_one_line_config_errors(tmp_path, content):
    bs = generate_keypair(tmp_path / "bs", "bs")
    ue = generate_keypair(tmp_path / "ues", "ue-1")
    bad = tmp_path / "bad.key"
    bad.write_bytes(content)
    bad_secret = tmp_path / "bad.key_secret"
    bad_secret.write_bytes(content)
    bad_secret.chmod(0o600)
    cases = [
        (lambda: CurveClientKeys.from_files(ue.secret_file, bad), "BS public key file"),  # server key
        (lambda: CurveClientKeys.from_files(ue.secret_file, tmp_path / "nope.key"), "does not exist"),
        (lambda: CurveClientKeys.from_files(bad_secret, bs.public_file), "secret key file"),
        (lambda: CurveServerKeys.from_files(bad_secret, tmp_path / "ues"), "secret key file"),
        (lambda: CurveServerKeys.from_files(tmp_path / "nope", tmp_path / "ues"), "cannot read secret key"),
    ]
    (tmp_path / "ues" / "ue-9.key").write_bytes(content)  # a garbage allow-list key
    cases.append((lambda: CurveServerKeys.from_files(bs.secret_file, tmp_path / "ues"), "allow-list key file"))
    for load, what in cases:
        with pytest.raises(ConfigError, match=what) as info:
            load()
        assert "\n" not in str(info.value)


def test_an_empty_allow_list_warns(tmp_path, caplog):
    bs = generate_keypair(tmp_path, "bs")  # the BS's own key is skipped: no UE is listed
    with caplog.at_level("WARNING", logger="testbed.control.security"):
        assert CurveServerKeys.from_files(bs.secret_file, tmp_path).allowed == {}
    assert "holds no UE key" in caplog.text and "every UE will be refused" in caplog.text
