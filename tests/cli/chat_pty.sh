#!/usr/bin/env bash
# `illada chat` as a user meets it: on the quick demo's model (context 256 tokens), under a
# pseudo-terminal. Several turns with the default lengths (they must fit the model), a
# conversation that fills the context (the oldest exchange is dropped, never the system
# message, and the session goes on), a message too long for the context (refused, the session
# goes on), Ctrl-C during an answer (back to the prompt), Ctrl-D and Ctrl-C at the prompt (a
# clean exit, status 0). Usage: chat_pty.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "chat_pty: $*" >&2; exit 1; }

"$bin" demo --quick --seed 2 --out "$tmp/demo" --no-progress >/dev/null 2>"$tmp/demo.err" ||
  fail "demo --quick failed: $(tail -5 "$tmp/demo.err")"

python3 - "$bin" "$tmp/demo/sft" <<'PY' || fail "see above"
import os, pty, select, signal, sys, time

bin_, model = sys.argv[1], sys.argv[2]
# The prompt exactly as chat prints it (bold "> "): an answer or a --visual frame may hold "> ".
PROMPT = b"\x1b[1m> "

class Session:
    def __init__(self, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(bin_, [bin_, "chat", "--model", model, *args])
        self.buf = b""
        self.log = b""

    def until(self, pattern, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            i = self.buf.find(pattern)
            if i >= 0:
                out, self.buf = self.buf[:i + len(pattern)], self.buf[i + len(pattern):]
                return out.decode(errors="replace")
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                self.buf += data
                self.log += data
        sys.exit(f"chat_pty: no {pattern!r} within {timeout} s; the session printed:\n"
                 + self.log[-3000:].decode(errors="replace"))

    def say(self, text):
        os.write(self.fd, text.encode() + b"\r")
        return self.until(PROMPT)

    def exit_status(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            try:
                while select.select([self.fd], [], [], 0)[0] and os.read(self.fd, 65536):
                    pass
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return status
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        sys.exit("chat_pty: the session did not end")

def check(cond, what, text):
    if not cond:
        sys.exit(f"chat_pty: {what}; the session printed:\n{text}")

# Default lengths on a 256-token model, then enough turns to fill its context.
s = Session("--system", "You answer questions about the people of the demo.")
s.until(PROMPT)
turns = ["Where does Leif Thorne live?", "Who is Kaja Rook's mother?", "What is 2 plus 3?",
         "Tell me about Nico Rook.", "How old is Xenia Brun?", "What is the first letter of mob?"]
transcript = ""
for t in turns:
    out = s.say(t)
    transcript += out
    check("error" not in out.lower(), f"turn {t!r} failed", out)
    check(out.count("\n") >= 2, f"no answer line for {t!r}", out)
check("dropped the oldest" in transcript, "the history never filled the context (or was not trimmed)", transcript)
# A message that cannot fit: refused, and the session goes on.
out = s.say(" ".join(["word"] * 400))
check("write a shorter one" in out, "an over-long message was not refused clearly", out)
out = s.say("What is 4 plus 1?")
check("error" not in out.lower() and out.count("\n") >= 2, "no answer after the refused message", out)
os.write(s.fd, b"\x04")  # Ctrl-D at the prompt
status = s.exit_status()
check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"Ctrl-D: exit status {status}", s.log.decode(errors="replace"))

# Ctrl-C during an answer. The tiny model answers in milliseconds, so the answer is held
# mid-way: --visual draws a frame per step on the terminal, and once the first frame is seen the
# session is stopped (SIGSTOP) and no longer read from (its frame writes then block); Ctrl-C is
# typed while it is held, then it continues (SIGCONT) and must drop the answer.
s = Session("--max-length", "192", "--block-length", "32", "--visual")
s.until(PROMPT)
for attempt in range(3):
    os.write(s.fd, b"Tell me about Nico Rook.\r")
    s.until(b"[block 0 step 0]")
    os.kill(s.pid, signal.SIGSTOP)
    os.write(s.fd, b"\x03")
    time.sleep(0.2)
    os.kill(s.pid, signal.SIGCONT)
    out = s.until(PROMPT, timeout=30)
    if "[interrupted]" in out:
        break
else:
    sys.exit("chat_pty: Ctrl-C during an answer did not stop it (3 tries):\n" + s.log[-3000:].decode(errors="replace"))
check("\x1b[0m" in out, "terminal attributes not reset after Ctrl-C", out)
out = s.say("What is 2 plus 3?")
check(out.count("\n") >= 2 and "error" not in out.lower(), "no answer after the interrupted one", out)
os.write(s.fd, b"\x03")  # Ctrl-C at the prompt: the session ends
status = s.exit_status()
check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"Ctrl-C at the prompt: exit status {status}",
      s.log.decode(errors="replace"))
check("error" not in s.log.decode(errors="replace").lower(), "an error was printed", s.log.decode(errors="replace"))
print("chat_pty: ok")
PY
