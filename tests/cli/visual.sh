#!/usr/bin/env bash
# --visual: on a terminal narrower than the canvas every frame fits one line (a line wider than
# the terminal wrapped, and "\r" then redrew only its last row: a new frame per step); tokens
# that decode to a newline cannot break the line either. On a stderr that is not a terminal,
# no escape codes at all: one plain line per step.
# Usage: visual.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "visual: $*" >&2; exit 1; }
cd "$tmp"
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" m

# Not a terminal: plain lines, one per step.
"$bin" generate --model m --prompt "The cat" --gen-length 48 --block-length 16 --steps 24 --temperature 1 --seed 2 \
  --visual >/dev/null 2>vis.log
grep -q $'\033' vis.log && fail "escape codes written to a file: $(head -c 300 vis.log | od -c | head)"
[ "$(grep -c '^\[block [0-9]* step [0-9]*\] ' vis.log)" = 24 ] || fail "expected 24 step lines: $(cat vis.log)"

# A 40-column terminal.
python3 - "$bin" <<'PY' || fail "see above"
import fcntl, os, pty, re, select, struct, sys, termios, time, unicodedata
bin_ = sys.argv[1]
cols = 40
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    os.execv(bin_, [bin_, "generate", "--model", "m", "--prompt", "The cat", "--gen-length", "96",
                    "--block-length", "16", "--steps", "48", "--temperature", "1", "--seed", "3", "--visual",
                    "--quiet"])
out = b""
end = time.time() + 60
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        out += d
_, status = os.waitpid(pid, 0)
if status != 0:
    sys.exit(f"visual: generate failed ({status}): {out[-500:]!r}")
text = out.decode("utf-8", errors="replace").replace("\r\n", "\n")
frames = [f for f in text.split("\r") if "[block" in f]
if len(frames) < 40:
    sys.exit(f"visual: expected a frame per step, got {len(frames)}: {text[:500]!r}")
def width(s):
    s = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", s)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s if c != "\n")
for f in frames:
    line = f.split("\n")[0]
    if width(line) >= cols:
        sys.exit(f"visual: a frame is {width(line)} columns on a {cols}-column terminal: {line!r}")
# The live line is redrawn in place: the only newline before the answer ends it.
live = text[text.index("[block"):]
head = live[: live.rindex("[block")]
if head.count("\n") > 0:
    sys.exit(f"visual: frames were printed on new lines: {head[:400]!r}")
print("visual: ok")
PY
