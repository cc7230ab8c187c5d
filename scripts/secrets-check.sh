#!/usr/bin/env bash
# Fails when a secret is committed: a PEM private key, a .env-like file with a
# password, a credential in a URL, a well-known token format (AWS, GitHub,
# Slack, a signed JWT) or a high-entropy value assigned to a name like
# password/secret/token/key. It reads the files git tracks (git ls-files), as
# they are in the work tree, and the new files git does not ignore; with
# --history, every blob in the history too.
#
# False positives: a line holding "secrets-check: allow" is skipped (say why
# beside it), and scripts/secrets-allowlist.txt lists path globs skipped as a
# whole (fuzz corpora, for instance). Test fixtures are better generated at
# test time than committed.
#
# Usage: scripts/secrets-check.sh [--history]
#        scripts/secrets-check.sh --self-test   plant generated secrets in a scratch
#                                               repository and check each rule fires
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
exec python3 - "$@" <<'PY'
import fnmatch, math, os, re, subprocess, sys

ALLOW_MARK = "secrets-check: allow"
MAX_BYTES = 1 << 20

def allowlist():
    globs = []
    try:
        with open("scripts/secrets-allowlist.txt", encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    globs.append(line)
    except FileNotFoundError:
        pass
    return globs

def entropy(s):
    counts = {}
    for c in s:
        counts[c] = counts.get(c, 0) + 1
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())

PLACEHOLDER = re.compile(r"^(\$|<|\{\{|%|changeme|change-me|example|dummy|fake|test|xxx|\*+$|redacted)", re.I)

# Dotted or slashed names (gRPC methods, Go import paths, hostnames): base64
# has no dots and seldom starts with a slash.
IDENTIFIER = re.compile(r"^/?[A-Za-z][A-Za-z0-9_-]*(?:[./][A-Za-z][A-Za-z0-9_-]*)+/?$")

# kebab-case or snake_case words (resource names such as a Secret's).
WORDS = re.compile(r"^[a-z]+(?:[-_][a-z]+)+$")

def random_looking(v):
    """A value that looks generated rather than typed: long, mixed, high entropy."""
    if PLACEHOLDER.search(v) or "://" in v:
        return False
    if ("." in v or v.startswith("/")) and IDENTIFIER.match(v):
        return False
    if WORDS.match(v):
        return False
    has_digit = any(c.isdigit() for c in v)
    has_alpha = any(c.isalpha() for c in v)
    e = entropy(v)
    # 32 hex digits have an entropy of 3.3 to 3.9 bits a character; typed
    # words with dashes stay under these bounds or lack digits.
    return (len(v) >= 20 and e >= 3.7) or (len(v) >= 12 and has_digit and has_alpha and e >= 3.0)

SECRET_NAME = r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?key|credentials?)"
RULES = [
    ("private-key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"), None),
    ("putty-key", re.compile(r"PuTTY-User-Key-File-\d"), None),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), None),
    ("github-token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"), None),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), None),
    ("signed-jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}"), None),
    # user:password@ in a URL (DSNs).
    ("url-credentials", re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:([^\s@/'\"]+)@"), random_looking),
    # name = "value", name: value, NAME=value, "name": "value".
    ("secret-assignment", re.compile(
        r"(?i)[\w.-]*" + SECRET_NAME + r"[\w.-]*[\"']?\s*(?::=|=|:)\s*[\"'`]?([A-Za-z0-9+/=_.~!@#%^&*-]{16,})[\"'`]?"),
        random_looking),
]

ENV_FILE = re.compile(r"(^|/)(\.env(\..+)?|[^/]+\.env)$")
ENV_SAFE = re.compile(r"\.(example|sample|template|dist)$")
ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")

def scan(name, data, findings):
    if b"\0" in data[:8192]:
        return  # binary
    text = data[:MAX_BYTES].decode("utf-8", "replace")
    env_file = bool(ENV_FILE.search(name)) and not ENV_SAFE.search(name)
    for no, line in enumerate(text.splitlines(), 1):
        if ALLOW_MARK in line:
            continue
        if env_file:
            m = ENV_LINE.match(line)
            if m and re.search(SECRET_NAME, m.group(1), re.I):
                v = m.group(2).strip().strip("'\"")
                if v and not PLACEHOLDER.search(v):
                    findings.append((name, no, "env-file-secret", m.group(1)))
        for rule, rx, accept in RULES:
            for m in rx.finditer(line):
                value = m.group(1) if m.groups() else m.group(0)
                if accept is None or accept(value):
                    shown = value[:4] + "..." if len(value) > 8 else "..."
                    findings.append((name, no, rule, shown))

def tracked():
    # Tracked files and new ones not ignored: a secret is caught before its
    # first commit too.
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]

def history_blobs():
    out = subprocess.run(["git", "rev-list", "--objects", "--all"], check=True, capture_output=True, text=True).stdout
    seen = {}
    for line in out.splitlines():
        parts = line.split(" ", 1)
        if len(parts) == 2:
            seen.setdefault(parts[0], parts[1])
    return seen

def self_test():
    """Plants generated secrets (never committed) in a scratch repository and
    checks that each rule fires, and that placeholders and allowed lines do
    not."""
    import base64, secrets, shutil, tempfile
    d = tempfile.mkdtemp(prefix="secrets-check-")
    try:
        os.chdir(d)
        subprocess.run(["git", "init", "-q"], check=True)
        rnd = lambda n: secrets.token_urlsafe(n)
        # Assembled at run time so that this script holds no key marker.
        begin, end = "-----BEGIN " + "PRIVATE KEY-----", "-----END " + "PRIVATE KEY-----"
        planted = {
            "key.pem": (begin + "\n" + base64.b64encode(secrets.token_bytes(48)).decode() + "\n" + end + "\n", "private-key"),
            "app/.env": ("DB_PASSWORD=%s\n" % rnd(12), "env-file-secret"),
            "cfg.go": ('var apiToken = "%s"\n' % rnd(24), "secret-assignment"),
            "values.yaml": ("clientSecret: %s\n" % rnd(24), "secret-assignment"),
            "dsn.txt": ("postgres://merch:%s@db:5432/x\n" % secrets.token_hex(16), "url-credentials"),
            "aws.txt": ("key AKIA%s\n" % "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)), "aws-access-key"),
            "gh.txt": ("ghp_%s\n" % "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(36)), "github-token"),
            "jwt.txt": ("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.%s\n" % rnd(40), "signed-jwt"),
        }
        clean = {
            "ok.go": 'password := "pw-" + randomHex(6)\nconst tokenHeader = "Authorization"\n'
                     'UserService_VerifyCredentials_FullMethodName = "/merchshop.user.v1.UserService/VerifyCredentials"\n'
                     'apiToken := "%s" // secrets-check: allow (a fixture)\n' % rnd(24),
            "values.yml": "urlsSecret: merch-shop-database-urls\\n",
            "compose.yml": "POSTGRES_PASSWORD: ${MERCH_POSTGRES_PASSWORD:-merch-dev-password}\n"
                           "DATABASE_URL: postgres://merch:${PW}@postgres:5432/users\n",
            ".env.example": "DB_PASSWORD=changeme\n",
        }
        for name, (body, _) in planted.items():
            os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
            with open(name, "w") as f:
                f.write(body)
        for name, body in clean.items():
            with open(name, "w") as f:
                f.write(body)
        findings = []
        for p in tracked():
            with open(p, "rb") as f:
                scan(p, f.read(), findings)
        got = {(f[0], f[2]) for f in findings}
        want = {(name, rule) for name, (_, rule) in planted.items()}
        missed, extra = want - got, {g for g in got if g[0] in clean}
        for name, rule in sorted(missed):
            print("secrets-check self-test: %s not found in %s" % (rule, name))
        for name, rule in sorted(extra):
            print("secrets-check self-test: false positive %s in %s" % (rule, name))
        if missed or extra:
            return 1
        print("secrets-check self-test: %d planted secrets found, no false positives" % len(want))
        return 0
    finally:
        shutil.rmtree(d, ignore_errors=True)

def main():
    if "--self-test" in sys.argv[1:]:
        return self_test()
    history = "--history" in sys.argv[1:]
    globs = allowlist()
    skipped = lambda p: any(fnmatch.fnmatch(p, g) for g in globs)
    findings = []
    files = 0
    for p in tracked():
        if skipped(p) or not os.path.isfile(p) or os.path.islink(p):
            continue
        with open(p, "rb") as f:
            scan(p, f.read(MAX_BYTES), findings)
        files += 1
    blobs = 0
    if history:
        for oid, p in history_blobs().items():
            if skipped(p):
                continue
            kind = subprocess.run(["git", "cat-file", "-t", oid], capture_output=True, text=True).stdout.strip()
            if kind != "blob":
                continue
            data = subprocess.run(["git", "cat-file", "blob", oid], capture_output=True).stdout
            scan(p + "@" + oid[:10], data, findings)
            blobs += 1
    seen = set()
    for f in findings:
        if f in seen:
            continue
        seen.add(f)
        print("secrets-check: %s:%d: %s (%s)" % f)
    what = "%d files" % files + (", %d blobs of the history" % blobs if history else "")
    if seen:
        print("secrets-check: FAILED: %d finding(s) in %s. Remove the secret (and rotate it), or mark a "
              "false positive with '%s' on its line." % (len(seen), what, ALLOW_MARK))
        return 1
    print("secrets-check: no secrets in %s" % what)
    return 0

sys.exit(main())
PY
