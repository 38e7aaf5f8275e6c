"""DLMS security suite 0 (AES-GCM-128) for the simulator: glo/general-glo APDU protection and HLS GMAC.

The HES deciphers through gurux-dlms (with the tag check of app.comms.gx); this is the meter side.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from simulator.axdr import decode_length, encode_length

TAG_LEN = 12
SC_AUTH = 0x10
SC_ENC = 0x20
SC_AUTH_ENC = 0x30

# Service-specific global ciphering tags: request tag -> response tag and their plain forms.
GLO_TAGS = {
    0xC0: 0xC8, 0xC1: 0xC9, 0xC3: 0xCB, 0xC4: 0xCC, 0xC5: 0xCD, 0xC7: 0xCF,
    0xC2: 0xCA, 0x01: 0x21, 0x08: 0x28, 0x0F: 0xDB,
}
PLAIN_TAGS = {glo: plain for plain, glo in GLO_TAGS.items() if plain != 0x0F}
GENERAL_GLO = 0xDB
GENERAL_DED = 0xDC


class CipherError(ValueError):
    """Authentication tag mismatch or malformed ciphered APDU."""


def _check_key(name: str, key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise ValueError(f"{name} must be 16 bytes")


def _iv(system_title: bytes, invocation_counter: int) -> bytes:
    if len(system_title) != 8:
        raise ValueError("system title must be 8 bytes")
    return bytes(system_title) + (invocation_counter & 0xFFFFFFFF).to_bytes(4, "big")


def encrypt(sc: int, invocation_counter: int, system_title: bytes, block_key: bytes,
            auth_key: bytes, plaintext: bytes) -> bytes:
    """Protect plaintext per security control byte sc; return payload after SC||IC."""
    _check_key("block cipher key", block_key)
    _check_key("authentication key", auth_key)
    iv = _iv(system_title, invocation_counter)
    encryptor = Cipher(algorithms.AES(bytes(block_key)), modes.GCM(iv)).encryptor()
    policy = sc & 0x30
    if policy == SC_AUTH:
        encryptor.authenticate_additional_data(bytes([sc]) + bytes(auth_key) + plaintext)
        encryptor.finalize()
        return plaintext + encryptor.tag[:TAG_LEN]
    if policy == SC_AUTH_ENC:
        encryptor.authenticate_additional_data(bytes([sc]) + bytes(auth_key))
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext + (encryptor.tag[:TAG_LEN] if policy == SC_AUTH_ENC else b"")


def decrypt(sc: int, invocation_counter: int, system_title: bytes, block_key: bytes,
            auth_key: bytes, payload: bytes) -> bytes:
    """Check and remove protection from payload (the bytes after SC||IC)."""
    _check_key("block cipher key", block_key)
    _check_key("authentication key", auth_key)
    iv = _iv(system_title, invocation_counter)
    policy = sc & 0x30
    if policy == SC_ENC:
        decryptor = Cipher(algorithms.AES(bytes(block_key)), modes.GCM(iv)).decryptor()
        return decryptor.update(payload)
    if len(payload) < TAG_LEN:
        raise CipherError("ciphered payload shorter than its tag")
    body, tag = payload[:-TAG_LEN], payload[-TAG_LEN:]
    decryptor = Cipher(
        algorithms.AES(bytes(block_key)), modes.GCM(iv, tag, min_tag_length=TAG_LEN)
    ).decryptor()
    try:
        if policy == SC_AUTH:
            decryptor.authenticate_additional_data(bytes([sc]) + bytes(auth_key) + body)
            decryptor.finalize()
            return body
        if policy != SC_AUTH_ENC:
            raise CipherError(f"unsupported security control 0x{sc:02x}")
        decryptor.authenticate_additional_data(bytes([sc]) + bytes(auth_key))
        return decryptor.update(body) + decryptor.finalize()
    except InvalidTag as exc:
        raise CipherError("authentication tag mismatch (wrong keys or tampered APDU)") from exc


def gmac(invocation_counter: int, system_title: bytes, block_key: bytes, auth_key: bytes,
         challenge: bytes) -> bytes:
    """HLS mechanism 5 response: SC(0x10) || IC || GMAC(SC || AK || challenge)."""
    tag = encrypt(SC_AUTH, invocation_counter, system_title, block_key, auth_key, challenge)[-TAG_LEN:]
    return bytes([SC_AUTH]) + (invocation_counter & 0xFFFFFFFF).to_bytes(4, "big") + tag


def verify_gmac(reply: bytes, system_title: bytes, block_key: bytes, auth_key: bytes,
                challenge: bytes) -> int:
    """Check an HLS GMAC reply to our challenge; return its invocation counter."""
    if len(reply) != 1 + 4 + TAG_LEN or reply[0] != SC_AUTH:
        raise CipherError("malformed HLS GMAC reply")
    counter = int.from_bytes(reply[1:5], "big")
    if gmac(counter, system_title, block_key, auth_key, challenge) != bytes(reply):
        raise CipherError("HLS GMAC reply does not match")
    return counter


def wrap_glo(tag: int, sc: int, invocation_counter: int, system_title: bytes, block_key: bytes,
             auth_key: bytes, apdu: bytes) -> bytes:
    """Build a service-specific glo APDU: tag || len || SC || IC || protected(apdu)."""
    body = bytes([sc]) + (invocation_counter & 0xFFFFFFFF).to_bytes(4, "big")
    body += encrypt(sc, invocation_counter, system_title, block_key, auth_key, apdu)
    return bytes([tag]) + encode_length(len(body)) + body


def unwrap_glo(apdu: bytes, system_title: bytes, block_key: bytes, auth_key: bytes) -> tuple[int, int, bytes]:
    """Open a service-specific glo APDU; return (security control, invocation counter, plain APDU)."""
    size, pos = decode_length(apdu, 1)
    if size < 5 or pos + size > len(apdu):
        raise CipherError("ciphered APDU truncated")
    sc = apdu[pos]
    counter = int.from_bytes(apdu[pos + 1:pos + 5], "big")
    return sc, counter, decrypt(sc, counter, system_title, block_key, auth_key, apdu[pos + 5:pos + size])


def wrap_general_glo(sc: int, invocation_counter: int, system_title: bytes, block_key: bytes,
                     auth_key: bytes, apdu: bytes, tag: int = GENERAL_GLO) -> bytes:
    """Build general-glo-ciphering (or general-ded with tag 0xDC) around an APDU."""
    body = bytes([sc]) + (invocation_counter & 0xFFFFFFFF).to_bytes(4, "big")
    body += encrypt(sc, invocation_counter, system_title, block_key, auth_key, apdu)
    return bytes([tag, len(system_title)]) + bytes(system_title) + encode_length(len(body)) + body


def unwrap_general_glo(apdu: bytes, block_key: bytes, auth_key: bytes) -> tuple[bytes, int, bytes]:
    """Open authenticated general-glo/ded-ciphering; return (sender system title, invocation counter, plain APDU)."""
    if len(apdu) < 2 or apdu[0] not in (GENERAL_GLO, GENERAL_DED):
        raise CipherError("not a general-glo/ded-ciphering APDU")
    title_len = apdu[1]
    title = bytes(apdu[2:2 + title_len])
    if title_len != 8 or len(title) != 8:
        raise CipherError("general ciphering needs an 8-byte system title")
    size, pos = decode_length(apdu, 2 + title_len)
    if size < 5 or pos + size > len(apdu):
        raise CipherError("ciphered APDU truncated")
    sc = apdu[pos]
    if not sc & SC_AUTH:
        # Encryption alone has no tag: flipping SC from 0x30 to 0x20 would turn an authenticated APDU into one
        # whose plaintext a man in the middle can alter bit by bit. The HES only opens authenticated APDUs.
        raise CipherError(f"unauthenticated ciphering (security control 0x{sc:02x}) refused")
    counter = int.from_bytes(apdu[pos + 1:pos + 5], "big")
    return title, counter, decrypt(sc, counter, title, block_key, auth_key, apdu[pos + 5:pos + size])


def hls_digest(mechanism: int, secret: bytes, challenge: bytes, other_challenge: bytes, own_title: bytes,
               other_title: bytes) -> bytes:
    """f(challenge) of HLS mechanisms 3 (MD5), 4 (SHA-1) and 6 (SHA-256), Green Book 9.2.7.4.

    MD5 and SHA-1 hash challenge || secret; SHA-256 hashes secret || own system title || other system
    title || challenge || other challenge (own = whoever answers the challenge)."""
    import hashlib

    if mechanism == 3:
        return hashlib.md5(bytes(challenge) + bytes(secret)).digest()  # noqa: S324  (the standard's choice)
    if mechanism == 4:
        return hashlib.sha1(bytes(challenge) + bytes(secret)).digest()  # noqa: S324
    if mechanism == 6:
        return hashlib.sha256(bytes(secret) + bytes(own_title) + bytes(other_title) + bytes(challenge)
                              + bytes(other_challenge)).digest()
    raise ValueError(f"no digest for HLS mechanism {mechanism}")
