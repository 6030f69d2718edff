"""AES-128 (CBC, PKCS#7) decryption of HLS segments: the one module importing ``cryptography``.

``METHOD=AES-128`` in a playlist encrypts each segment whole with a 16-byte key and a 16-byte
IV (explicit, or the segment's media sequence number); ``hls_layout`` finds both.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gql_media.core.ports import MediaError

__all__ = ["decrypt_segment"]


def decrypt_segment(data: bytes, key: bytes, iv: bytes, name: str) -> bytes:
    """The plain bytes of one encrypted segment (``name`` for the error a wrong key gives)."""
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    try:
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as error:
        raise MediaError(f"segment {name} cannot be decrypted (wrong key, or not AES-128 data)") from error
