"""What reading a secret and scrubbing a reply cost an attempt, and what a slow file costs the loop.

Reads, one attempt at a time, of a ``{file:…}`` secret (a 40-byte owner-only file on the local
disk): the baseline reads it on the event loop (``SecretRef.read_bytes``, as every attempt did
before); the adapters now await it from a thread of its folder's pool in
``federation.config.secrets.READERS`` (``SecretRef.load``, with a timeout): the wall time per
attempt and the event loop thread's own CPU for it are counted. A ``{env:…}`` secret is read at
once either way. Then 32 attempts at a time (wall time per read, and the loop's CPU per read).
Then the loop's stall while one read takes 20 ms (a slow NFS server, simulated by a sleep in the read):
the longest gap a 1 ms ticker on the loop sees.

Scrubbing (``adapters.auth.scrub``), per attempt that read one 25-character secret: a SOAP fault
quoting it (its three texts), a 64 KiB body with entities (``&amp;``: plain search), the same body
with character references (``&#38;``: read through its escapes); the baseline is ``str.replace``
of the secret in the same texts, the least any scrubber does. And an attempt that read no secret.
Replies built to slow a search, one text each (no baseline: the figure is the point): a megabyte
of ``a`` ending in ``%`` against the secret ``"a" * 255 + "Z"`` (the same without the ``%``), and
100,000 ``%`` against ``"%%%%Z" + "q" * 20``; and a 1.7 KB PEM key quoted in a JSON reply.
And a JSON body of 20,000 short strings with escapes in them (``a%20b&amp;``, ``x\\u0041``),
against three secrets: what scrubbing many small strings costs the loop; the same with 20,000
strings each different; both against the full search of each text (the baseline).
And the forms found by searching a text a second time, rewritten: a 64 KiB MIME body (base64
wrapped every 76 characters) of a JSON document holding the secret, against the same base64 on
one line (no line break to remove: the baseline); a 4 KiB HTML page quoting a secret with HTML5
named references (``&sol;``, ``&plus;``, ``&equals;``), against the same page with numeric ones.

    .venv/bin/python bench/secret_reads.py [--n 20000] [--rounds 5]

Last line: ``RESULT name=secret_reads sync_file_us=… thread_file_us=… loop_cpu_file_us=…
env_us=… concurrent_file_us=… concurrent_loop_cpu_us=… stall_sync_ms=… stall_thread_ms=… scrub_fault_us=…
replace_fault_us=… scrub_64k_us=… scrub_64k_refs_us=… replace_64k_us=… scrub_none_us=…
scrub_1m_hostile_us=… scrub_1m_plain_us=… scrub_100k_percent_us=… scrub_pem_json_us=…
scrub_20k_strings_us=… scrub_20k_strings_full_us=… scrub_20k_varied_us=…
scrub_20k_varied_full_us=… scrub_64k_wrapped_us=… scrub_64k_one_line_us=… scrub_html5_us=…
scrub_html5_numeric_us=… scrub_1m_newlines_us=… scrub_1m_named_us=… scrub_1m_numeric_us=…
scrub_1m_base64_lines_us=… scrub_1m_named_apart_us=… scrub_1m_numeric_apart_us=…
scrub_64k_page_us=… scrub_64k_page_few_names_us=… scrub_1m_backslashes_us=…
scrub_64k_json_paths_us=… scrub_64k_plain_us=…``:
the ``_full`` figures are the baseline of the two before them, every
text searched in full (the scrubber's ``quick`` check off); ``_one_line`` and ``_numeric`` are the
baselines of the two before each; the last four are hostile replies of 1 MB (line breaks,
``&sol;`` again and again, ``&#47;`` again and again: the baseline of ``&sol;``, base64 in
76-character lines), whose baseline is ``scrub_1m_plain_us``. Then, against two passwords of
ordinary symbols (``#!@$^``, ``.:_-,()``: 13 HTML5 names of their characters sought), 1 MB of
``&num;x`` (named references apart, one character between) beside 1 MB of ``&#35;x`` (numeric:
its baseline), and a 64 KiB HTML page of ``&nbsp;`` and ``&eacute;`` (names no secret's character
has) beside the same page against the first password alone (6 names: its baseline). And
replies dense in JSON's escapes that end in a ``\\`` (taken for the start of an escape cut off):
1 MB of backslashes (baselines: ``scrub_1m_numeric_us``, ``scrub_1m_plain_us``), and 64 KiB of
JSON of escaped Windows paths cut off after a backslash, beside 64 KiB of plain text.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from adapters.auth.scrub import Scrubber
from federation.config.secrets import SecretRef, read_texts

SECRET = "Gd-AppSecret-4b0e9f2a71d6"
NAMED_SECRET = "Gd/AppSecret+4b0e=9f2a71d6"  # characters HTML5 names: &sol; &plus; &equals;
# two passwords of ordinary symbols: their characters have 13 HTML5 names (&num; &excl; &period;…)
SYMBOL_SECRETS = ("k8#Tq!2m@Zp$9vW^r", "Xy7.Lm_3:Pq-9,Zt(1)")
FAULT = (
    "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body>"
    "<soap:Fault><faultcode>soap:Client.RenZhengShiBai</faultcode>"
    "<faultstring>AppSecret 'Gd-AppSecret-4b0e9f2a71d6' 错误</faultstring>"
    "</soap:Fault></soap:Body></soap:Envelope>"
)


def timed(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


async def atimed(fn: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    """Wall µs per awaited call, and the loop thread's CPU µs per call."""
    c0, t0 = time.thread_time(), time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - t0) / n * 1e6, (time.thread_time() - c0) / n * 1e6


async def stall(read: Callable[[], Awaitable[object]]) -> float:
    """The longest gap (ms) a 1 ms ticker on the loop sees while ``read`` runs."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await read()
    await asyncio.sleep(0.01)
    done.set()
    await task
    return max(gaps) * 1e3


async def reads(folder: Path, n: int) -> dict[str, float]:
    (folder / "s").write_text(SECRET + "\n")
    (folder / "s").chmod(0o600)
    file = SecretRef(kind="file", name="s", base=folder)
    os.environ["TB_BENCH_SECRET"] = SECRET
    env = SecretRef(kind="env", name="TB_BENCH_SECRET")

    async def on_loop() -> object:
        return file.read_bytes()

    out: dict[str, float] = {}
    out["sync_file_us"], _ = await atimed(on_loop, n)
    out["thread_file_us"], out["loop_cpu_file_us"] = await atimed(file.load, n)
    out["env_us"], _ = await atimed(lambda: read_texts((env,)), n)
    c0, t0 = time.thread_time(), time.perf_counter()
    for _ in range(n // 32):
        await asyncio.gather(*(file.load() for _ in range(32)))
    out["concurrent_file_us"] = (time.perf_counter() - t0) / (n // 32 * 32) * 1e6
    out["concurrent_loop_cpu_us"] = (time.thread_time() - c0) / (n // 32 * 32) * 1e6
    slow = SlowRef(kind="file", name="s", base=folder)
    out["stall_sync_ms"] = await stall(lambda: on_loop_slow(slow))
    out["stall_thread_ms"] = await stall(slow.load)
    return out


class SlowRef(SecretRef):
    """A secret on a file system that takes 20 ms to answer."""

    def read_bytes(self) -> bytes:
        time.sleep(0.02)
        return super().read_bytes()


async def on_loop_slow(ref: SecretRef) -> bytes:
    return ref.read_bytes()


def scrubbing(n: int) -> dict[str, float]:
    big = (FAULT + "<p>a &amp; b</p>" + "x" * 200) * 270  # about 64 KiB, an entity in each part
    texts = {
        "fault": [FAULT, "AppSecret 'Gd-AppSecret-4b0e9f2a71d6' 错误", "soap:Client"],
        "64k": [big[: 64 * 1024]],
        "64k_refs": [big[: 64 * 1024].replace("&amp;", "&#38;")],  # character references
    }
    out: dict[str, float] = {}
    for name, parts in texts.items():

        def scrub(parts: list[str] = parts) -> None:
            s = Scrubber((SECRET,))
            for part in parts:
                s.text(part)

        def replace(parts: list[str] = parts) -> None:
            for part in parts:
                part.replace(SECRET, "<redacted>")

        m = n if name == "fault" else max(1, n // 50)
        out[f"scrub_{name}_us"] = timed(scrub, m)
        out[f"replace_{name}_us"] = timed(replace, m)
    out["scrub_none_us"] = timed(lambda: Scrubber().text(FAULT), n)
    return {**out, **hostile()}


def hostile() -> dict[str, float]:
    """Replies built to slow a search for a repetitive secret, and a PEM key quoted in JSON."""
    pem = (
        "-----BEGIN PRIVATE KEY-----\n" + "MIIEvQIBADANBg+/" * 100 + "\n-----END PRIVATE KEY-----\n"
    )
    cases: dict[str, tuple[str | tuple[str, ...], str]] = {
        "scrub_1m_hostile_us": ("a" * 255 + "Z", "a" * 1_000_000 + "%"),
        "scrub_1m_plain_us": ("a" * 255 + "Z", "a" * 1_000_000),
        "scrub_100k_percent_us": ("%%%%Z" + "q" * 20, "%" * 100_000),
        "scrub_pem_json_us": (pem, json.dumps({"error": "bad key", "echo": pem})),
        # a 1 MB reply of line breaks, of named references of a secret's character, and 1 MB of
        # base64 in MIME lines (76 characters), against a secret with a / (scrub_1m_plain_us:
        # the baseline)
        "scrub_1m_newlines_us": (NAMED_SECRET, "\n" * 1_000_000),
        "scrub_1m_named_us": (NAMED_SECRET, "&sol;" * 200_000),
        "scrub_1m_numeric_us": (NAMED_SECRET, "&#47;" * 200_000),  # the baseline of named
        "scrub_1m_base64_lines_us": (NAMED_SECRET, base64.encodebytes(bytes(750_000)).decode()),
        # references apart (one character between), against the two symbol passwords (13
        # names sought): named (&num;, a character of theirs), and numeric (the baseline)
        "scrub_1m_named_apart_us": (SYMBOL_SECRETS, "&num;x" * 166_666),
        "scrub_1m_numeric_apart_us": (SYMBOL_SECRETS, "&#35;x" * 166_666),
        # 1 MB of backslashes (each pair an escape, the last one taken for a cut-off start),
        # against 1 MB of numeric references and scrub_1m_plain_us (the baselines, this run)
        "scrub_1m_backslashes_us": (SECRET, "\\" * 1_000_000),
        # 64 KiB of JSON of escaped Windows paths cut off after a backslash, against 64 KiB of
        # plain text (its baseline)
        "scrub_64k_json_paths_us": (SECRET, json_paths()),
        "scrub_64k_plain_us": (SECRET, "a" * 64 * 1024),
    }
    out: dict[str, float] = {}
    for key, (secret, text) in cases.items():

        def scrub(secret: str | tuple[str, ...] = secret, text: str = text) -> None:
            Scrubber((secret,) if isinstance(secret, str) else secret).text(text)

        once = timed(scrub, 1)
        out[key] = once if once > 1e6 else timed(scrub, 5)
    return {**out, **strings(), **rewritten()}


def json_paths() -> str:
    """64 KiB of a JSON reply of Windows paths (``C:\\\\Users\\\\…``), cut off at a limit just
    after a backslash."""
    rows = [
        {"path": f"C:\\Users\\user{i}\\AppData\\Local\\Temp\\report_{i}.xlsx", "dir": f"D:\\q{i}\\"}
        for i in range(3000)
    ]
    body = json.dumps({"files": rows})
    return body[: body.rfind("\\", 0, 64 * 1024) + 1]


def rewritten() -> dict[str, float]:
    """Texts the scrubber searches a second time, rewritten, each beside its baseline."""
    doc = {"items": [{"id": i, "note": "x" * 40} for i in range(600)], "token": SECRET}
    wrapped = base64.encodebytes(json.dumps(doc).encode()).decode()[: 64 * 1024]
    secret = NAMED_SECRET
    named = secret.replace("/", "&sol;").replace("+", "&plus;").replace("=", "&equals;")
    numeric = secret.replace("/", "&#47;").replace("+", "&#43;").replace("=", "&#61;")
    page = "<p>caf&eacute;&nbsp;&lsquo;x&rsquo;</p>" * 100
    row = "<tr><td>&nbsp;</td><td>caf&eacute; &amp; th&eacute;</td></tr>\n"
    html_page = (row * 1100)[: 64 * 1024]
    cases: dict[str, tuple[str | tuple[str, ...], str]] = {
        "scrub_64k_wrapped_us": (SECRET, wrapped),
        "scrub_64k_one_line_us": (SECRET, wrapped.replace("\n", "")),
        "scrub_html5_us": (secret, f"{page}<p>token {named} refused</p>{page}"),
        "scrub_html5_numeric_us": (secret, f"{page}<p>token {numeric} refused</p>{page}"),
        # a 64 KiB page of names no secret's character has (&nbsp; &eacute;), against the two
        # symbol passwords (13 names sought), and against the first alone (6: the baseline)
        "scrub_64k_page_us": (SYMBOL_SECRETS, html_page),
        "scrub_64k_page_few_names_us": (SYMBOL_SECRETS[:1], html_page),
    }
    out: dict[str, float] = {}
    for key, (sought, text) in cases.items():

        def scrub(sought: str | tuple[str, ...] = sought, text: str = text) -> None:
            Scrubber((sought,) if isinstance(sought, str) else sought).text(text)

        out[key] = timed(scrub, 20)
    return out


def strings() -> dict[str, float]:
    """A JSON body of 20,000 short strings with escapes, against three secrets, one scrubber an
    attempt: with the quick check of what a short text can read as (the scrubber as it is), and
    with every text searched in full for every secret (``quick`` off: the baseline). The same
    two strings again and again, and 20,000 strings each different. The two ways alternate, three
    times, and each keeps its best: a busy machine slows one run, not the comparison."""
    same = {"items": [{"name": "a%20b&amp;", "v": "x\\u0041"} for _ in range(10_000)]}
    varied = {
        "items": [{"name": f"user%20{i}&amp;", "v": f"caf\\u00e9 {i}"} for i in range(10_000)]
    }
    out: dict[str, float] = {}
    for _ in range(3):
        for key, body in (("strings", same), ("varied", varied)):
            for suffix, quick in (("", True), ("_full", False)):

                def scrub(body: object = body, quick: bool = quick) -> None:
                    three = Scrubber(("p4ss\\word-one", "second secret+x", "third-secret-3"))
                    three.quick = quick
                    three.value(body)

                name = f"scrub_20k_{key}{suffix}_us"
                out[name] = min(out.get(name, float("inf")), timed(scrub, 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            runs.append({**asyncio.run(reads(Path(tmp), args.n)), **scrubbing(args.n)})
    m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    for k, v in m.items():
        print(f"{k:22} {v:10.2f}")
    keys = (
        "sync_file_us thread_file_us loop_cpu_file_us env_us concurrent_file_us "
        "concurrent_loop_cpu_us stall_sync_ms "
        "stall_thread_ms scrub_fault_us replace_fault_us scrub_64k_us scrub_64k_refs_us "
        "replace_64k_us scrub_none_us scrub_1m_hostile_us scrub_1m_plain_us "
        "scrub_100k_percent_us scrub_pem_json_us scrub_20k_strings_us scrub_20k_strings_full_us "
        "scrub_20k_varied_us scrub_20k_varied_full_us scrub_64k_wrapped_us scrub_64k_one_line_us "
        "scrub_html5_us scrub_html5_numeric_us scrub_1m_newlines_us scrub_1m_named_us "
        "scrub_1m_numeric_us scrub_1m_base64_lines_us scrub_1m_named_apart_us "
        "scrub_1m_numeric_apart_us scrub_64k_page_us scrub_64k_page_few_names_us "
        "scrub_1m_backslashes_us scrub_64k_json_paths_us scrub_64k_plain_us"
    )
    print("RESULT name=secret_reads " + " ".join(f"{k}={m[k]:.2f}" for k in keys.split()))


if __name__ == "__main__":
    main()
