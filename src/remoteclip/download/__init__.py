"""Dataset downloads: resumable, retried, checksum-verified, and safe to interrupt.

Stage: the first of the data pipeline (the `fetch_dataset` and `download` rules of
workflow/rules/download.smk, through scripts/download.py). Reads a catalogue entry's
URLs; writes the archives, the extracted dataset under `<root>` (through
`remoteclip.extract`), first-use digests into the lock file, and `<root>/.verified` last,
so the marker exists only when everything succeeded. Each file has markers of its own on the
way (fetched, verified, extracted), so a dataset of many archives resumes per archive.

`fetch_file` gets one URL into one file. `fetch_dataset` gets every file of a catalogue
entry into an archives folder, extracts the archives into `<root>` (and archives shipped
inside them, where the catalogue's `nested` globs name them) and writes `<root>/.verified`
last. On a cluster the same happens in two steps: `fetch_archives` (only the transfer, on
a login node with internet; writes `.fetched`) and `install_archives` (checksums and
extraction, a normal compute job). The workflow runs these steps as one job per file:
`fetch_archive`, `verify_archive` and `install_archive` (archive.py), then `mark_installed`.

URL schemes:
    http(s)://...                              requests, with Range resume and retries
    hf://datasets/<owner>/<repo>/<path>[@rev]  huggingface_hub.hf_hub_download (honours
    hf://models/<owner>/<repo>/<path>[@rev]    HF_ENDPOINT, HF_HUB_OFFLINE, HF_TOKEN, HF_HOME);
                                               `<repo>@<rev>/<path>` is accepted too
    gdrive://<file id>                         gdown (handles Drive's confirmation pages)

Checksums: a catalogue file's published md5 and/or sha256 are checked. A file without one
is trusted on first use: its sha256 goes into a YAML lock file that users commit, and every
later download is checked against it. A wrong file is kept aside as `<name>.bad` for
inspection and never marked complete.

Modules, one concern each:
    fetch      one URL into one file: transfer, verify, rename (scheme dispatch)
    http       http(s):// with Range resume, retries, backoff and Retry-After
    hf         hf:// through huggingface_hub
    gdrive     gdrive:// through gdown
    checksums  expected digests, md5+sha256 in one read
    lock       the trust-on-first-use lock file
    specs      a catalogue entry's files, validated
    manual     the "download it by hand, put it here" message
    install    extraction into the dataset folder and the `.verified` marker
    archive    one file: fetch, verify, install, each with its marker; the install order
    dataset    fetch_dataset, fetch_archives, install_archives
    files      .part/.bad conventions, atomic JSON, transfer options, progress bar
    errors     DownloadError, ChecksumError, ManualDownloadRequired

What libraries do here and what stays ours (pooch evaluated and not used; see http.py and
checksums.py for why): huggingface_hub and gdown do the whole transfer for their schemes;
requests/urllib3 do HTTP (and urllib3 parses Retry-After); zipfile, tarfile, py7zr and
rarfile read archives. Ours: Range resume across attempts and runs, the retry policy,
md5+sha256 verification with `.bad` files, the lock, the catalogue logic and the member
safety checks.
"""

from __future__ import annotations

from .archive import EXTRACTED_DIR, fetch_archive, install_archive, markers_of, verify_archive
from .checksums import file_digests
from .dataset import ARCHIVES_DIR, FETCHED_MARKER, fetch_archives, fetch_dataset, install_archives, mark_installed
from .errors import ChecksumError, DownloadError, ManualDownloadRequired
from .fetch import fetch_file
from .gdrive import parse_gdrive_url
from .hf import HfRef, parse_hf_url
from .install import VERIFIED_MARKER
from .lock import ChecksumLock
from .manual import MANUAL_NOTE

__all__ = [
    "ARCHIVES_DIR",
    "ChecksumError",
    "ChecksumLock",
    "DownloadError",
    "EXTRACTED_DIR",
    "FETCHED_MARKER",
    "HfRef",
    "MANUAL_NOTE",
    "ManualDownloadRequired",
    "VERIFIED_MARKER",
    "fetch_archive",
    "fetch_archives",
    "fetch_dataset",
    "fetch_file",
    "install_archive",
    "install_archives",
    "mark_installed",
    "markers_of",
    "verify_archive",
    "file_digests",
    "parse_gdrive_url",
    "parse_hf_url",
]
