#!/usr/bin/env python3
"""The Python peer of shared/benches/callback_crypto.rs (`make bench-crypto`).

Measures, with the PyPI `dingtalk-sdk` (module `dingtalk.crypto`, class
`DingTalkCrypto`), the two operations the Rust bench measures, on the same vector
(V4 of shared/vectors/dingtalk-crypto.json: same token, aes_key, receiver and
ciphertext):

* verify_decrypt: `decrypt_message(body, signature, timestamp, nonce)` on the raw
  callback body `{"encrypt": ...}` (JSON parse, SHA-1 signature check, AES-256-CBC
  decryption, receiver check);
* encrypt_reply: `encrypt_message("success", nonce, timestamp)` (random prefix,
  encryption, signature).

Prints the mean time per operation. With --rust-estimates DIR (criterion's output
directory, target/criterion), also prints one line per operation:
`<op>: rust X µs | python Y µs | ratio Zx` (Rust: criterion's mean point estimate).
"""

import argparse
import json
import pathlib
import statistics
import sys
import timeit

from dingtalk.crypto import DingTalkCrypto

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "shared" / "vectors" / "dingtalk-crypto.json"
VECTOR = "V4"
# The criterion group of shared/benches/callback_crypto.rs.
GROUP = "callback_crypto"
OPERATIONS = ("verify_decrypt", "encrypt_reply")


def load_vector():
    """The vector both sides measure."""
    with open(VECTORS, encoding="utf-8") as f:
        vectors = json.load(f)["encrypt_vectors"]
    return next(v for v in vectors if v["name"] == VECTOR)


def operations(v):
    """The two measured operations, checked once for correct results."""
    crypto = DingTalkCrypto(v["token"], v["aes_key"], v["receiver"])
    body = json.dumps({"encrypt": v["encrypt"]})

    def verify_decrypt():
        return crypto.decrypt_message(body, v["msg_signature"], v["timestamp"], v["nonce"])

    def encrypt_reply():
        return crypto.encrypt_message("success", nonce=v["nonce"], timestamp=v["timestamp"])

    if verify_decrypt() != v["plaintext"]:
        sys.exit("bench_crypto_peer: the SDK did not decrypt the vector to its plaintext")
    reply = encrypt_reply()
    back = crypto.decrypt_message(reply, reply["msg_signature"], reply["timeStamp"], reply["nonce"])
    if back != "success":
        sys.exit("bench_crypto_peer: the SDK's reply does not round-trip")
    return {"verify_decrypt": verify_decrypt, "encrypt_reply": encrypt_reply}


def measure(func, repeats, min_seconds):
    """Mean seconds per call over `repeats` runs of at least `min_seconds` each."""
    timer = timeit.Timer(func)
    number, elapsed = timer.autorange()
    number = max(number, int(number * min_seconds / max(elapsed, 1e-9)))
    runs = timer.repeat(repeat=repeats, number=number)
    return statistics.mean(runs) / number, number


def rust_mean_us(criterion_dir, op):
    """Criterion's mean point estimate for `op`, in µs (None when not run yet)."""
    path = pathlib.Path(criterion_dir) / GROUP / op / "new" / "estimates.json"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["mean"]["point_estimate"] / 1000.0
    except FileNotFoundError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per operation")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="length of each run")
    parser.add_argument("--rust-estimates", metavar="DIR", help="criterion output directory")
    args = parser.parse_args()

    ops = operations(load_vector())
    python_us = {}
    for name in OPERATIONS:
        seconds, loops = measure(ops[name], args.repeats, args.min_seconds)
        python_us[name] = seconds * 1e6
        print(f"python {name}: {python_us[name]:.2f} µs ({args.repeats} x {loops} loops)")

    if args.rust_estimates:
        missing = False
        for name in OPERATIONS:
            rust = rust_mean_us(args.rust_estimates, name)
            if rust is None:
                print(f"{name}: no criterion estimate under {args.rust_estimates}", file=sys.stderr)
                missing = True
                continue
            ratio = python_us[name] / rust
            print(f"{name}: rust {rust:.2f} µs | python {python_us[name]:.2f} µs | ratio {ratio:.1f}x")
        if missing:
            sys.exit(1)


if __name__ == "__main__":
    main()
