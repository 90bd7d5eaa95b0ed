from devmesh.security.apikeys import generate_key, split_key, verify_secret


def test_a_generated_key_verifies_against_its_stored_hash() -> None:
    key = generate_key()
    parts = split_key(key.plaintext)
    assert parts is not None
    prefix, secret = parts
    assert prefix == key.prefix
    assert verify_secret(secret, salt=key.salt, expected=key.secret_hash)


def test_a_tampered_secret_does_not_verify() -> None:
    key = generate_key()
    parts = split_key(key.plaintext)
    assert parts is not None
    assert not verify_secret(parts[1] + "x", salt=key.salt, expected=key.secret_hash)


def test_the_stored_hash_is_not_the_secret_and_is_salted() -> None:
    first, second = generate_key(), generate_key()
    assert first.plaintext.encode() not in first.secret_hash
    assert first.salt != second.salt


def test_strings_not_shaped_like_keys_are_refused() -> None:
    for raw in ["", "dmk_", "Bearer x", "dmk_short_secret", "abc_0123456789abcdef_s"]:
        assert split_key(raw) is None
